"""The fault proxy: sockshock's fault models on the wire, for servers it cannot wrap.

A server in another process -- or written in another language -- cannot take
sockshock's socket layer. A :class:`FaultProxy` sits between its clients and it
(TCP, UDP or Unix stream; loopback addresses and Unix paths only) and carries out
the decisions of the same :class:`~sockshock.faults.FaultPlan`, per direction,
seeded and logged the way the fault layer logs them.

Directions keep the layer's vocabulary, from the *server's* point of view: what the
client sends is what the server reads ("in": operations ``recv`` and
``datagram_in``), what the server sends back is what it writes ("out": ``send`` and
``datagram_out``). Connections are numbered in accept order, datagram peers (client
addresses) in order of first appearance, as the layer numbers them.

One forwarding step is one operation. For a stream the proxy holds the bytes it has
read from one side and asks the plan about them (``size``: the bytes waiting,
``offset``: the bytes already forwarded in that direction, ``index``: the steps
before), then forwards what the decision allows: ``limit`` -> that many bytes now,
the rest in later steps; ``delay`` -> the data is held that long (other
connections go on); ``reset`` -> both sides get a TCP RST (``SO_LINGER`` {1, 0},
then close); ``eof`` -> the proxy half-closes towards the server and discards what
the client sends after; ``stall`` -> that direction is never forwarded again. A
client's end of file is an "in" operation too (the server's ``recv`` that returns
``b""``), so ``ResetAfter``, ``Stall`` and ``Latency`` apply to it; the server's end
of file is passed on as it comes (a close is not a ``send``). A datagram is one
operation: ``drop``, ``duplicate``, ``hold`` (reordering: released behind that many
later datagrams of its direction, or after
:data:`~sockshock._proxy._datagrams.HOLD_WINDOW` seconds), ``corrupt``
and ``truncate``, after its ``delay``. ``AcceptErrors`` resets the accepted client
connection without connecting upstream; ``AbruptShutdown`` resets every connection,
closes the listening socket and ends the proxy (:attr:`FaultProxy.shutdown_triggered`).

Design: one I/O thread waits in epoll(7) (poll(2) where there is none) over
non-blocking sockets -- no thread per connection, no busy waiting. Delays are
timers in a heap that bounds the wait. Each direction of a stream buffers at most
:data:`~sockshock._proxy._pipe.BUFFER` bytes (plus one read); a full buffer stops
the proxy reading its source, so back-pressure reaches the sender through the
transport's own flow control. Directions no model looks at are spliced (the bytes
never enter Python). :meth:`FaultProxy.stop` joins the thread within a bound and
closes every descriptor.

This module holds the proxy's life cycle. Its arguments are checked in
``_addresses``, its thread runs ``_loop``, accepting and stream connections live in
``_streams`` (each direction a ``_pipe``), datagram relaying in ``_datagrams``;
:func:`~sockshock._proxy._factory.proxy_for` and the fixture function in
``_factory``; the command line (``sockshock proxy``) in
``sockshock._cli._proxy``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from sockshock._faults import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    RECV,
    SEND,
    Decision,
    FaultPlan,
    Operation,
)
from sockshock._harness import add_note, forget_unix_path, register_unix_path
from sockshock._proxy._addresses import (
    SOURCE,
    TRANSPORTS,
    format_address,
    inet_address,
    plan_for,
    unix_path,
)
from sockshock._proxy._datagrams import DatagramRelay
from sockshock._proxy._loop import Loop
from sockshock._proxy._streams import Acceptor
from sockshock._util import MAX_SECONDS, ProxyError, check_choice, check_number

__all__ = ["FaultProxy"]

_STOP_TIMEOUT = 5.0


class FaultProxy:
    """A TCP, UDP or Unix-stream proxy that applies a fault plan on the wire.

    Args:
        upstream: the server: ``(host, port)`` on loopback, or a Unix socket path
            with ``transport="unix"``.
        listen: where clients connect: default ``("127.0.0.1", 0)`` (the kernel
            picks a port), or for ``"unix"`` a path in a private temporary directory.
        faults: a :class:`~sockshock.faults.FaultPlan`, a fault model or a list of
            them (made into a plan with ``seed``), or ``None`` for none.
        seed: the seed of the plan made from a list (default: random; always
            readable as ``proxy.plan.seed``).
        transport: ``"tcp"`` (default), ``"udp"`` or ``"unix"`` (Unix stream).

    Use it as a context manager (``with FaultProxy(...) as proxy:``) or call
    :meth:`start` and :meth:`stop`. Give clients :attr:`address`; read what was
    injected in ``proxy.plan.log`` / ``proxy.plan.describe()``.

    Raises:
        InvalidArgument: for an address other than loopback or a Unix path, a bad
            transport, a seed next to a ready plan, a model that cannot apply to the
            transport.
        InvalidArgument: for arguments of the wrong type.
    """

    def __init__(
        self,
        upstream: Any,
        *,
        listen: Any = None,
        faults: Any = None,
        seed: int | None = None,
        transport: str = "tcp",
    ) -> None:
        check_choice("transport", transport, TRANSPORTS, source=SOURCE)
        self.transport: str = transport
        self._listen_path: str | None = None
        self._listen: tuple[Any, ...] | None = None
        if transport == "unix":
            self.upstream: Any = unix_path("upstream", upstream, SOURCE)
            self._upstream_family = int(socket.AF_UNIX)
            self._listen_family = int(socket.AF_UNIX)
            if listen is not None:
                self._listen_path = unix_path("listen", listen, SOURCE)
        else:
            family, self.upstream = inet_address("upstream", upstream, transport, 1, SOURCE)
            self._upstream_family = int(family)
            family, self._listen = inet_address(
                "listen", ("127.0.0.1", 0) if listen is None else listen, transport, 0, SOURCE
            )
            self._listen_family = int(family)
        #: The plan in force -- ``plan.seed``, ``plan.log``, ``plan.describe()``.
        self.plan: FaultPlan = plan_for(transport, faults, seed)
        #: Set when an AbruptShutdown fired -- every connection was reset and the proxy
        #: stopped listening.
        self.shutdown_triggered = threading.Event()
        #: Called once when an AbruptShutdown fired, on the I/O thread, after the
        #: proxy cut everything (it must not block): stop the server behind it, say.
        self.on_abrupt_shutdown: Callable[[], None] | None = None
        self._concerns = {
            kind: self.plan.concerns(kind)
            for kind in (RECV, SEND, DATAGRAM_IN, DATAGRAM_OUT, ACCEPT)
        }
        self._lock = threading.Lock()
        self._state = "new"
        self._done = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._started = False  # start() was called (and got past the state check)
        self._loop = Loop()
        self._listener: socket.socket | None = None  # stream listener or datagram socket
        self._acceptor: Acceptor | None = None  # the stream side
        self._relay: DatagramRelay | None = None  # the datagram side
        self._address: Any = None
        self._directory: str | None = None
        self._closed_all = False

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen and start forwarding (in one daemon I/O thread); returns the proxy.

        Returns:
            The proxy itself, so that ``proxy = FaultProxy(...).start()`` reads well.

        Raises:
            ProxyError: if the proxy was started before.
            OSError: if the listening address cannot be bound.
        """
        with self._lock:
            if self._state != "new":
                what = "was started before" if self._started else "was stopped before it started"
                raise ProxyError(f"{self!r} {what}; a proxy starts once (make a new FaultProxy)")
            self._state = "running"
            self._started = True
        try:
            self._loop.open()
            self._open_listener()
        except BaseException:
            self._close_everything(reset=False)
            self._release()
            with self._lock:
                self._state = "stopped"
            self._done.set()
            raise
        self._thread = threading.Thread(
            target=self._run,
            daemon=True,
            name=f"sockshock proxy {format_address(self._address)} -> "
            f"{format_address(self.upstream)}",
        )
        self._thread.start()
        return self

    def _open_listener(self) -> None:
        if self.transport == "unix":
            if self._listen_path is None:
                self._directory = tempfile.mkdtemp(prefix="sockshock-proxy-")
                self._listen_path = os.path.join(self._directory, "proxy.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
            sock = socket.socket(self._listen_family, kind)
        self._listener = sock
        if self.transport == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        where: Any = self._listen_path if self.transport == "unix" else self._listen
        sock.bind(where)
        if self.transport == "unix":
            assert self._listen_path is not None
            register_unix_path(self._listen_path)
            self._address = self._listen_path
        else:
            self._address = sock.getsockname()[:2]
        if self.transport == "udp":
            self._relay = DatagramRelay(self, sock, self._upstream_family)
        else:
            sock.listen(socket.SOMAXCONN)
            self._acceptor = Acceptor(
                self, sock, self._upstream_family, nodelay=self.transport == "tcp"
            )
        sock.setblocking(False)
        if self._loop.stopping:  # asked to stop before it started
            return
        if self._relay is not None:
            self._relay.watch()
        elif self._acceptor is not None:
            self._acceptor.watch()

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop forwarding and close every socket; never hangs.

        It cuts the wire: connections still open are closed (what a stalled or
        delayed direction holds is dropped; a server whose reply arrives after the
        cut gets a reset, as on a real network), held and delayed datagrams are
        dropped. Calling it again does nothing.

        Args:
            timeout: seconds to wait for the I/O thread (it never blocks, so this
                is only a bound).

        Raises:
            ProxyError: if the I/O thread had failed (the cause chained), or did
                not stop within ``timeout`` (its sockets are closed anyway).
            InvalidArgument: for a ``timeout`` that is not a number in
                (0, 3600] (checked first: the proxy is left as it was).
        """
        check_number(
            "timeout", timeout, low=0, low_open=True, high=MAX_SECONDS, source="FaultProxy.stop()"
        )
        with self._lock:
            state, self._state = self._state, "stopped"
        if state == "stopped":
            return
        self.request_stop()
        stuck = False
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            stuck = thread.is_alive()
        if stuck or thread is None:
            self._close_everything(reset=False)
        self._release()
        self._done.set()
        if self._failure is not None:
            raise ProxyError(
                f"the I/O thread of {self!r} failed: {self._failure!r}"
            ) from self._failure
        if stuck:
            raise ProxyError(
                f"the I/O thread of {self!r} did not stop within {timeout:g} s; "
                "its sockets were closed"
            )

    def _release(self) -> None:
        self._loop.release()
        if self.transport == "unix" and self._listen_path and self._address is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._listen_path)
            forget_unix_path(self._listen_path)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def request_stop(self) -> None:
        """Ask the I/O thread to stop and return at once (safe in a signal handler);
        :meth:`wait_stopped` tells when it has, :meth:`stop` still joins and cleans up."""
        self._loop.stopping = True
        self._loop.wake()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until the proxy has stopped forwarding (``stop()``, a signal through
        :meth:`request_stop`, or an ``AbruptShutdown``); True if it has.

        Args:
            timeout: seconds to wait at most (``None``: no bound).

        Returns:
            True if the proxy has stopped, False if ``timeout`` ran out first.
        """
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether the proxy is forwarding (started, not stopped, not shut down)."""
        return self._state == "running" and not self._done.is_set() and not self._loop.stopping

    @property
    def address(self) -> Any:
        """The address to give clients -- ``(host, port)``, or the Unix socket path."""
        if self._address is None:
            raise ProxyError(
                f"{self!r} has no address yet: call start() first (or use it as a context manager)"
            )
        return self._address

    def __enter__(self) -> FaultProxy:
        """Start the proxy (one already started and still running is used as it is);
        a stopped proxy raises :class:`ProxyError`, as :meth:`start` does."""
        if self._state != "running":
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.stop()
            return
        try:
            self.stop()
        except ProxyError as error:  # the body's exception wins; this one goes with it
            add_note(exc, f"also, stopping the proxy failed: {error}")

    def __repr__(self) -> str:
        listen = self._address if self._address is not None else (self._listen_path or self._listen)
        return (
            f"FaultProxy({self.transport} {format_address(listen)} -> "
            f"{format_address(self.upstream)}, {self.plan!r})"
        )

    # -- the I/O thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop.run()
        except BaseException as exc:  # a bug: stop() reports it
            self._failure = exc
        finally:
            self._close_everything(reset=False)
            self._done.set()

    def _ask(
        self, kind: str, index: int, address: Any, size: int, offset: int, count: int
    ) -> Decision:
        return self.plan.decide(
            Operation(kind, index, address, size, offset, count, time.monotonic())
        )

    def _ended(self, index: int) -> None:
        """A stream connection closed, or a datagram client was forgotten: the plan
        lets go of what it keeps for it (issue 23)."""
        self.plan.connection_ended(index)

    def _abrupt_shutdown(self) -> None:
        """AbruptShutdown: reset every connection, stop listening, end the loop."""
        self._loop.stopping = True
        self._close_everything(reset=True)
        self.shutdown_triggered.set()
        if self.on_abrupt_shutdown is not None:
            self.on_abrupt_shutdown()

    def _close_everything(self, *, reset: bool) -> None:
        with self._lock:
            if self._closed_all:
                return
            self._closed_all = True
        if self._acceptor is not None:
            self._acceptor.close(reset=reset)
        if self._relay is not None:
            self._relay.close()
        if self._listener is not None:
            self._listener.close()
        self._loop.close()  # the timers, the callbacks, the poller

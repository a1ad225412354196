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

One forwarding step is one operation, one chunk as it was read (toxiproxy's links
take one chunk at a time): the proxy asks the plan about it (``size``: the chunk's
bytes, ``offset``: the bytes already forwarded in that direction, ``index``: the
steps before), then forwards what the decision allows: ``limit`` -> that many bytes
now, the rest decided once they have gone; ``delay`` -> held that long, counted
from the chunk's arrival when the whole chunk moves (latency: pipelined requests
are not delayed behind each other), from the decision when only part of it does
(pacing); ``reset`` -> both sides get a TCP RST (``SO_LINGER`` {1, 0}, then
close); ``eof`` -> the proxy half-closes towards the receiver and discards what the
sender sends after; ``stall`` -> nothing more goes that way (what arrives is
discarded) until the sender closes -- the receiver then gets end of file -- or the
decision's ``close_after`` closes the connection. A client's end of file is an
"in" operation too (the server's ``recv`` that returns ``b""``), so ``ResetAfter``,
``Stall`` and ``Latency`` apply to it; the server's end of file is a ``send`` of 0
bytes only for a model that looks at closes (``Latency(close_only=True)``). A
datagram is one operation: ``drop``, ``duplicate``, ``hold`` (reordering: released
behind that many later datagrams of its direction, however far apart, or after
:data:`~sockshock._proxy._datagrams.HOLD_WINDOW` seconds), ``corrupt`` and
``truncate``, after its ``delay``. ``AcceptErrors`` resets the accepted client
connection without connecting upstream; ``AbruptShutdown`` resets every connection,
closes the listening socket and ends the proxy (:attr:`FaultProxy.shutdown_triggered`).

Design: one I/O thread waits in epoll(7) (poll(2) where there is none) over
non-blocking sockets -- no thread per connection, no busy waiting. Delays are
timers in a heap that bounds the wait. Each direction of a stream buffers at most
:data:`~sockshock._proxy._pipe.BUFFER` bytes (plus one read); a full buffer stops
the proxy reading its source, so back-pressure reaches the sender through the
transport's own flow control. Directions no model looks at are spliced through
the loop's one kernel pipe (the bytes never enter Python), and a connection with
nothing held back takes a fast path straight from readiness to the splice (or, with
a model, to one decision and one write from the scratch buffer). :meth:`FaultProxy.stop` joins the thread within a bound and
closes every descriptor.

Run-time control: :meth:`FaultProxy.set_faults` replaces the plan of a running
proxy (thread-safe: the I/O thread takes it over between two events; open
connections are decided by the new plan from their next step on, counting their
operations afresh in each direction whose models changed, where what the old plan
delayed or stalled goes on at once and a reset it scheduled still comes; a direction
whose models are the same goes on as it was); :meth:`FaultProxy.disable`
refuses connections while keeping the port (or path) and closes the open ones,
:meth:`FaultProxy.enable` listens again -- toxiproxy's ``enabled`` switch.
:attr:`FaultProxy.on_event` sees every decision as it is made (``--log FILE``).

Resources: at start the soft limit on open files is raised towards the hard one
(:func:`raise_open_file_limit`; :attr:`FaultProxy.open_file_limit` says what it
did), a stream connection costs two descriptors (splicing goes through the loop's
one kernel pipe), idle datagram clients are forgotten (``DATAGRAM_PEER_IDLE``). A proxy
that would forward to itself -- ``listen`` equal to ``upstream``, or an upstream
connection arriving at a proxy of this process -- is refused.

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
from collections.abc import Callable
from typing import Any

from sockshock._faults import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    RECV,
    SEND,
    Decision,
    FaultEvent,
    FaultPlan,
    Operation,
)
from sockshock._harness import (
    AddressArg,
    PlanArg,
    add_note,
    forget_unix_path,
    register_unix_path,
)
from sockshock._proxy._addresses import (
    SOURCE,
    format_address,
    inet_address,
    plan_for,
    protocol_for,
    unix_path,
)
from sockshock._proxy._datagrams import DatagramRelay
from sockshock._proxy._loop import Loop
from sockshock._proxy._streams import Acceptor
from sockshock._util import (
    MAX_SECONDS,
    InvalidArgument,
    ProxyError,
    cannot_listen,
    check_number,
    check_seconds,
    exported_by,
)

__all__ = ["FaultProxy", "raise_open_file_limit"]

_STOP_TIMEOUT = 5.0
_CONTROL_TIMEOUT = 5.0  # set_faults(), disable(), enable(): the I/O thread's bound
_NOFILE_CEILING = 1 << 20  # where the soft limit stops when the hard one is unlimited


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise the soft limit on open files (RLIMIT_NOFILE) to the hard limit (at most
    2**20); return (before, after), or None where there is no such limit or it
    cannot be changed. Go programs such as toxiproxy do this at start; a proxy
    needs two descriptors per connection."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        ceiling = _NOFILE_CEILING if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < ceiling:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            return soft, ceiling
    except (ValueError, OSError):
        return None
    return soft, soft


@exported_by("sockshock")
class FaultProxy:
    """A TCP, UDP or Unix-stream proxy that applies a fault plan on the wire.

    Args:
        upstream: the server: ``(host, port)`` on loopback (TCP, or UDP with
            ``transport="datagram"``), or a Unix stream socket's path.
        listen: where clients connect: default ``("127.0.0.1", 0)`` (the kernel
            picks a port), or for ``"unix"`` a path in a private temporary directory.
        faults: a :class:`~sockshock.faults.FaultPlan`, a fault model or a list of
            them (made into a plan with ``seed``), or ``None`` for none.
        seed: the seed of the plan made from a list (default: random; always
            readable as ``proxy.plan.seed``).
        transport: ``"stream"`` (default) or ``"datagram"`` (UDP), as everywhere
            in sockshock; the family follows ``upstream``.

    Use it as a context manager (``with FaultProxy(...) as proxy:``) or call
    :meth:`start` and :meth:`stop`. Give clients :attr:`address`; read what was
    injected in ``proxy.plan.log`` / ``proxy.plan.describe()``. While it runs,
    :meth:`set_faults` replaces its faults and :meth:`disable` / :meth:`enable`
    switch it off and on, keeping the port (from any thread).

    Raises:
        InvalidArgument: for an address other than loopback or a Unix path, a bad
            transport, a seed next to a ready plan, a model that cannot apply to the
            transport.
        InvalidArgument: for arguments of the wrong type.
    """

    def __init__(
        self,
        upstream: AddressArg,
        *,
        listen: AddressArg | None = None,
        faults: PlanArg | None = None,
        seed: int | None = None,
        transport: str = "stream",
    ) -> None:
        self._protocol = protocol = protocol_for(upstream, transport)
        #: ``"stream"`` or ``"datagram"``.
        self.transport: str = transport
        self._listen_path: str | None = None
        self._listen: tuple[Any, ...] | None = None
        if protocol == "unix":
            self.upstream: Any = unix_path("upstream", upstream, SOURCE)
            self._upstream_family = int(socket.AF_UNIX)
            self._listen_family = int(socket.AF_UNIX)
            if listen is not None:
                self._listen_path = unix_path("listen", listen, SOURCE)
        else:
            family, self.upstream = inet_address("upstream", upstream, protocol, 1, SOURCE)
            self._upstream_family = int(family)
            family, self._listen = inet_address(
                "listen", ("127.0.0.1", 0) if listen is None else listen, protocol, 0, SOURCE
            )
            self._listen_family = int(family)
        if self._protocol == "unix":
            if self._listen_path is not None and os.path.realpath(
                self._listen_path
            ) == os.path.realpath(self.upstream):
                raise InvalidArgument(
                    f"listen={self._listen_path!r} is the upstream's own path: the proxy "
                    f"would forward to itself (from {SOURCE})"
                )
        elif self._listen is not None and self._listen[1] and self._listen[:2] == self.upstream[:2]:
            raise InvalidArgument(
                f"listen={format_address(self._listen)} is the upstream's own address: the "
                f"proxy would forward to itself (from {SOURCE})"
            )
        self._plan: FaultPlan = plan_for(protocol, faults, seed)
        #: Set when an AbruptShutdown fired -- every connection was reset and the proxy
        #: stopped listening.
        self.shutdown_triggered = threading.Event()
        #: Called once when an AbruptShutdown fired, on the I/O thread, after the
        #: proxy cut everything (it must not block): stop the server behind it, say.
        self.on_abrupt_shutdown: Callable[[], None] | None = None
        #: Called with every :class:`~sockshock.faults.FaultEvent` as it is decided,
        #: on the I/O thread (it must not block): ``--log FILE`` streams them.
        self.on_event: Callable[[FaultEvent], None] | None = None
        #: What :func:`raise_open_file_limit` did at start: (before, after), or None.
        self.open_file_limit: tuple[int, int] | None = None
        #: Clients turned away because they came from this process's own upstream
        #: connections (a proxy forwarding to itself).
        self.loops_refused = 0
        self._enabled = True
        self._concerns = self._concerns_of(self._plan)
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
        self.open_file_limit = raise_open_file_limit()
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
        if self._protocol == "unix":
            if self._listen_path is None:
                self._directory = tempfile.mkdtemp(prefix="sockshock-proxy-")
                self._listen_path = os.path.join(self._directory, "proxy.sock")
            sock = self._bind_unix()
        else:
            sock = self._bind_inet()
        self._listener = sock
        if self._protocol == "unix":
            assert self._listen_path is not None
            register_unix_path(self._listen_path)
            self._address = self._listen_path
        else:
            self._address = sock.getsockname()[:2]
            if self._address == tuple(self.upstream[:2]):
                raise InvalidArgument(
                    f"the proxy listens on {format_address(self._address)}, the upstream's "
                    f"own address: it would forward to itself (from {SOURCE})"
                )
        if self._protocol == "udp":
            self._relay = DatagramRelay(self, sock, self._upstream_family)
        else:
            sock.listen(socket.SOMAXCONN)
            self._acceptor = Acceptor(
                self, sock, self._upstream_family, nodelay=self._protocol == "tcp"
            )
        sock.setblocking(False)
        if self._loop.stopping:  # asked to stop before it started
            return
        if self._relay is not None:
            self._relay.watch()
        elif self._acceptor is not None:
            self._acceptor.watch()

    def _bind_inet(self) -> socket.socket:
        """The listening (or datagram) socket, bound to an explicit port even when
        the kernel picked it: a TCP listener that stops listening (``disable()``)
        keeps such a port."""
        assert self._listen is not None
        kind = socket.SOCK_DGRAM if self._protocol == "udp" else socket.SOCK_STREAM
        where: tuple[Any, ...] = self._listen
        sock = socket.socket(self._listen_family, kind)
        try:
            if self._protocol == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._bind(sock, where)
            if self._protocol == "tcp" and not where[1]:
                # Port 0: bind a second socket to the port the kernel picked (both
                # bound, neither listening: allowed) and keep that one.
                where = (where[0], sock.getsockname()[1], *where[2:])
                chosen = socket.socket(self._listen_family, kind)
                try:
                    chosen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    self._bind(chosen, where)
                except BaseException:
                    chosen.close()
                    raise
                sock.close()
                sock = chosen
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind(self, sock: socket.socket, where: Any) -> None:
        try:
            sock.bind(where)
        except OSError as exc:
            raise cannot_listen(exc, where) from None

    def _bind_unix(self) -> socket.socket:
        assert self._listen_path is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._bind(sock, self._listen_path)
        except BaseException:
            sock.close()
            raise
        return sock

    # -- run-time control ---------------------------------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        """The plan in force: ``plan.seed``, ``plan.log``, ``plan.describe()``
        (read-only: replace it with :meth:`set_faults`)."""
        return self._plan

    @staticmethod
    def _concerns_of(plan: FaultPlan) -> dict[str, bool]:
        concerns = {
            kind: plan.concerns(kind) for kind in (RECV, SEND, DATAGRAM_IN, DATAGRAM_OUT, ACCEPT)
        }
        concerns["close"] = any(m.on_close and m.applies_to_kind(SEND) for m in plan.models)
        return concerns

    def set_faults(self, faults: PlanArg | None, *, seed: int | None = None) -> FaultPlan:
        """Replace the faults, running or not (thread-safe); return the new plan.

        Args:
            faults: as for the constructor: a plan, a model, a list of them, or
                ``None`` for none.
            seed: the seed of a plan made from a list (default: random).

        Open connections are decided by the new plan from their next step on. In
        a direction whose models changed, operations are counted afresh
        (toxiproxy's toxics count from when they were added) and what the old
        plan held back goes on at once, as when a toxiproxy toxic is removed:
        what it delayed (latency, a slow close) is written now, and a stall ends
        (what arrived meanwhile was discarded); a reset it scheduled still comes,
        as toxiproxy's ``reset_peer``'s does. A direction whose models are the
        same goes on as it was (its counts, delays and stall), as toxiproxy's
        downstream toxics are untouched by a change upstream. The old plan
        keeps its log.

        Returns:
            The new plan (also :attr:`plan` from now on).

        Raises:
            InvalidArgument: as for the constructor (the proxy is left
                as it was).
            ProxyError: if the I/O thread did not take the plan within 5 s.
        """
        plan = plan_for(self._protocol, faults, seed)
        self._control(lambda: self._replan(plan))
        return plan

    @staticmethod
    def _stream_models(plan: FaultPlan) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The models a stream connection's two directions ask: client to server
        (``recv``), server to client (``send``, the close included)."""
        return (
            tuple(m for m in plan.models if m.applies_to_kind(RECV)),
            tuple(m for m in plan.models if m.applies_to_kind(SEND)),
        )

    def _replan(self, plan: FaultPlan) -> None:
        before = self._stream_models(self._plan)
        self._plan = plan
        self._concerns = self._concerns_of(plan)
        if self._acceptor is not None:
            # A direction whose models are the same goes on as it was (its counts,
            # delays and stall), as toxiproxy's downstream toxics are untouched by
            # a change upstream.
            inward, outward = (
                old != new for old, new in zip(before, self._stream_models(plan), strict=True)
            )
            for conn in list(self._acceptor.connections.values()):
                conn.replan(inward=inward, outward=outward)
        if self._relay is not None:
            for peer in self._relay.peers.values():
                peer.offset = [0, 0]
                peer.count = [0, 0]

    @property
    def enabled(self) -> bool:
        """Whether the proxy accepts clients (see :meth:`disable`)."""
        return self._enabled

    def disable(self) -> None:
        """Refuse clients, keeping the port (or Unix path), and close the open
        connections (toxiproxy's ``enabled: false``; datagrams are dropped and their
        clients forgotten). A TCP client's connect() is refused; a Unix client's
        too. Thread-safe; :meth:`enable` undoes it; calling it twice does nothing.

        Raises:
            ProxyError: if the I/O thread did not carry it out within 5 s.
        """
        self._control(self._disable)

    def enable(self) -> None:
        """Accept clients again after :meth:`disable` (on the same port or path).

        Raises:
            ProxyError: if the I/O thread did not carry it out within 5 s.
            OSError: if the Unix path was taken meanwhile.
        """
        self._control(self._enable)

    def _disable(self) -> None:
        if not self._enabled:
            return
        self._enabled = False
        if self._relay is not None:
            self._relay.disabled = True
            self._relay.forget_all()
            return
        acceptor = self._acceptor
        if acceptor is None or self._listener is None:
            return
        acceptor.disabled = True
        acceptor.unwatch()
        if self._protocol == "unix":
            self._listener.close()  # the path stays: connect() is refused
        else:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # stops listening, keeps the port
        acceptor.close(reset=False)

    def _enable(self) -> None:
        if self._enabled:
            return
        if self._relay is not None:
            self._relay.disabled = False
            self._enabled = True
            return
        acceptor = self._acceptor
        if acceptor is None or self._listener is None:
            self._enabled = True
            return
        if self._protocol == "unix":
            assert self._listen_path is not None
            with contextlib.suppress(OSError):
                os.unlink(self._listen_path)
            sock = self._bind_unix()
            self._listener = acceptor.listener = sock
        self._listener.listen(socket.SOMAXCONN)
        self._listener.setblocking(False)
        self._enabled = True
        acceptor.disabled = False
        acceptor.watch()

    def _control(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the I/O thread (at once when there is none) and wait."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._loop.stopping:
            action()
            return
        if thread is threading.current_thread():
            action()
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                action()
            except BaseException as exc:  # handed to the caller
                failure.append(exc)
            finally:
                done.set()

        self._loop.call_soon(run)
        if not done.wait(_CONTROL_TIMEOUT):
            raise ProxyError(
                f"the I/O thread of {self!r} did not respond within {_CONTROL_TIMEOUT:g} s"
            )
        if failure:
            raise failure[0]

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
        if self._protocol == "unix" and self._listen_path and self._address is not None:
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
        check_seconds(
            "timeout", timeout, source="FaultProxy.wait_stopped()", allow_zero=True, allow_none=True
        )
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
            f"FaultProxy({self._protocol} {format_address(listen)} -> "
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
        self, kind: str, index: int, address: Any, size: int, offset: int, count: int, now: float
    ) -> Decision:
        decision, events = self._plan.decide_logged(
            Operation(kind, index, address, size, offset, count, now)
        )
        if events and self.on_event is not None:
            for event in events:
                self.on_event(event)
        return decision

    def _loop_detected(self, address: Any) -> None:
        """A client came from one of this process's own upstream connections."""
        self.loops_refused += 1

    def _ended(self, index: int) -> None:
        """A stream connection closed, or a datagram client was forgotten: the plan
        lets go of what it keeps for it (issue 23; a plan replaced since is garbage)."""
        self._plan.connection_ended(index)

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

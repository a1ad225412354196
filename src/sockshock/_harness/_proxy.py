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
later datagrams of its direction, or after :data:`HOLD_WINDOW` seconds), ``corrupt``
and ``truncate``, after its ``delay``. ``AcceptErrors`` resets the accepted client
connection without connecting upstream; ``AbruptShutdown`` resets every connection,
closes the listening socket and ends the proxy (:attr:`FaultProxy.shutdown_triggered`).

Design: one I/O thread waits in epoll(7) (poll(2) where there is none) over
non-blocking sockets -- no thread per connection, no busy waiting. Delays are
timers in a heap that bounds the wait. Each direction of a stream buffers at most
:data:`BUFFER` bytes (plus one read); a full buffer stops the proxy reading its
source, so back-pressure reaches the sender through the transport's own flow
control. Directions no model looks at are spliced (the bytes never enter Python).
:meth:`FaultProxy.stop` joins the thread within a bound and closes every
descriptor.

This module holds the life cycle, the loop and accepting; stream forwarding lives
in ``_proxy_streams``, datagram relaying in ``_proxy_datagrams``, the command line
(``sockshock proxy``) in ``sockshock._frontends._proxy_cli``. Also here:
:func:`proxy_for` (a context manager) and :func:`sockshock_proxy` (a pytest fixture
function, registered by the plugin).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import ipaddress
import itertools
import math
import os
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sockshock._errors import (
    InvalidArgument,
    InvalidType,
    ProxyError,
    check_choice,
    check_number,
)
from sockshock._faults._core import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    ERROR,
    RECV,
    SEND,
    Decision,
    Operation,
)
from sockshock._faults._plan import FaultPlan, make_plan
from sockshock._harness._audit import forget_unix_path, register_unix_path
from sockshock._harness._proxy_datagrams import HOLD_WINDOW, DatagramRelay
from sockshock._harness._proxy_streams import BUFFER, StreamConnection, reset_socket

__all__ = [
    "BUFFER",
    "HOLD_WINDOW",
    "TRANSPORTS",
    "FaultProxy",
    "ProxyError",
    "ProxyFactory",
    "format_address",
    "proxy_for",
    "sockshock_proxy",
]

TRANSPORTS = ("tcp", "udp", "unix")

# The proxy polls with epoll(7) (or poll(2) where there is none): one system call
# per wake-up and no per-event objects. Readiness is reported in poll(2) bits; an
# error or a hang-up is reported as both readable and writable, so that the next
# read or write finds out what happened.
_READ = select.POLLIN
_WRITE = select.POLLOUT
_TROUBLE = select.POLLERR | select.POLLHUP
_EPOLL = hasattr(select, "epoll")
_CHUNK = 256 * 1024  # the scratch buffer every stream read lands in
_BATCH = 64  # accepts per readiness report, then the others get a turn
_ACCEPT_BACKOFF = 0.05  # out of descriptors: try accepting again after this
_STOP_TIMEOUT = 5.0
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_SOURCE = "FaultProxy"




# -- arguments -------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _inet_address(name: str, value: Any, transport: str, lowest_port: int,
                  source: str) -> tuple[int, tuple[Any, ...]]:
    """Check a (host, port) address; return its family and the address to use."""
    if isinstance(value, (str, bytes, os.PathLike)):
        what = "a path" if isinstance(value, os.PathLike) else "a string"
        raise InvalidType(
            f"{name}={value!r} is {what}, but transport={transport!r} needs a (host, port) "
            f"tuple such as ('127.0.0.1', 8000); give transport='unix' for a Unix socket "
            f"path (from {source})")
    if not (isinstance(value, tuple) and len(value) in (2, 4) and isinstance(value[0], str)):
        raise InvalidType(f"expected a (host, port) tuple but got {name}={value!r} "
                          f"(type={type(value).__name__}) (from {source})")
    host, port = value[0], value[1]
    if not _is_loopback(host):
        raise InvalidArgument(
            f"{name}={value!r}: the proxy only uses loopback addresses (127.0.0.0/8, ::1, "
            f"localhost) and Unix paths (from {source})")
    check_number("port", port, low=lowest_port, high=65535, integer=True,
                 source=f"{name}={value!r} of {source}")
    if host == "localhost":
        host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, port, *value[2:])


def _unix_path(name: str, value: Any, source: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InvalidType(
            f"expected a Unix socket path (str) but got {name}={value!r} "
            f"(type={type(value).__name__}) for transport='unix' (from {source})")
    if not value:
        raise InvalidArgument(f"{name}={value!r}: the Unix socket path is empty (from {source})")
    return value


def _plan_for(transport: str, faults: Any, seed: Any) -> FaultPlan:
    """The plan: made by the one function that makes plans, and checked against the
    transport (a model that can never fire here is a mistake, as for ``serving()``)."""
    if seed is not None:
        check_number("seed", seed, low=0, high=2**64 - 1, integer=True, source=_SOURCE)
    plan = make_plan([] if faults is None else faults, seed=seed, source="faults")
    kind = "datagram" if transport == "udp" else "stream"
    for model in plan.models:
        if not model.applies_to_transport(kind):
            raise InvalidArgument(
                f"{model!r} cannot apply to a {transport} proxy (it acts on "
                f"{'datagrams' if kind == 'stream' else 'stream connections'}); leave it "
                f"out, or proxy the other transport (from {_SOURCE})")
    return plan


def format_address(address: Any) -> str:
    """``127.0.0.1:8000``, ``[::1]:8000`` or a Unix path, as the CLI prints them."""
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


# -- the proxy -------------------------------------------------------------------------------


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
        InvalidType: for arguments of the wrong type.
    """

    def __init__(self, upstream: Any, *, listen: Any = None, faults: Any = None,
                 seed: int | None = None, transport: str = "tcp") -> None:
        check_choice("transport", transport, TRANSPORTS, source=_SOURCE)
        self.transport: str = transport
        self._listen_path: str | None = None
        self._listen: tuple[Any, ...] | None = None
        if transport == "unix":
            self.upstream: Any = _unix_path("upstream", upstream, _SOURCE)
            self._upstream_family = int(socket.AF_UNIX)
            self._listen_family = int(socket.AF_UNIX)
            if listen is not None:
                self._listen_path = _unix_path("listen", listen, _SOURCE)
        else:
            family, self.upstream = _inet_address("upstream", upstream, transport, 1, _SOURCE)
            self._upstream_family = int(family)
            family, self._listen = _inet_address(
                "listen", ("127.0.0.1", 0) if listen is None else listen, transport, 0, _SOURCE)
            self._listen_family = int(family)
        #: The plan in force: ``plan.seed``, ``plan.log``, ``plan.describe()``.
        self.plan: FaultPlan = _plan_for(transport, faults, seed)
        #: Set when an AbruptShutdown fired: every connection was reset and the proxy
        #: stopped listening.
        self.shutdown_triggered = threading.Event()
        #: Called once when an AbruptShutdown fired, on the I/O thread, after the
        #: proxy cut everything (it must not block): stop the server behind it, say.
        self.on_abrupt_shutdown: Callable[[], None] | None = None
        self._concerns = {kind: self.plan.concerns(kind)
                          for kind in (RECV, SEND, DATAGRAM_IN, DATAGRAM_OUT, ACCEPT)}
        self._lock = threading.Lock()
        self._state = "new"
        self._stopping = False
        self._done = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._poller: Any = None  # select.epoll, or select.poll
        self._callbacks: dict[int, Callable[[int], None]] = {}
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._listener: socket.socket | None = None  # stream listener or datagram socket
        self._listener_events = 0
        self._address: Any = None
        self._directory: str | None = None
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._next_index = 0
        self._connections: dict[int, StreamConnection] = {}
        self._relay: DatagramRelay | None = None
        self._closed_all = False
        self._scratch = memoryview(bytearray(_CHUNK))  # every stream read lands here

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen and start forwarding (in one daemon I/O thread); returns the proxy.

        Raises:
            ProxyError: if the proxy was started before.
            OSError: if the listening address cannot be bound.
        """
        with self._lock:
            if self._state != "new":
                raise ProxyError(f"{self!r} was started before; a proxy starts once "
                                 "(make a new FaultProxy)")
            self._state = "running"
        try:
            self._poller = select.epoll() if _EPOLL else select.poll()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._watch(self._wake_r, 0, _READ, self._on_wake)
            self._open_listener()
        except BaseException:
            self._close_everything(reset=False)
            self._release()
            with self._lock:
                self._state = "stopped"
            self._done.set()
            raise
        self._thread = threading.Thread(
            target=self._run, daemon=True,
            name=f"sockshock proxy {format_address(self._address)} -> "
                 f"{format_address(self.upstream)}")
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
        sock.setblocking(False)
        self._watch_listener()

    def _watch_listener(self) -> None:
        if self._listener is None or self._stopping or self._listener_events:
            return
        callback = self._relay.on_front if self._relay is not None else self._on_accept
        self._watch(self._listener, 0, _READ, callback)
        self._listener_events = _READ

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
        """
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
            raise ProxyError(f"the I/O thread of {self!r} failed: {self._failure!r}") \
                from self._failure
        if stuck:
            raise ProxyError(f"the I/O thread of {self!r} did not stop within {timeout:g} s; "
                             "its sockets were closed")

    def _release(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
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
        self._stopping = True
        self._wake()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until the proxy has stopped forwarding (``stop()``, a signal through
        :meth:`request_stop`, or an ``AbruptShutdown``); True if it has."""
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether the proxy is forwarding (started, not stopped, not shut down)."""
        return self._state == "running" and not self._done.is_set() and not self._stopping

    @property
    def address(self) -> Any:
        """The address to give clients: ``(host, port)``, or the Unix socket path."""
        if self._address is None:
            raise ProxyError(f"{self!r} has no address yet: call start() first "
                             "(or use it as a context manager)")
        return self._address

    def __enter__(self) -> FaultProxy:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.stop()
            return
        try:
            self.stop()
        except ProxyError as error:  # the body's exception wins; this one goes with it
            _add_note(exc, f"also, stopping the proxy failed: {error}")

    def __repr__(self) -> str:
        listen = self._address if self._address is not None else (
            self._listen_path or self._listen)
        return (f"FaultProxy({self.transport} {format_address(listen)} -> "
                f"{format_address(self.upstream)}, {self.plan!r})")

    # -- the I/O thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        poller = self._poller
        callbacks = self._callbacks
        timers = self._timers
        try:
            while not self._stopping:
                timeout: float | None = None
                if timers:
                    timeout = max(0.0, timers[0][0] - time.monotonic())
                    if not _EPOLL:  # poll(2) counts milliseconds
                        timeout = math.ceil(timeout * 1000)
                for fd, events in poller.poll(timeout):
                    callback = callbacks.get(fd)
                    if callback is None:  # closed earlier in this batch
                        continue
                    callback(events | _READ | _WRITE if events & _TROUBLE else events)
                    if self._stopping:
                        break
                if timers and not self._stopping:
                    now = time.monotonic()
                    while timers and timers[0][0] <= now and not self._stopping:
                        heapq.heappop(timers)[2]()
        except BaseException as exc:  # a bug: stop() reports it
            self._failure = exc
        finally:
            self._close_everything(reset=False)
            self._done.set()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _on_wake(self, mask: int) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _watch(self, sock: socket.socket, old: int, new: int,
               callback: Callable[[int], None]) -> None:
        """Poll ``sock`` for ``new`` (poll bits; 0: not at all) instead of ``old``."""
        fd = sock.fileno()
        if not old:
            self._poller.register(fd, new)
            self._callbacks[fd] = callback
        elif not new:
            self._callbacks.pop(fd, None)
            with contextlib.suppress(KeyError, ValueError, OSError):  # closed already
                self._poller.unregister(fd)
        else:
            self._poller.modify(fd, new)
            self._callbacks[fd] = callback

    def _forget(self, index: int) -> None:
        self._connections.pop(index, None)

    def _new_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _call_later(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._sequence), callback))

    def _ask(self, kind: str, index: int, address: Any, size: int, offset: int,
             count: int) -> Decision:
        return self.plan.decide(Operation(kind, index, address, size, offset, count,
                                          time.monotonic()))

    def _abrupt_shutdown(self) -> None:
        """AbruptShutdown: reset every connection, stop listening, end the loop."""
        self._stopping = True
        self._close_everything(reset=True)
        self.shutdown_triggered.set()
        if self.on_abrupt_shutdown is not None:
            self.on_abrupt_shutdown()

    def _close_everything(self, *, reset: bool) -> None:
        with self._lock:
            if self._closed_all:
                return
            self._closed_all = True
        for conn in list(self._connections.values()):
            conn.close(reset=reset)
        if self._relay is not None:
            self._relay.close()
        self._timers.clear()
        if self._listener is not None:
            self._listener.close()
        self._callbacks.clear()
        if _EPOLL and self._poller is not None:
            self._poller.close()

    # -- streams -------------------------------------------------------------------------------

    def _on_accept(self, mask: int) -> None:
        listener = self._listener
        assert listener is not None
        for _ in range(_BATCH):
            if self._stopping:
                return
            try:
                client, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                # Out of descriptors: leave the client in the backlog and try again
                # later instead of spinning on a listener that stays readable.
                self._watch(listener, self._listener_events, 0, self._on_accept)
                self._listener_events = 0
                self._call_later(_ACCEPT_BACKOFF, self._watch_listener)
                return
            self._admit(client, address)

    def _admit(self, client: socket.socket, address: Any) -> None:
        client.setblocking(False)
        if self._concerns[ACCEPT]:
            decision = self._ask(ACCEPT, self._next_index, None, 0, 0, 0)
            if decision.action == ERROR:
                reset_socket(client)  # refused: no connection upstream, no index used
                return
        try:
            upstream = socket.socket(self._upstream_family, socket.SOCK_STREAM)
        except OSError:
            reset_socket(client)
            return
        upstream.setblocking(False)
        if self.transport == "tcp":
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        index = self._new_index()
        conn = StreamConnection(self, index, address, client, upstream)
        self._connections[index] = conn
        conn.connect()


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


# -- helpers for tests ----------------------------------------------------------------------------


@contextlib.contextmanager
def proxy_for(upstream: Any, *, listen: Any = None,
              faults: FaultPlan | list[Any] | tuple[Any, ...] | None = None,
              seed: int | None = None, transport: str = "tcp") -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of ``upstream`` for the length of a ``with``
    block (any server: in this process, in a subprocess, in another language).

    Args:
        upstream: the server's ``(host, port)`` on loopback, or its Unix path
            (``transport="unix"``).
        listen: see :class:`FaultProxy`.
        faults: a FaultPlan or a list of fault models.
        seed: the seed of a plan made from a list.
        transport: ``"tcp"``, ``"udp"`` or ``"unix"``.

    Yields:
        The running proxy: give clients ``proxy.address``; ``proxy.plan.log`` is
        what was injected.
    """
    with FaultProxy(upstream, listen=listen, faults=faults, seed=seed,
                    transport=transport) as proxy:
        yield proxy


class ProxyFactory:
    """What the ``sockshock_proxy`` fixture gives a test: call it to put a proxy in
    front of any address; every proxy it started is stopped at teardown.

    Args:
        seed: the seed of plans made from a list of models (the test's seed when
            the plugin provides it; default: random per proxy).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        #: The proxies started so far, in order.
        self.proxies: list[FaultProxy] = []

    def __call__(self, upstream: Any, *,
                 faults: FaultPlan | list[Any] | tuple[Any, ...] | None = None,
                 seed: int | None = None, transport: str = "tcp",
                 listen: Any = None) -> FaultProxy:
        """Start a proxy in front of ``upstream``; clients connect to its ``.address``."""
        if seed is None and not isinstance(faults, FaultPlan):
            seed = self.seed
        proxy = FaultProxy(upstream, listen=listen, faults=faults, seed=seed,
                           transport=transport)
        proxy.start()
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        """Stop every proxy (last first); then raise the first failure, if any."""
        errors: list[ProxyError] = []
        for proxy in reversed(self.proxies):  # kept: their logs go in a failure report
            try:
                proxy.stop()
            except ProxyError as exc:
                errors.append(exc)
        if errors:
            first, *rest = errors
            for other in rest:
                _add_note(first, f"also: {other}")
            raise first

    def report(self) -> str:
        """Each proxy's plan and log, for a failing test's report."""
        return "\n".join(f"{proxy!r}:\n{proxy.plan.describe()}" for proxy in self.proxies)


def sockshock_proxy(seed: int | None = None) -> Iterator[ProxyFactory]:
    """Fixture function (the plugin registers it): ``sockshock_proxy(upstream,
    faults=[...], transport="tcp")`` starts a :class:`FaultProxy` in front of any
    address -- a server in a subprocess included -- and returns it (give clients
    its ``.address``). Every proxy is stopped at teardown.

    Args:
        seed: the seed for plans made from a list of models (pytest leaves
            arguments with defaults alone; the plugin passes the test's seed).

    Yields:
        A :class:`ProxyFactory`.
    """
    factory = ProxyFactory(seed)
    try:
        yield factory
    finally:
        factory.close()

"""FaultLayer and FaultySocket: the only code that carries fault decisions out.

A :class:`FaultySocket` *is* a ``socket.socket`` (a subclass sharing the same file
descriptor), so ``isinstance`` checks, selectors, ``makefile()``, ``settimeout()``
and the standard library's handlers keep working. It overrides the data-path
methods -- ``recv``/``recv_into``/``recvfrom``/``recvfrom_into``, ``send``/
``sendall``/``sendto``/``sendfile``, ``accept``, ``shutdown``/``close`` -- asks the
plan about each operation, and makes the server see exactly what the operating
system would report: short counts, ``b""``, ``ConnectionResetError``/
``BrokenPipeError`` with the right errno, ``TimeoutError("timed out")`` when a
delay outlasts the socket's timeout, ``BlockingIOError`` for non-blocking sockets,
silence for a lost datagram. Never a sockshock exception on the data path.

Incoming datagrams that are duplicated or held back for reordering are put back
into the kernel's queue through a private loopback socket, so that the server's
selector sees them like any other datagram.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import pickle
import selectors
import shutil
import socket
import tempfile
import threading
import weakref
from typing import Any

from sockshock._clock import Clock, resolve_clock
from sockshock._errors import InvalidType
from sockshock._faults._core import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    NOTHING,
    RECV,
    SEND,
    Decision,
    Operation,
)
from sockshock._faults._plan import FaultPlan

__all__ = ["FaultLayer", "FaultySocket"]

_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))  # ints: enum flags are slow to combine
_PEEK = int(getattr(socket, "MSG_PEEK", 0))
_MAX_DATAGRAM = 65536
_CHANNEL_MAX = 60_000


def _os_error(code: int) -> OSError:
    """The exception the kernel's ``code`` becomes in Python (OSError picks the
    subclass: ConnectionResetError, BrokenPipeError, BlockingIOError...)."""
    return OSError(code, os.strerror(code))


def _timed_out() -> TimeoutError:
    return TimeoutError("timed out")  # exactly what socket timeouts raise


class _Connection:
    """What the layer knows about one connection (or one datagram peer)."""

    __slots__ = ("address", "count", "eof", "index", "offset", "reset",
                 "reset_read_reported", "reset_write_reported")

    def __init__(self, index: int, address: Any) -> None:
        self.index = index
        self.address = address
        self.offset = {"in": 0, "out": 0}
        self.count = {"in": 0, "out": 0}
        self.reset = False
        self.reset_read_reported = False
        self.reset_write_reported = False
        self.eof = False


_LIVE_LAYERS: weakref.WeakSet[FaultLayer] = weakref.WeakSet()


def _before_fork() -> None:
    for layer in list(_LIVE_LAYERS):
        layer._start_reader()


def _after_fork_in_child() -> None:
    for layer in list(_LIVE_LAYERS):
        layer._lock = threading.Lock()
        layer._drain_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


class FaultLayer:
    """A socket layer that applies a :class:`~sockshock.faults.FaultPlan`.

    Args:
        plan: a FaultPlan, a list of fault models (a plan with a random seed is
            made), or ``None`` for no faults.
        clock: ``"real"`` (default), ``"virtual"`` (delays advance a
            :class:`~sockshock.VirtualClock` instead of sleeping) or a Clock.

    Use it as a server's ``socket_layer``. With forking servers, call
    :meth:`close` (or use ``with``) when done -- the harness does: it stops the
    thread that collects forked children's decisions.
    """

    def __init__(self, plan: FaultPlan | list[Any] | tuple[Any, ...] | None = None,
                 clock: Any = None) -> None:
        if plan is None:
            plan = FaultPlan(seed=0)
        elif isinstance(plan, (list, tuple)):
            plan = FaultPlan(*plan)
        elif not isinstance(plan, FaultPlan):
            raise InvalidType(
                f"expected a FaultPlan or a list of fault models but got plan={plan!r} "
                f"(type={type(plan).__name__}) (from FaultLayer(...))")
        self.plan: FaultPlan = plan
        self.clock: Clock = resolve_clock(clock, source="FaultLayer(clock=...)")
        self.active = bool(plan.models)
        self._lock = threading.Lock()
        self._next_connection = 0
        self._datagram_peers: dict[Any, _Connection] = {}
        self._pid = os.getpid()
        # Forked children report their decisions through a socket pair made just
        # before the first fork; a reader thread drains it so that a child never
        # blocks on a full queue.
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._drain_lock = threading.Lock()
        self._reader_thread: threading.Thread | None = None
        self._closed = False
        self._server: Any = None
        self._shutdown_thread: threading.Thread | None = None
        self._shutdown_requested = False
        #: Set when an AbruptShutdown fires (before the server has stopped).
        self.shutdown_triggered = threading.Event()
        self._shutdown_done = threading.Event()
        plan.add_collector(self.poll_children)
        _LIVE_LAYERS.add(self)

    # -- the SocketLayer protocol ------------------------------------------------

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> FaultySocket:
        sock = FaultySocket(family, type, proto)
        sock._sockshock_attach(self, None)
        return sock

    # -- decisions -------------------------------------------------------------------

    def _numbered(self, address: Any) -> _Connection:
        """The next connection in order (the caller holds the lock)."""
        connection = _Connection(self._next_connection, address)
        self._next_connection += 1
        return connection

    def new_connection(self, address: Any) -> _Connection:
        with self._lock:
            return self._numbered(address)

    def datagram_peer(self, address: Any) -> _Connection:
        with self._lock:
            connection = self._datagram_peers.get(address)
            if connection is None:
                connection = self._datagram_peers[address] = self._numbered(address)
            return connection

    def ask(self, kind: str, connection: _Connection | None, size: int = 0) -> Decision:
        """The plan's decision for one operation, logged (or sent to the parent)."""
        if not self.active:
            return NOTHING
        direction = "in" if kind in (RECV, DATAGRAM_IN) else "out"
        if not self.plan.concerns(kind):  # e.g. reads under a plan of write faults
            if connection is not None:
                connection.count[direction] += 1
            return NOTHING
        pid = os.getpid()
        with self._lock:
            if connection is None:  # accept: the connection it would create
                op = Operation(kind, self._next_connection, None, 0, 0, 0, self.clock.now())
            else:
                op = Operation(kind, connection.index, connection.address, size,
                               connection.offset[direction], connection.count[direction],
                               self.clock.now())
                connection.count[direction] += 1
            before = len(self.plan._log)
            decision = self.plan.decide(op, pid=pid if pid != self._pid else None)
            if pid != self._pid:
                for event in self.plan._log[before:]:
                    self._send_to_parent(("event", event))
        if decision.action == "shutdown":
            self._abrupt_shutdown()
        return decision

    def _send_to_parent(self, message: tuple[str, Any]) -> None:
        payload = pickle.dumps(message)
        if self._writer is not None and len(payload) <= _CHANNEL_MAX:
            with contextlib.suppress(OSError):
                self._writer.send(payload)

    def poll_children(self) -> None:
        """Bring forked children's log events (and shutdown requests) in now."""
        if os.getpid() == self._pid and not self._closed:
            self._drain()

    def _drain(self) -> bool:
        """Process every waiting message; False once the stop message came."""
        with self._drain_lock:
            while self._reader is not None:
                try:
                    payload = self._reader.recv(_CHANNEL_MAX + 1024)
                except OSError:
                    return True
                kind, value = pickle.loads(payload)
                if kind == "event":
                    with self._lock:
                        self.plan.record(value)
                elif kind == "shutdown":
                    self._abrupt_shutdown()
                elif kind == "stop":
                    return False
            return True

    def _start_reader(self) -> None:
        if self.active and self._reader_thread is None and not self._closed \
                and os.getpid() == self._pid:
            self._reader, self._writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._reader.setblocking(False)
            self._reader_thread = threading.Thread(
                target=self._read_children, daemon=True, name="sockshock fault-log reader")
            self._reader_thread.start()

    def _read_children(self) -> None:
        assert self._reader is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._reader, selectors.EVENT_READ)
            while True:
                selector.select()
                if not self._drain():
                    return

    # -- abrupt shutdown -----------------------------------------------------------

    def bind_server(self, server: Any) -> None:
        """The server that AbruptShutdown stops (the harness binds it)."""
        self._server = server

    def _abrupt_shutdown(self) -> None:
        server = self._server
        if server is None:
            return
        if os.getpid() != self._pid:  # a forked child: ask the parent, wake its loop
            self._send_to_parent(("shutdown", None))
            wake = getattr(server, "_wake", None)
            if wake is not None:
                wake()
            return
        with self._lock:
            if self._shutdown_requested:
                return
            self._shutdown_requested = True

        def stop() -> None:
            try:
                server.shutdown()
                server.server_close()
            finally:
                self._shutdown_done.set()

        # Never from the calling thread: it may be the serving thread itself.
        thread = threading.Thread(target=stop, daemon=True, name="sockshock abrupt shutdown")
        thread.start()
        self._shutdown_thread = thread
        self.shutdown_triggered.set()

    def join_shutdown(self, timeout: float | None = None) -> bool:
        """Wait until a triggered AbruptShutdown has finished (``shutdown()`` and
        ``server_close()`` returned); True if it has, or if none was triggered."""
        if not self.shutdown_triggered.is_set():
            return True
        return self._shutdown_done.wait(timeout)

    @property
    def shut_down(self) -> bool:
        """Whether an AbruptShutdown has been triggered."""
        return self._shutdown_requested

    def close(self) -> None:
        """Stop the reader thread and release the layer's own descriptors (not the
        sockets it handed out)."""
        if os.getpid() != self._pid or self._closed:
            return
        self._closed = True
        if self._reader_thread is not None:
            assert self._writer is not None
            assert self._reader is not None
            self._writer.send(pickle.dumps(("stop", None)))
            self._reader_thread.join()
            self._reader.close()
            self._writer.close()

    def __enter__(self) -> FaultLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FaultLayer({self.plan!r}, clock={self.clock!r})"


class FaultySocket(socket.socket):
    """A ``socket.socket`` whose data path obeys a :class:`FaultLayer`."""

    _sockshock_layer: FaultLayer
    _sockshock_conn: _Connection | None

    def _sockshock_attach(self, layer: FaultLayer, connection: _Connection | None) -> None:
        self._sockshock_layer = layer
        self._sockshock_conn = connection
        kind = self.type  # a property that builds an enum: read it once
        # The data-path overrides test these two flags first: a layer whose plan
        # is empty costs one attribute check per call.
        self._sockshock_stream = (layer.active and connection is not None
                                  and kind == socket.SOCK_STREAM)
        self._sockshock_datagram = layer.active and kind == socket.SOCK_DGRAM
        self._sockshock_closing = threading.Event()
        self._sockshock_read_shut = False
        self._sockshock_pending: dict[str, tuple[Decision, float]] = {}
        # Datagram sockets: re-injection of held and duplicated datagrams.
        self._sockshock_helper: socket.socket | None = None
        self._sockshock_helper_dir: str | None = None
        self._sockshock_reinjected: collections.deque[Any] = collections.deque()
        self._sockshock_held_in: list[list[Any]] = []  # [countdown, data, address]
        self._sockshock_held_out: list[list[Any]] = []

    # -- accept ------------------------------------------------------------------

    def accept(self) -> tuple[socket.socket, Any]:
        layer = self._sockshock_layer
        decision = layer.ask(ACCEPT, None)
        if decision.action == "error" and decision.errno:
            raise _os_error(decision.errno)
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = FaultySocket(self.family, self.type, self.proto, fileno=fd)
        conn._sockshock_attach(layer, layer.new_connection(address))
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        return conn, address

    # -- carrying delays out -----------------------------------------------------

    def _sockshock_delay(self, kind: str, decision: Decision) -> Decision:
        """Wait out ``decision.delay`` as the OS would show it; returns the decision
        to apply (for a non-blocking socket, one deferred from an earlier call)."""
        if decision.delay <= 0:
            return decision
        layer = self._sockshock_layer
        timeout = self.gettimeout()
        if timeout == 0.0:  # non-blocking: the data is not there yet
            ready_at = layer.clock.now() + decision.delay
            self._sockshock_pending[kind] = (decision, ready_at)
            raise _os_error(errno.EAGAIN)
        if timeout is not None and decision.delay > timeout:
            layer.clock.sleep(timeout, self._sockshock_closing)
            raise _timed_out()
        layer.clock.sleep(decision.delay, self._sockshock_closing)
        return decision

    def _sockshock_decide(self, kind: str, size: int) -> Decision:
        pending = self._sockshock_pending.pop(kind, None)
        if pending is not None:
            decision, ready_at = pending
            if self._sockshock_layer.clock.now() < ready_at and self.gettimeout() == 0.0:
                self._sockshock_pending[kind] = pending
                raise _os_error(errno.EAGAIN)
            return Decision(limit=decision.limit, action=decision.action,
                            errno=decision.errno)
        decision = self._sockshock_layer.ask(kind, self._sockshock_conn, size)
        return self._sockshock_delay(kind, decision)

    def _sockshock_stall(self) -> None:
        """The peer is silent: block until the timeout, a shutdown or a close."""
        timeout = self.gettimeout()
        if timeout == 0.0:
            raise _os_error(errno.EAGAIN)
        if timeout is None:
            self._sockshock_closing.wait()  # real time: only the server can end it
        elif not self._sockshock_layer.clock.sleep(timeout, self._sockshock_closing):
            raise _timed_out()

    # -- stream reads ------------------------------------------------------------

    def _sockshock_read_limit(self, size: int, flags: int) -> int | None:
        """Decide a read; return how many bytes to read, or None for end of file."""
        conn = self._sockshock_conn
        assert conn is not None
        if conn.reset:
            if not conn.reset_read_reported:
                conn.reset_read_reported = True
                raise _os_error(errno.ECONNRESET)
            return None
        if conn.eof or self._sockshock_read_shut:
            return None
        decision = self._sockshock_decide(RECV, size)
        if decision.action == "reset":
            conn.reset = conn.reset_read_reported = True
            raise _os_error(errno.ECONNRESET)
        if decision.action == "eof":
            conn.eof = True
            return None
        if decision.action == "stall":
            self._sockshock_stall()
            return None  # woken by shutdown(SHUT_RD)/close: end of file
        return size if decision.limit is None else max(1, min(size, decision.limit))

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if not self._sockshock_stream or flags & _PEEK or bufsize <= 0:
            if self._sockshock_datagram:
                return self.recvfrom(bufsize, flags)[0]
            return super().recv(bufsize, flags)
        limit = self._sockshock_read_limit(bufsize, flags)
        if limit is None:
            return b""
        data = super().recv(limit, flags)
        self._sockshock_conn.offset["in"] += len(data)  # type: ignore[union-attr]
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if not self._sockshock_stream or flags & _PEEK:
            if self._sockshock_datagram:
                return self.recvfrom_into(buffer, nbytes, flags)[0]
            return super().recv_into(buffer, nbytes, flags)
        size = nbytes or memoryview(buffer).nbytes
        if size <= 0:
            return super().recv_into(buffer, nbytes, flags)
        limit = self._sockshock_read_limit(size, flags)
        if limit is None:
            return 0
        n = super().recv_into(buffer, limit, flags)
        self._sockshock_conn.offset["in"] += n  # type: ignore[union-attr]
        return n

    # -- stream writes -------------------------------------------------------------

    def send(self, data: Any, flags: int = 0) -> int:
        if not self._sockshock_stream:
            return super().send(data, flags)
        conn = self._sockshock_conn
        assert conn is not None
        if conn.reset:
            if not conn.reset_write_reported and not conn.reset_read_reported:
                conn.reset_write_reported = True
                raise _os_error(errno.ECONNRESET)
            raise _os_error(errno.EPIPE)
        view = memoryview(data).cast("B")
        if not view.nbytes:
            return super().send(view, flags)
        decision = self._sockshock_decide(SEND, view.nbytes)
        if decision.action == "reset":
            conn.reset = conn.reset_write_reported = True
            raise _os_error(errno.ECONNRESET)
        if decision.limit is not None:
            view = view[:max(1, decision.limit)]
        n = super().send(view, flags)
        conn.offset["out"] += n
        return n

    def sendall(self, data: Any, flags: int = 0) -> None:
        if not self._sockshock_stream:
            return super().sendall(data, flags)
        view = memoryview(data).cast("B")
        sent = 0
        while sent < view.nbytes:
            sent += self.send(view[sent:], flags)
        return None

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        # os.sendfile() would bypass the faults: go through send().
        return self._sendfile_use_send(file, offset, count)  # type: ignore[attr-defined,no-any-return]

    # -- datagrams -------------------------------------------------------------------

    def _sockshock_helper_socket(self) -> socket.socket:
        """A private socket that puts datagrams back into this socket's queue."""
        if self._sockshock_helper is None:
            helper = socket.socket(self.family, socket.SOCK_DGRAM)
            try:
                if self.family == getattr(socket, "AF_UNIX", None):
                    self._sockshock_helper_dir = tempfile.mkdtemp(prefix="sockshock-reinject-")
                    helper.bind(os.path.join(self._sockshock_helper_dir, "helper"))
                else:
                    helper.bind(("::1", 0) if self.family == socket.AF_INET6 else ("127.0.0.1", 0))
            except BaseException:
                helper.close()
                raise
            self._sockshock_helper = helper
        return self._sockshock_helper

    def _sockshock_reinject(self, data: bytes, address: Any) -> None:
        helper = self._sockshock_helper_socket()
        self._sockshock_reinjected.append(address)
        try:
            helper.sendto(data, self.getsockname())
        except OSError:
            self._sockshock_reinjected.pop()

    def _sockshock_queue_empty(self) -> bool:
        if not _DONTWAIT:
            return True
        try:
            super().recvfrom(1, _PEEK | _DONTWAIT)
        except OSError:
            return True
        return False

    def _sockshock_release_held(self, everything: bool) -> None:
        """Count down held datagrams; put the due ones (or all) back in the queue."""
        keep = []
        for item in self._sockshock_held_in:
            item[0] -= 1
            if everything or item[0] <= 0:
                self._sockshock_reinject(item[1], item[2])
            else:
                keep.append(item)
        self._sockshock_held_in = keep

    def _sockshock_recvfrom(self, bufsize: int, flags: int) -> tuple[bytes, Any]:
        layer = self._sockshock_layer
        while True:
            data, address = super().recvfrom(bufsize, flags)
            helper = self._sockshock_helper
            if helper is not None and self._sockshock_reinjected \
                    and address == helper.getsockname():
                address = self._sockshock_reinjected.popleft()  # decided already
                if self._sockshock_held_in:
                    self._sockshock_release_held(everything=self._sockshock_queue_empty())
                return data, address
            peer = layer.datagram_peer(address)
            decision = layer.ask(DATAGRAM_IN, peer, len(data))
            peer.offset["in"] += len(data)
            if decision.delay:
                self._sockshock_delay(DATAGRAM_IN, decision)
            if decision.action == "drop" or decision.hold:
                if decision.hold and decision.action != "drop":
                    self._sockshock_held_in.append([decision.hold, data, address])
                    if self._sockshock_queue_empty():
                        self._sockshock_release_held(everything=True)
                if flags & _DONTWAIT or self.gettimeout() == 0.0:
                    raise _os_error(errno.EAGAIN)  # what a spurious wake-up looks like
                continue  # a blocking receive waits for the next datagram
            data = _mangle(data, decision)
            for _ in range(decision.duplicate):
                self._sockshock_reinject(data, address)
            if self._sockshock_held_in:
                self._sockshock_release_held(everything=self._sockshock_queue_empty())
            return data, address

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        if not self._sockshock_datagram or flags & _PEEK:
            return super().recvfrom(bufsize, flags)
        return self._sockshock_recvfrom(bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        if not self._sockshock_datagram or flags & _PEEK:
            return super().recvfrom_into(buffer, nbytes, flags)
        view = memoryview(buffer).cast("B")
        size = nbytes or view.nbytes
        data, address = self._sockshock_recvfrom(size, flags)
        view[:len(data)] = data
        return len(data), address

    def sendto(self, data: Any, *args: Any) -> int:
        if not self._sockshock_datagram:
            return super().sendto(data, *args)
        flags, address = (0, args[0]) if len(args) == 1 else args
        payload = bytes(data)
        peer = self._sockshock_layer.datagram_peer(address)
        decision = self._sockshock_layer.ask(DATAGRAM_OUT, peer, len(payload))
        peer.offset["out"] += len(payload)
        if decision.delay:
            self._sockshock_delay(DATAGRAM_OUT, decision)
        if decision.action != "drop":
            payload = _mangle(payload, decision)
            if decision.hold:
                self._sockshock_held_out.append([decision.hold, payload, address, flags])
            else:
                for _ in range(1 + decision.duplicate):
                    super().sendto(payload, flags, address)
        self._sockshock_release_held_out(everything=False)
        return len(data) if not isinstance(data, memoryview) else data.nbytes

    def _sockshock_release_held_out(self, everything: bool) -> None:
        keep = []
        for item in self._sockshock_held_out:
            item[0] -= 1
            if everything or item[0] < 0:
                with contextlib.suppress(OSError):
                    super().sendto(item[1], item[3], item[2])
            else:
                keep.append(item)
        self._sockshock_held_out = keep

    # -- closing -----------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._sockshock_read_shut = True
            self._sockshock_closing.set()
        super().shutdown(how)

    def _sockshock_cleanup(self) -> None:
        closing = getattr(self, "_sockshock_closing", None)
        if closing is None:
            return
        closing.set()
        if self._sockshock_held_out:
            self._sockshock_release_held_out(everything=True)
        if self._sockshock_helper is not None:
            self._sockshock_helper.close()
            self._sockshock_helper = None
        if self._sockshock_helper_dir is not None:
            shutil.rmtree(self._sockshock_helper_dir, ignore_errors=True)
            self._sockshock_helper_dir = None

    def close(self) -> None:
        if self.fileno() != -1:
            self._sockshock_cleanup()
        super().close()

    def dup(self) -> FaultySocket:
        duplicate = super().dup()
        assert isinstance(duplicate, FaultySocket)
        duplicate._sockshock_attach(self._sockshock_layer, self._sockshock_conn)
        return duplicate

    def detach(self) -> int:
        self._sockshock_cleanup()
        return super().detach()


def _mangle(data: bytes, decision: Decision) -> bytes:
    if decision.truncate is not None:
        data = data[:decision.truncate]
    if decision.corrupt and data:
        flipped = bytearray(data)
        for bit in decision.corrupt:
            position = bit % (len(flipped) * 8)
            flipped[position // 8] ^= 1 << (position % 8)
        data = bytes(flipped)
    return data


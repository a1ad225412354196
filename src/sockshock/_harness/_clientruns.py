"""Running the misbehaving clients: their results, the run handle, and what each does.

:class:`ClientRun` runs one client in the calling thread (``result()``) or in a
background thread (``with``); the ``_run_*`` functions are the clients' behaviour,
written against :mod:`sockshock._harness._clientnet`'s connections. The public
functions and their argument checks are in :mod:`sockshock._harness._clients`.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from sockshock._errors import SockshockError, check_number
from sockshock._harness._clientnet import (
    READ,
    SLICE,
    WRITE,
    Conn,
    Connection,
    Control,
    describe_error,
    wait,
    watch,
)

__all__ = [
    "RUNNERS",
    "ClientResult",
    "ClientRun",
    "DatagramResult",
    "StreamResult",
]


# -- results ---------------------------------------------------------------------


@dataclass(frozen=True)
class StreamResult:
    """What a stream client (TCP or Unix stream) saw.

    Attributes:
        kind: the client (``"slowloris"``...).
        address: where it connected (``"localhost"`` resolved).
        connections: one :class:`Connection` per connection attempted, in order
            (fewer than asked for if the run was stopped or ran out of time).
        elapsed: seconds the run took.
        stopped: whether ``stop()`` (or the end of a ``with`` block) cut it short.
        unread: ``never_reads`` only: bytes the server wrote that were still
            waiting, unread, in the client's receive queue at the end (``None``
            for the other clients, or if the platform cannot tell).
        unread_since: ``never_reads`` only: seconds after the start when
            ``unread`` last changed. Well before ``elapsed`` with the connection
            still open means the server stopped getting data through: its writes
            were blocked (or it had nothing more to send).
    """

    kind: str
    address: Any
    connections: tuple[Connection, ...]
    elapsed: float
    stopped: bool
    unread: int | None = None
    unread_since: float | None = None

    @property
    def sent(self) -> int:
        """Bytes sent on all connections."""
        return sum(c.sent for c in self.connections)

    @property
    def received(self) -> int:
        """Bytes received on all connections."""
        return sum(c.received for c in self.connections)

    @property
    def reply(self) -> bytes:
        """The first connection's reply (its first ``max_reply`` bytes)."""
        return self.connections[0].reply if self.connections else b""

    @property
    def established(self) -> int:
        """Connections that were established."""
        return sum(c.connected for c in self.connections)

    @property
    def refused(self) -> int:
        """Connections refused (ECONNREFUSED)."""
        return self.outcomes.get("refused", 0)

    @property
    def failed(self) -> int:
        """Connections that could not be made otherwise (timed out, no socket file)."""
        return self.outcomes.get("failed", 0)

    @property
    def outcomes(self) -> dict[str, int]:
        """How many connections ended each way, e.g. ``{"eof": 3, "open": 1}``."""
        counts: dict[str, int] = {}
        for c in self.connections:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        return counts

    @property
    def errors(self) -> tuple[str, ...]:
        """The distinct socket errors seen, in the order they first appeared."""
        return tuple(dict.fromkeys(c.error for c in self.connections if c.error))


@dataclass(frozen=True)
class DatagramResult:
    """What a datagram client (UDP or Unix datagram) saw.

    Attributes:
        kind: the client (``"datagram_burst"``).
        address: where it sent (``"localhost"`` resolved).
        datagrams: datagrams sent.
        failed: datagrams that could not be sent (an error, or no room in the
            socket buffer within ``timeout``).
        replies: datagrams received back.
        sent: bytes sent.
        received: bytes received.
        reply: the first reply (its first ``max_reply`` bytes).
        errors: the distinct socket errors seen, in the order they first
            appeared (e.g. ``"ECONNREFUSED: Connection refused"`` from an ICMP
            port unreachable).
        elapsed: seconds the run took.
        stopped: whether ``stop()`` (or the end of a ``with`` block) cut it short.
    """

    kind: str
    address: Any
    datagrams: int
    failed: int
    replies: int
    sent: int
    received: int
    reply: bytes
    errors: tuple[str, ...]
    elapsed: float
    stopped: bool

    @property
    def unanswered(self) -> int:
        """Datagrams sent that got no reply within the bound."""
        return max(0, self.datagrams - self.replies)


ClientResult = StreamResult | DatagramResult
R = TypeVar("R", StreamResult, DatagramResult)


# -- running ---------------------------------------------------------------------


class ClientRun(Generic[R]):
    """One misbehaving client, ready to run once.

    ``run.result()`` runs it in the calling thread and returns its result (a
    :class:`StreamResult` or :class:`DatagramResult`). ``with run:`` (or
    :meth:`start`) runs it in a background thread; leaving the block stops it,
    joins the thread and closes every socket it opened -- also when the block
    raises -- and ``run.result()`` then returns what happened. An exception the
    client itself raised (not a socket error: those are in the result) is
    re-raised by :meth:`result` and by leaving the block.

    A run that is never started does nothing: call :meth:`result` or use ``with``.
    """

    _JOIN_GRACE = 5.0  # beyond the run's duration; it ends within a slice of stop()

    def __init__(self, kind: str, control: Control, runner: Callable[[Control], R]) -> None:
        self.kind = kind
        self._control = control
        self._runner: Callable[[Control], R] = runner
        self._lock = threading.Lock()
        self._claimed = False
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._result: R | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = ("done" if self._done.is_set() else "running" if self._claimed
                 else "not started")
        return f"<ClientRun {self.kind} to {self._control.target.sockaddr!r}: {state}>"

    @property
    def running(self) -> bool:
        """Whether the client has started and not finished."""
        return self._claimed and not self._done.is_set()

    def _claim(self) -> bool:
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _execute(self) -> None:
        control = self._control
        control.begin()
        try:
            self._result = self._runner(control)
        except BaseException as exc:  # handed to result() / __exit__
            self._error = exc
        finally:
            control.close_all()
            control.connected.set()
            control.sent.set()
            self._done.set()

    def start(self) -> ClientRun[R]:
        """Run the client in a background (daemon) thread.

        Returns:
            This run, to use as a context manager or to :meth:`stop` later.

        Raises:
            SockshockError: the run was already started (each runs once).
        """
        if not self._claim():
            raise SockshockError(f"this {self.kind} client was already started; "
                                 "make a new one (each client runs once)")
        self._thread = threading.Thread(target=self._execute, daemon=True,
                                        name=f"sockshock client {self.kind}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the client to end now; it does within a few tens of milliseconds."""
        self._control.stop.set()

    def wait_connected(self, timeout: float = 1.0) -> bool:
        """Wait until the client made its connections (or gave up, or ended).

        Returns:
            False if ``timeout`` seconds passed first.
        """
        check_number("timeout", timeout, low=0, source="wait_connected()")
        return self._control.connected.wait(timeout)

    def wait_sent(self, timeout: float = 1.0) -> bool:
        """Wait until the client sent what it sends up front (or ended).

        That is: slowloris, connect_and_idle -- the connections and the request
        start are there; drip_feed -- the whole payload; never_reads -- every
        request; half_close -- the request and the half-close; rst_on_close --
        the reset; connection_flood -- every connection was tried;
        datagram_burst -- every datagram.

        Returns:
            False if ``timeout`` seconds passed first.
        """
        check_number("timeout", timeout, low=0, source="wait_sent()")
        return self._control.sent.wait(timeout)

    def result(self) -> R:
        """Run the client here if it has not started, else wait for it to finish.

        Returns:
            What happened.

        Raises:
            SockshockError: the background thread did not finish (a bug).
            Exception: whatever the client itself raised.
        """
        if self._claim():
            self._execute()
        else:
            self._join()
        if self._error is not None:
            raise self._error
        if self._result is None:  # pragma: no cover - _execute sets one or the other
            raise SockshockError(f"the {self.kind} client produced no result")
        return self._result

    def _join(self) -> None:
        bound = self._control.duration + self._JOIN_GRACE
        if not self._done.wait(bound):
            self._control.shutdown_all()  # wake whatever it waits on
            if not self._done.wait(1.0):
                raise SockshockError(f"the {self.kind} client did not finish within "
                                     f"{bound + 1:g} s (its duration plus a grace period)")
        if self._thread is not None:
            self._thread.join(1.0)

    def __enter__(self) -> ClientRun[R]:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        try:
            self._join()
        except SockshockError as error:
            if exc is None:
                raise
            _add_note(exc, str(error))
            return
        if self._error is not None and self._error is not exc:
            if exc is None:
                raise self._error
            _add_note(exc, f"also, the {self.kind} client raised {self._error!r}")


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


# -- the clients' behaviour ------------------------------------------------------


def _stream_result(kind: str, control: Control, conns: list[Conn],
                   unread: int | None = None, unread_since: float | None = None) -> StreamResult:
    return StreamResult(kind, control.target.sockaddr, tuple(c.summary() for c in conns),
                        control.elapsed(), control.stop.is_set(), unread, unread_since)


def _connect_all(control: Control, count: int, request: bytes = b"") -> list[Conn]:
    conns: list[Conn] = []
    for index in range(count):
        if control.over():
            break
        conn = Conn(index, control)
        conns.append(conn)
        if conn.connect() and request:
            conn.send_all(request, control.bound())
    control.connected.set()
    return conns


def _run_slowloris(control: Control, *, count: int, interval: float,
                   request: bytes) -> StreamResult:
    conns = _connect_all(control, count, request)
    control.sent.set()
    line = 0
    next_at = time.monotonic() + interval
    while watch(conns, next_at, control):
        line += 1
        header = b"X-Slowloris-%d: %d\r\n" % (line, line)
        for conn in conns:
            if conn.alive:
                conn.send_all(header, min(next_at + interval, control.deadline))
        next_at += interval
        if next_at < time.monotonic():  # fell behind: one line per interval, no catching up
            next_at = time.monotonic() + interval
    return _stream_result("slowloris", control, conns)


def _run_connect_and_idle(control: Control, *, count: int) -> StreamResult:
    conns = _connect_all(control, count)
    control.sent.set()
    watch(conns, control.deadline, control)
    return _stream_result("connect_and_idle", control, conns)


def _run_drip_feed(control: Control, *, payload: bytes, chunk: int, pause: float,
                   until: bytes | None) -> StreamResult:
    conn = Conn(0, control)
    if conn.connect():
        control.connected.set()
        for start in range(0, len(payload), chunk):
            if start and not watch([conn], time.monotonic() + pause, control):
                break
            if not conn.send_all(payload[start:start + chunk], control.bound()):
                break
        control.sent.set()
        conn.read_reply(control.bound(), until)
    return _stream_result("drip_feed", control, [conn])


def _run_never_reads(control: Control, *, request: bytes, repeat: int,
                     rcvbuf: int | None) -> StreamResult:
    conn = Conn(0, control)
    unread: int | None = None
    since: float | None = None
    if conn.connect(rcvbuf=rcvbuf):
        control.connected.set()
        for _ in range(repeat):
            if not conn.send_all(request, control.deadline):
                break
        control.sent.set()
        while True:
            conn.notice_close()
            now_unread = conn.unread()
            if now_unread != unread:
                unread, since = now_unread, control.elapsed()
            if not conn.alive or not control.pause(SLICE):
                break
        if not unread:
            since = None
    return _stream_result("never_reads", control, [conn], unread, since)


def _run_half_close(control: Control, *, request: bytes) -> StreamResult:
    conn = Conn(0, control)
    if conn.connect():
        control.connected.set()
        if conn.send_all(request, control.bound()):
            conn.shutdown_write()
        control.sent.set()
        conn.read_reply(control.bound())
    return _stream_result("half_close", control, [conn])


def _run_rst_on_close(control: Control, *, request: bytes, hold: float) -> StreamResult:
    conn = Conn(0, control)
    if conn.connect():
        control.connected.set()
        conn.send_all(request, control.bound())
        if hold:
            watch([conn], time.monotonic() + hold, control)
        conn.reset()
    return _stream_result("rst_on_close", control, [conn])


def _run_connection_flood(control: Control, *, count: int, concurrency: int,
                          request: bytes | None, until: bytes | None) -> StreamResult:
    conns: list[Conn] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    tried = 0

    def next_conn() -> Conn | None:
        with lock:
            if len(conns) >= count or control.over():
                return None
            conn = Conn(len(conns), control)
            conns.append(conn)
            return conn

    def one_tried() -> None:
        nonlocal tried
        with lock:
            tried += 1
            if tried == count:
                control.connected.set()

    def worker() -> None:
        try:
            while (conn := next_conn()) is not None:
                connected = conn.connect()
                one_tried()
                if connected and request is not None and conn.send_all(request, control.bound()):
                    conn.read_reply(control.bound(), until)
                conn.close()
        except BaseException as exc:  # re-raised by the run
            failures.append(exc)

    workers = [threading.Thread(target=worker, daemon=True,
                                name=f"sockshock client connection_flood {n}")
               for n in range(min(concurrency, count))]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(control.duration + ClientRun._JOIN_GRACE)
    control.connected.set()
    control.sent.set()
    if failures:
        raise failures[0]
    with lock:
        return _stream_result("connection_flood", control, list(conns))


def _run_datagram_burst(control: Control, *, count: int, payload: bytes) -> DatagramResult:
    sock = control.open_socket(socket.SOCK_DGRAM)
    directory: str | None = None
    datagrams = failed = replies = received = 0
    first = b""
    errors: dict[str, None] = {}

    def drain() -> None:
        nonlocal replies, received, first
        for _ in range(256):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:  # ECONNREFUSED after an ICMP port unreachable
                errors[describe_error(exc)] = None
                return
            replies += 1
            received += len(data)
            if replies == 1:
                first = data[:control.max_reply]

    try:
        if control.target.unix:  # a path of its own, so that the server can answer
            directory = tempfile.mkdtemp(prefix="sockshock-client-")
            sock.bind(os.path.join(directory, "client.sock"))
        try:
            sock.connect(control.target.sockaddr)
        except OSError as exc:
            errors[describe_error(exc)] = None
            count = 0
        control.connected.set()
        for _ in range(count):
            if control.over():
                break
            end = control.bound()
            while True:
                try:
                    sock.send(payload)
                except BlockingIOError:  # the socket buffer (or the Unix peer's queue) is full
                    if control.over():
                        break
                    if control.over(end):
                        failed += 1
                        errors[f"EAGAIN: no room to send within {control.timeout:g} s"] = None
                        break
                    if READ & wait([(sock, READ | WRITE)], min(SLICE, end - time.monotonic())).get(
                            sock.fileno(), 0):
                        drain()
                    continue
                except OSError as exc:
                    failed += 1
                    errors[describe_error(exc)] = None
                    break
                datagrams += 1
                break
            drain()
        control.sent.set()
        end = control.bound()
        while replies < datagrams and not control.over(end):
            wait([(sock, READ)], min(SLICE, end - time.monotonic()))
            drain()
    finally:
        sock.close()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
    return DatagramResult("datagram_burst", control.target.sockaddr, datagrams, failed,
                          replies, datagrams * len(payload), received, first,
                          tuple(errors), control.elapsed(), control.stop.is_set())


RUNNERS: dict[str, Callable[..., Any]] = {  # kind -> behaviour(control, **options)
    "slowloris": _run_slowloris,
    "drip_feed": _run_drip_feed,
    "never_reads": _run_never_reads,
    "half_close": _run_half_close,
    "rst_on_close": _run_rst_on_close,
    "connect_and_idle": _run_connect_and_idle,
    "connection_flood": _run_connection_flood,
    "datagram_burst": _run_datagram_burst,
}

"""Real misbehaving clients over real sockets: the code behind :mod:`sockshock.clients`.

Each client function checks its arguments and its address at once and returns a
:class:`ClientRun` that has not started yet: ``run.result()`` runs it in the
calling thread and returns what happened; ``with run:`` runs it in a background
thread for the length of the block and stops it, joins it and closes its sockets
on the way out, also when the block raises. The misbehaviour is the kernel's own
(a reset is ``SO_LINGER`` {1, 0}, a half-close is ``shutdown(SHUT_WR)``, a client
that never reads lets its receive window fill), so these clients work against any
server on this machine: sockshock's, the standard library's, one in another
process, one behind a proxy.

Every run is bounded in time (``duration``, and ``timeout`` for each wait on the
server) and in size (counts and byte lengths have hard maxima, see
:data:`LIMITS`); a bad value raises one :class:`~sockshock.InvalidArgument` naming
the value, the range and where it came from. The same clients are available as
plain data (:class:`ClientSpec`), for scenario files.
"""

from __future__ import annotations

import difflib
import inspect
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from sockshock._errors import (
    InvalidArgument,
    InvalidType,
    SockshockError,
    check_number,
    check_type,
)
from sockshock._harness._clientnet import (
    READ,
    SLICE,
    WRITE,
    Address,
    Conn,
    Connection,
    Control,
    Outcome,
    describe_error,
    resolve_address,
    wait,
    watch,
)

__all__ = [
    "HTTP_REQUEST",
    "HTTP_REQUEST_HEAD",
    "HTTP_REQUEST_PART",
    "KINDS",
    "LIMITS",
    "Address",
    "ClientResult",
    "ClientRun",
    "ClientSpec",
    "Connection",
    "DatagramResult",
    "Limit",
    "Outcome",
    "StreamResult",
    "connect_and_idle",
    "connection_flood",
    "datagram_burst",
    "drip_feed",
    "half_close",
    "never_reads",
    "rst_on_close",
    "slowloris",
]

HTTP_REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
"""A whole HTTP request: the default for clients that send one."""
HTTP_REQUEST_HEAD = b"GET / HTTP/1.1\r\nHost: localhost\r\n"
"""The start of an HTTP request without its end: what ``slowloris`` sends first."""
HTTP_REQUEST_PART = b"GET / HTTP/1.0\r\nHost: loc"
"""Part of an HTTP request: what ``rst_on_close`` sends before resetting."""

_KiB = 1024
_MiB = 1024 * _KiB


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


# -- limits and validation -------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """The allowed values of one client option.

    Attributes:
        what: ``"int"``, ``"seconds"`` (int or float) or ``"bytes"`` (the bounds
            then apply to the length).
        low: the smallest value (or length) allowed.
        high: the largest value (or length) allowed.
        low_open: whether ``low`` itself is excluded.
        optional: whether ``None`` is allowed.
    """

    what: Literal["int", "seconds", "bytes"]
    low: float
    high: float
    low_open: bool = False
    optional: bool = False

    def check(self, name: str, value: Any, *, source: str, text: bool = False) -> Any:
        """Return ``value`` (str made bytes if ``text``) or raise one clear error."""
        if value is None and self.optional:
            return None
        if self.what == "bytes":
            if text and isinstance(value, str):
                value = value.encode()
            check_type(name, value, bytes, source=source)
            check_number(f"len({name})", len(value), low=self.low, high=self.high,
                         integer=True, source=source)
            return value
        check_number(name, value, low=self.low, high=self.high, low_open=self.low_open,
                     integer=self.what == "int", source=source)
        return value


MAX_DURATION = 300.0
MAX_TIMEOUT = 60.0

_COMMON: dict[str, Limit] = {
    "duration": Limit("seconds", 0, MAX_DURATION, low_open=True),
    "timeout": Limit("seconds", 0, MAX_TIMEOUT, low_open=True),
    "max_reply": Limit("int", 0, 16 * _MiB),
}

LIMITS: dict[str, dict[str, Limit]] = {
    "slowloris": {"count": Limit("int", 1, 1000), "interval": Limit("seconds", 0.001, 60),
                  "request": Limit("bytes", 0, 64 * _KiB)},
    "drip_feed": {"payload": Limit("bytes", 1, 16 * _MiB), "chunk": Limit("int", 1, 64 * _KiB),
                  "pause": Limit("seconds", 0, 60),
                  "until": Limit("bytes", 1, 64 * _KiB, optional=True)},
    "never_reads": {"request": Limit("bytes", 0, 16 * _MiB), "repeat": Limit("int", 1, 100_000),
                    "rcvbuf": Limit("int", 1, 16 * _MiB, optional=True)},
    "half_close": {"request": Limit("bytes", 0, 16 * _MiB)},
    "rst_on_close": {"request": Limit("bytes", 0, 16 * _MiB), "hold": Limit("seconds", 0, 60)},
    "connect_and_idle": {"count": Limit("int", 1, 1000)},
    "connection_flood": {"count": Limit("int", 1, 10_000), "concurrency": Limit("int", 1, 256),
                         "request": Limit("bytes", 0, 64 * _KiB, optional=True),
                         "until": Limit("bytes", 1, 64 * _KiB, optional=True)},
    "datagram_burst": {"count": Limit("int", 1, 10_000), "payload": Limit("bytes", 0, 65507)},
}
"""Each client's options and their bounds (besides ``duration`` in (0, 300] s,
``timeout`` in (0, 60] s and ``max_reply`` in [0, 16 MiB], which every client takes)."""

KINDS = tuple(LIMITS)
"""The clients' names, as :class:`ClientSpec` takes them."""

_NEVER_READS_TOTAL = 16 * _MiB


def _where(kind: str, source: str | None) -> str:
    return source or f"{kind}()"


def _check_kind(kind: Any, source: str) -> str:
    check_type("kind", kind, str, source=source)
    if kind not in LIMITS:
        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidArgument(f"kind={kind!r} is not a client; {hint}known: "
                              f"{', '.join(KINDS)} (from {source})")
    return str(kind)


def _defaults(kind: str) -> dict[str, Any]:
    params = list(inspect.signature(_FUNCTIONS[kind]).parameters.values())[1:]
    return {p.name: p.default for p in params}


def _validate(kind: str, options: Mapping[str, Any], source: str, *,
              text: bool = False) -> dict[str, Any]:
    limits = {**LIMITS[kind], **_COMMON}
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if name not in limits:
            close = difflib.get_close_matches(name, limits, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidArgument(f"{name}={value!r} is not an option of {kind}; {hint}"
                                  f"options: {', '.join(sorted(limits))} (from {source})")
        checked[name] = limits[name].check(name, value, source=source, text=text)
    full = {**_defaults(kind), **checked}
    if kind == "never_reads":
        check_number("len(request) * repeat", len(full["request"]) * full["repeat"], low=0,
                     high=_NEVER_READS_TOTAL, integer=True, source=source)
    if kind == "connection_flood" and full["until"] is not None and full["request"] is None:
        raise InvalidArgument(f"until={full['until']!r} needs a request= to be the reply's "
                              f"end marker (from {source})")
    return checked


_RUNNERS: dict[str, Callable[..., Any]] = {
    "slowloris": _run_slowloris,
    "drip_feed": _run_drip_feed,
    "never_reads": _run_never_reads,
    "half_close": _run_half_close,
    "rst_on_close": _run_rst_on_close,
    "connect_and_idle": _run_connect_and_idle,
    "connection_flood": _run_connection_flood,
    "datagram_burst": _run_datagram_burst,
}


def _prepare(kind: str, address: Any, source: str | None, options: dict[str, Any]) -> ClientRun[Any]:
    where = _where(kind, source)
    values = {**_defaults(kind), **_validate(kind, options, where)}
    target = resolve_address(address, source=where)
    control = Control(target, duration=values.pop("duration"), timeout=values.pop("timeout"),
                      max_reply=values.pop("max_reply"))
    runner = _RUNNERS[kind]
    return ClientRun(kind, control, lambda c: runner(c, **values))


# -- the clients -----------------------------------------------------------------


def slowloris(address: Address, *, count: int = 1, interval: float = 0.05,
              request: bytes = HTTP_REQUEST_HEAD, duration: float = 0.25,
              timeout: float = 1.0, max_reply: int = 65536) -> ClientRun[StreamResult]:
    """Headers dripped forever: the request's start, then one header line per ``interval``.

    The request never ends (no blank line), so a server that reads the whole
    request before answering is held for as long as the client keeps going -- a
    per-read timeout does not help when each line arrives in time. The client
    reads whatever the server sends and notes when it ends a connection.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        count: connections, opened one after the other (1 to 1,000).
        interval: seconds between header lines (0.001 to 60).
        request: sent once on connecting (up to 64 KiB); default an HTTP
            request line and ``Host`` header.
        duration: seconds the client keeps it up (0 to 300; default 0.25).
        timeout: the bound on each connect (0 to 60 s).
        max_reply: bytes of each connection's reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun`: ``.result()`` runs it here and returns a
        :class:`StreamResult`; ``with`` runs it in the background.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("slowloris", address, None, dict(
        count=count, interval=interval, request=request, duration=duration,
        timeout=timeout, max_reply=max_reply))


def drip_feed(address: Address, *, payload: bytes = HTTP_REQUEST, chunk: int = 1,
              pause: float = 0.01, until: bytes | None = None, duration: float = 2.0,
              timeout: float = 1.0, max_reply: int = 65536) -> ClientRun[StreamResult]:
    """Send ``payload`` ``chunk`` bytes at a time, ``pause`` seconds apart, then read the reply.

    Each chunk leaves as its own segment (``TCP_NODELAY``), so the server's
    ``recv`` really returns it alone -- a handler that assumes one ``recv`` is one
    message breaks, without any fault injection.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        payload: what to send (1 byte to 16 MiB); default a whole HTTP request.
        chunk: bytes per send (1 to 64 KiB).
        pause: seconds between chunks (0 to 60).
        until: stop reading the reply once it contains these bytes (e.g.
            ``b"\\n"``); default: read until the server closes or ``timeout``.
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on connecting, on each send and on the reply (0 to 60 s).
        max_reply: bytes of the reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("drip_feed", address, None, dict(
        payload=payload, chunk=chunk, pause=pause, until=until, duration=duration,
        timeout=timeout, max_reply=max_reply))


def never_reads(address: Address, *, request: bytes = HTTP_REQUEST, repeat: int = 1,
                rcvbuf: int | None = None, duration: float = 0.25, timeout: float = 1.0,
                max_reply: int = 65536) -> ClientRun[StreamResult]:
    """Send requests and never read the replies, so that the server's writes back up.

    The client's receive queue fills, then the server's send buffer, then the
    server's ``send``/``sendall`` blocks (until its timeout, if it has one). The
    result's ``unread`` says how much the server got through (what waits
    unread in the client) and ``unread_since`` when that stopped growing. On
    Linux the client also notices, without reading, that the server closed or
    reset the connection. At the end the client closes with data unread, so
    the kernel resets the connection: a server still writing then gets
    ``ConnectionResetError``/``BrokenPipeError``, as with a real client.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        request: sent ``repeat`` times, pipelined (at most 16 MiB in all).
        repeat: how many requests (1 to 100,000).
        rcvbuf: ``SO_RCVBUF`` for the client (1 to 16 MiB; the kernel doubles
            it and applies its minimum); small values make the server block
            sooner. Default: the system's.
        duration: seconds the client keeps not reading (0 to 300; default 0.25).
        timeout: the bound on connecting (0 to 60 s).
        max_reply: unused (the client reads nothing); accepted for uniformity.

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult` with ``unread``.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("never_reads", address, None, dict(
        request=request, repeat=repeat, rcvbuf=rcvbuf, duration=duration, timeout=timeout,
        max_reply=max_reply))


def half_close(address: Address, *, request: bytes = HTTP_REQUEST, duration: float = 2.0,
               timeout: float = 1.0, max_reply: int = 65536) -> ClientRun[StreamResult]:
    """Send ``request``, ``shutdown(SHUT_WR)``, then read the reply to end of file.

    The server reads end of file after the request while it can still answer:
    servers that read "until the client is done" depend on this; servers that
    treat end of file as "the client is gone" drop the reply.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        request: what to send before half-closing (up to 16 MiB).
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on connecting, sending, and on the reply (0 to 60 s).
        max_reply: bytes of the reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult` (outcome ``"eof"`` if
        the server answered and closed, ``"open"`` if it never closed in time).

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("half_close", address, None, dict(
        request=request, duration=duration, timeout=timeout, max_reply=max_reply))


def rst_on_close(address: Address, *, request: bytes = HTTP_REQUEST_PART, hold: float = 0.0,
                 duration: float = 2.0, timeout: float = 1.0,
                 max_reply: int = 65536) -> ClientRun[StreamResult]:
    """Send ``request`` (part or all of one), then close with a reset instead of a FIN.

    ``SO_LINGER`` {1, 0} makes ``close()`` send a TCP RST: the server's next
    ``recv`` (after any data already delivered) or ``send`` fails with
    ``ConnectionResetError``. Unix stream sockets have no reset: there the server
    sees end of file, or ECONNRESET only if the client closes with data it left
    unread (the kernel's rule; ``hold`` reads what arrives, so use ``hold=0``).

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        request: what to send first (up to 16 MiB); default an HTTP request
            cut off in its ``Host`` header. Send ``b""`` to reset at once.
        hold: seconds to stay connected after sending, reading what the server
            sends, before the reset (0 to 60; default 0).
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on connecting and on sending (0 to 60 s).
        max_reply: bytes of what the server sends during ``hold`` to keep.

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("rst_on_close", address, None, dict(
        request=request, hold=hold, duration=duration, timeout=timeout, max_reply=max_reply))


def connect_and_idle(address: Address, *, count: int = 1, duration: float = 0.25,
                     timeout: float = 1.0, max_reply: int = 65536) -> ClientRun[StreamResult]:
    """Connect and send nothing, for ``duration`` seconds.

    A handler that reads without a timeout waits for as long as the client
    stays; one with a timeout closes the connection, which the result shows as
    outcome ``"eof"`` and ``closed_at``. Whatever the server sends (a banner, an
    error) is read and kept.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        count: connections (1 to 1,000).
        duration: seconds the client stays connected (0 to 300; default 0.25).
        timeout: the bound on each connect (0 to 60 s).
        max_reply: bytes of each connection's reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("connect_and_idle", address, None, dict(
        count=count, duration=duration, timeout=timeout, max_reply=max_reply))


def connection_flood(address: Address, *, count: int = 100, concurrency: int = 16,
                     request: bytes | None = None, until: bytes | None = None,
                     duration: float = 2.0, timeout: float = 1.0,
                     max_reply: int = 1024) -> ClientRun[StreamResult]:
    """Open ``count`` connections as fast as possible, ``concurrency`` at a time.

    Each connection connects, sends ``request`` if one is given and reads the
    reply (until the server closes, ``until`` arrives, or ``timeout``), then
    closes. Connections that are refused or time out (a full listen backlog) are
    counted, not retried.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        count: connections in all (1 to 10,000).
        concurrency: connections in progress at once (1 to 256; one thread each).
        request: what each connection sends (up to 64 KiB); default nothing.
        until: the end of a reply (e.g. ``b"\\n"``); needs ``request``.
        duration: the bound on the whole flood (0 to 300 s; default 2).
        timeout: the bound on each connect and each reply (0 to 60 s).
        max_reply: bytes of each connection's reply to keep (default 1 KiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult` with one
        :class:`Connection` per connection tried.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("connection_flood", address, None, dict(
        count=count, concurrency=concurrency, request=request, until=until,
        duration=duration, timeout=timeout, max_reply=max_reply))


def datagram_burst(address: Address, *, count: int = 100, payload: bytes = b"ping",
                   duration: float = 2.0, timeout: float = 0.25,
                   max_reply: int = 65536) -> ClientRun[DatagramResult]:
    """Send ``count`` datagrams as fast as possible and count the replies.

    The client reads replies while it sends and then waits up to ``timeout``
    for the rest. Over UDP, datagrams the server's queue has no room for are
    lost (``unanswered``); a Unix datagram socket makes the client wait for room
    instead (up to ``timeout`` per datagram, then it counts it ``failed``).

    Args:
        address: ``(host, port)`` on loopback (UDP) or a Unix datagram socket path
            (the client binds a path of its own in a private temporary
            directory, removed at the end, so that the server can answer).
        count: datagrams (1 to 10,000).
        payload: each datagram's bytes (0 to 65,507).
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on waiting for room to send one datagram, and for
            the replies after the last one (0 to 60 s; default 0.25).
        max_reply: bytes of the first reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`DatagramResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return _prepare("datagram_burst", address, None, dict(
        count=count, payload=payload, duration=duration, timeout=timeout,
        max_reply=max_reply))


_FUNCTIONS: dict[str, Callable[..., ClientRun[Any]]] = {
    "slowloris": slowloris,
    "drip_feed": drip_feed,
    "never_reads": never_reads,
    "half_close": half_close,
    "rst_on_close": rst_on_close,
    "connect_and_idle": connect_and_idle,
    "connection_flood": connection_flood,
    "datagram_burst": datagram_burst,
}


# -- plain-data form -------------------------------------------------------------


@dataclass(frozen=True, init=False)
class ClientSpec:
    """A client as plain data: its kind and options, checked when made.

    ``ClientSpec("slowloris", count=5, interval=0.05)`` or, from a parsed
    scenario file, ``ClientSpec.from_mapping({"kind": "slowloris", "count": 5},
    source="scenarios/x.toml:12")``. Options are the client function's keyword
    arguments; options not given take the function's defaults. Byte options also
    accept text (encoded as UTF-8), since TOML and JSON have no bytes. A bad
    value raises one :class:`~sockshock.InvalidArgument` (or
    :class:`~sockshock.InvalidType`) naming it and ``source``.

    Attributes:
        kind: one of :data:`KINDS`.
        options: the options given, checked, as sorted ``(name, value)`` pairs.
        source: where the spec came from (used in error messages only).
    """

    kind: str
    options: tuple[tuple[str, Any], ...]
    source: str | None = field(default=None, compare=False)

    def __init__(self, kind: str, *, source: str | None = None, **options: Any) -> None:
        where = source or f"ClientSpec({kind!r})"
        _check_kind(kind, where)
        checked = _validate(kind, options, where, text=True)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "options", tuple(sorted(checked.items())))
        object.__setattr__(self, "source", source)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None) -> ClientSpec:
        """Make a spec from ``{"kind": ..., option: value, ...}`` (a parsed TOML table).

        Raises:
            InvalidArgument: no ``kind``, an unknown kind or option, a value out
                of bounds; the message names ``source``.
            InvalidType: ``data`` is not a mapping, or a value has the wrong type.
        """
        where = source or "ClientSpec.from_mapping()"
        if not isinstance(data, Mapping):
            raise InvalidType(f"expected a mapping but got {data!r} "
                              f"(type={type(data).__name__}) (from {where})")
        if "kind" not in data:
            raise InvalidArgument(f"a client spec needs a 'kind', one of {', '.join(KINDS)}; "
                                  f"got keys {sorted(map(str, data))} (from {where})")
        options = {str(k): v for k, v in data.items() if k != "kind"}
        return cls(_check_kind(data["kind"], where), source=source, **options)

    def to_mapping(self) -> dict[str, Any]:
        """``{"kind": ..., **options}``: what :meth:`from_mapping` takes back."""
        return {"kind": self.kind, **dict(self.options)}

    def run(self, address: Address) -> ClientRun[Any]:
        """The client, aimed at ``address`` (checked here; errors name ``source``)."""
        return _prepare(self.kind, address, self.source, dict(self.options))


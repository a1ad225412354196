"""What each client does once its run starts: the behaviour behind every kind.

One function per kind (in :data:`RUNNERS`), called with the run's
:class:`~sockshock._clients._control.Control` and the client's checked options,
written against the connections of :mod:`sockshock._clients._conn` (the datagram
client drives its one socket itself).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sockshock._clients._address import describe_error
from sockshock._clients._conn import Conn, watch
from sockshock._clients._control import JOIN_GRACE, READ, SLICE, WRITE, Control, wait
from sockshock._clients._results import DatagramResult, StreamResult

__all__ = ["RUNNERS"]


def _stream_result(
    kind: str,
    control: Control,
    conns: list[Conn],
    unread: int | None = None,
    unread_since: float | None = None,
    *,
    requested: int = 1,
) -> StreamResult:
    return StreamResult(
        kind,
        control.target.sockaddr,
        tuple(c.summary() for c in conns),
        control.elapsed(),
        control.stop.is_set(),
        unread,
        unread_since,
        requested=requested,
    )


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


def _run_slowloris(
    control: Control, *, count: int, interval: float, request: bytes
) -> StreamResult:
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
    return _stream_result("slowloris", control, conns, requested=count)


def _run_connect_and_idle(control: Control, *, count: int) -> StreamResult:
    conns = _connect_all(control, count)
    control.sent.set()
    watch(conns, control.deadline, control)
    return _stream_result("connect_and_idle", control, conns, requested=count)


def _run_drip_feed(
    control: Control, *, payload: bytes, chunk: int, pause: float, until: bytes | None
) -> StreamResult:
    conn = Conn(0, control)
    if conn.connect():
        control.connected.set()
        for start in range(0, len(payload), chunk):
            if start and not watch([conn], time.monotonic() + pause, control):
                break
            if not conn.send_all(payload[start : start + chunk], control.bound()):
                break
        control.sent.set()
        conn.read_reply(control.bound(), until)
    return _stream_result("drip_feed", control, [conn])


def _run_never_reads(
    control: Control, *, request: bytes, repeat: int, rcvbuf: int | None
) -> StreamResult:
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


def _run_connection_flood(
    control: Control, *, count: int, concurrency: int, request: bytes | None, until: bytes | None
) -> StreamResult:
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

    workers = [
        threading.Thread(target=worker, daemon=True, name=f"sockshock client connection_flood {n}")
        for n in range(min(concurrency, count))
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(control.duration + JOIN_GRACE)
    control.connected.set()
    control.sent.set()
    if failures:
        raise failures[0]
    with lock:
        return _stream_result("connection_flood", control, list(conns), requested=count)


def _run_datagram_burst(control: Control, *, count: int, payload: bytes) -> DatagramResult:
    sock = control.open_socket(socket.SOCK_DGRAM)  # a Unix one has a path to be answered on
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
                first = data[: control.max_reply]

    try:
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
                        sock.fileno(), 0
                    ):
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
        sock.close()  # (a Unix client's own path goes with it)
    return DatagramResult(
        "datagram_burst",
        control.target.sockaddr,
        datagrams,
        failed,
        replies,
        datagrams * len(payload),
        received,
        first,
        tuple(errors),
        control.elapsed(),
        control.stop.is_set(),
    )


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

"""The fault proxy: the fault models carried out on the wire, between real clients and
servers (in this process and in others), logged as the fault layer logs them."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import queue
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import _faults as _F
from sockshock import faults as F
from sockshock._cli import proxy_main
from sockshock._proxy import (
    FaultProxy,
    ProxyFactory,
    _addresses,
    _datagrams,
    _pipe,
    sockshock_proxy,
)
from sockshock._util import ProxyError
from sockshock.handlers import DatagramEcho, LineEcho
from tests._support import SUBPROCESS_TIMEOUT, ipv6_loopback, read_line, stop_process

pytest_plugins = ["pytester"]

HERE = os.path.dirname(os.path.abspath(__file__))
STREAM_SERVERS = {"tcp": "ThreadingTCPServer", "unix": "ThreadingUnixStreamServer"}
WAIT = 30.0  # the bound of every wait on something that should happen at once (generous:
# a loaded machine may take seconds to start a Python child)


# -- helpers ---------------------------------------------------------------------------


def connect(proxy: FaultProxy, *, timeout: float = WAIT) -> socket.socket:
    """A client of the proxy's transport, connected to it."""
    if isinstance(proxy.address, str):  # a Unix socket path
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        family = socket.AF_INET6 if ":" in proxy.address[0] else socket.AF_INET
        kind = socket.SOCK_DGRAM if proxy.transport == "datagram" else socket.SOCK_STREAM
        client = socket.socket(family, kind)
    try:
        client.settimeout(timeout)
        client.connect(proxy.address)
    except BaseException:
        client.close()
        raise
    return client


def read_all(client: socket.socket) -> tuple[bytes, list[int]]:
    """Everything until end of file, and the size of each recv()."""
    data = b""
    sizes = []
    while chunk := client.recv(4096):
        data += chunk
        sizes.append(len(chunk))
    return data, sizes


@dataclasses.dataclass
class Record:
    """What a Recorder handler read on one connection."""

    data: bytes
    sizes: list[int]
    outcome: Any  # "eof" or the exception that ended reading


def recorder(
    reply: bytes = b"ok\n",
    timeout: float = WAIT,
) -> tuple[type[ss.BaseRequestHandler], queue.Queue[Any]]:
    """A handler that reads until end of file or an error -- putting each read's
    total so far, then a :class:`Record`, on the queue -- then sends ``reply``."""
    events: queue.Queue[Any] = queue.Queue()

    class Recorder(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(timeout)
            data = b""
            sizes = []
            outcome: Any = "eof"
            try:
                while chunk := self.request.recv(4096):
                    data += chunk
                    sizes.append(len(chunk))
                    events.put(data)
            except OSError as exc:
                outcome = exc
            with contextlib.suppress(OSError):
                self.request.sendall(reply)
            events.put(Record(data, sizes, outcome))

    return Recorder, events


def next_record(events: queue.Queue[Any]) -> Record:
    while True:
        item = events.get(timeout=WAIT)
        if isinstance(item, Record):
            return item


def datagram_recorder() -> tuple[type[ss.DatagramRequestHandler], list[bytes]]:
    seen: list[bytes] = []

    class Echo(ss.DatagramRequestHandler):
        def handle(self) -> None:
            seen.append(self.packet)
            self.wfile.write(self.packet)

    return Echo, seen


@dataclasses.dataclass(frozen=True, repr=False)
class DelayDatagrams(_F.FaultModel):
    """No built-in model delays datagrams; a custom one may (the proxy honours it)."""

    seconds: float = 0.3
    kinds: ClassVar[tuple[str, ...]] = ("datagram_in",)

    def decide(self, op: _F.Operation, rng: random.Random, state: Any) -> _F.Decision:
        return _F.Decision(delay=self.seconds)


def decisions(plan: F.FaultPlan, model: str) -> list[_F.FaultEvent]:
    return [e for e in plan.log if e.model.describe().startswith(model)]


def assert_steps(events: list[_F.FaultEvent], total: int, max_chunk: int) -> None:
    """Each step forwarded exactly what its decision allowed, from offset 0 on; a
    last step whose limit covered all that was waiting changed nothing and is not
    logged (the plan logs no decision without effect)."""
    offset = 0
    for event in events:
        limit = event.decision.limit
        assert limit is not None
        assert 1 <= limit <= max_chunk
        assert (event.offset, limit < event.size) == (offset, True)
        offset += limit
    assert offset <= total


def read_line_within(proc: subprocess.Popen[str], seconds: float = WAIT) -> str:
    """One line of a child's stdout, or fail after ``seconds`` (never hang)."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(seconds):
            pytest.fail(f"no line from {proc.args!r} within {seconds} s")
    return proc.stdout.readline()


@contextlib.contextmanager
def child(*args: str) -> Iterator[subprocess.Popen[str]]:
    """A child process with pipes, stopped (and reaped) however the block ends."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        stop_process(proc)


@pytest.fixture(params=["tcp", "unix"])
def stream(request: pytest.FixtureRequest) -> str:
    """Each stream transport the proxy has."""
    return str(request.param)


# -- streams: what each decision does on the wire ------------------------------------------


def test_an_empty_plan_forwards_everything_both_ways(stream: str) -> None:
    payload = b"".join(b"%07d\n" % i for i in range(30_000))  # 240 kB of lines
    with (
        sockshock.serving(STREAM_SERVERS[stream], LineEcho) as srv,
        sockshock.FaultProxy(srv.address) as proxy,
        connect(proxy) as client,
    ):

        def send() -> None:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            echoed, _ = read_all(client)
        finally:
            sender.join(WAIT)
    assert echoed == payload
    assert proxy.plan.log == []


def test_partial_reads_forward_one_chunk_per_decision(stream: str) -> None:
    handler, events = recorder()
    payload = b"twenty bytes of data"
    with (
        sockshock.serving(STREAM_SERVERS[stream], handler) as srv,
        sockshock.FaultProxy(
            srv.address, seed=4, faults=[F.PartialReads(3), F.Latency(0.01)]
        ) as proxy,
        connect(proxy) as client,
    ):
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        record = next_record(events)
        assert read_line(client) == b"ok\n"
    assert (record.data, record.outcome) == (payload, "eof")
    assert len(record.sizes) > 1  # 10 ms between chunks: the server saw pieces
    *steps, end = decisions(proxy.plan, "PartialReads")
    assert_steps(steps, len(payload), 3)
    assert (end.offset, end.size) == (len(payload), 0)  # the client's end of file
    assert all(e.decision.delay == 0.01 for e in decisions(proxy.plan, "Latency"))


def test_partial_writes_reach_the_client_in_pieces(stream: str) -> None:
    reply = b"a reply of thirty-two bytes....\n"
    handler, _ = recorder(reply=reply)
    with (
        sockshock.serving(STREAM_SERVERS[stream], handler) as srv,
        sockshock.FaultProxy(
            srv.address,
            seed=5,
            faults=[F.PartialWrites(4), F.Latency(0.01, direction="out")],
        ) as proxy,
        connect(proxy) as client,
    ):
        client.shutdown(socket.SHUT_WR)
        data, sizes = read_all(client)
    assert data == reply
    assert len(sizes) > 1
    assert_steps(decisions(proxy.plan, "PartialWrites"), len(reply), 4)
    assert {e.kind for e in proxy.plan.log} == {"send"}


def test_a_delay_holds_one_connection_while_others_go_on(stream: str) -> None:
    arrived: list[bytes] = []

    class Echo(ss.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                arrived.append(line)
                self.wfile.write(line)

    with (
        sockshock.serving(STREAM_SERVERS[stream], Echo) as srv,
        sockshock.FaultProxy(srv.address, seed=0, faults=[F.Latency(0.3, connections=0)]) as proxy,
        connect(proxy) as slow,
        connect(proxy) as fast,
    ):
        start = time.monotonic()
        slow.sendall(b"slow\n")
        fast.sendall(b"fast\n")
        assert read_line(fast) == b"fast\n"
        assert read_line(slow) == b"slow\n"
        assert time.monotonic() - start >= 0.3
    assert arrived == [b"fast\n", b"slow\n"]  # the later request was not held up


def test_a_slow_client_trickles_in(stream: str) -> None:
    handler, events = recorder()
    with (
        sockshock.serving(STREAM_SERVERS[stream], handler) as srv,
        sockshock.FaultProxy(
            srv.address, seed=0, faults=[F.SlowClient(chunk=2, pause=0.02)]
        ) as proxy,
        connect(proxy) as client,
    ):
        start = time.monotonic()
        client.sendall(b"0123456789")
        client.shutdown(socket.SHUT_WR)
        record = next_record(events)
        elapsed = time.monotonic() - start
    assert record.data == b"0123456789"
    assert elapsed >= 5 * 0.02  # five 2-byte steps (and the end of file), 20 ms apart
    assert [e.decision.limit for e in proxy.plan.log] == [2] * 6


def test_reset_after_resets_both_sides_over_tcp() -> None:
    handler, events = recorder()
    with (
        sockshock.serving("ThreadingTCPServer", handler) as srv,
        sockshock.FaultProxy(srv.address, seed=0, faults=[F.ResetAfter(5)]) as proxy,
        connect(proxy) as client,
    ):
        client.sendall(b"0123456789")
        record = next_record(events)
        with pytest.raises(ConnectionResetError):
            client.recv(10)
    assert record.data == b"01234"
    assert type(record.outcome) is ConnectionResetError
    assert record.outcome.errno == errno.ECONNRESET
    # the limit that stops the first read where the reset begins is not logged (issue 24)
    assert [(e.offset, e.decision.action) for e in proxy.plan.log] == [(5, "reset")]


def test_reset_after_in_the_out_direction_cuts_the_reply() -> None:
    handler, _ = recorder(reply=b"hello world\n")
    with (
        sockshock.serving("ThreadingTCPServer", handler) as srv,
        sockshock.FaultProxy(
            srv.address, seed=0, faults=[F.ResetAfter(3, direction="out")]
        ) as proxy,
        connect(proxy) as client,
    ):
        client.shutdown(socket.SHUT_WR)
        assert client.recv(100) == b"hel"
        with pytest.raises(ConnectionResetError):
            client.recv(100)


def test_a_reset_over_a_unix_socket_is_a_close() -> None:
    # Unix stream sockets have no RST: both sides see end of file.
    handler, events = recorder()
    with (
        sockshock.serving("ThreadingUnixStreamServer", handler) as srv,
        sockshock.FaultProxy(srv.address, seed=0, faults=[F.ResetAfter(5)]) as proxy,
        connect(proxy) as client,
    ):
        client.sendall(b"0123456789")
        record = next_record(events)
        assert client.recv(10) == b""
    assert (record.data, record.outcome) == (b"01234", "eof")


def test_eof_after_half_closes_towards_the_server(stream: str) -> None:
    lines: list[bytes] = []

    class Handler(ss.StreamRequestHandler):
        def handle(self) -> None:
            lines.extend(self.rfile.readlines())
            self.wfile.write(b"%d line(s)\n" % len(lines))

    with (
        sockshock.serving(STREAM_SERVERS[stream], Handler) as srv,
        sockshock.FaultProxy(srv.address, seed=0, faults=[F.EOFAfter(6)]) as proxy,
        connect(proxy) as client,
    ):
        client.sendall(b"first\nsecond\n")
        assert read_line(client) == b"1 line(s)\n"  # the server can still answer
        client.sendall(b"discarded\n")
        assert client.recv(10) == b""
    assert lines == [b"first\n"]
    assert [e.decision.action for e in proxy.plan.log] == ["eof"]  # the limit before: not logged


def test_stall_stops_forwarding_until_the_server_gives_up(stream: str) -> None:
    handler, events = recorder(reply=b"timed out\n", timeout=0.2)
    with (
        sockshock.serving(STREAM_SERVERS[stream], handler) as srv,
        sockshock.FaultProxy(srv.address, seed=0, faults=[F.Stall(2)]) as proxy,
        connect(proxy) as client,
    ):
        client.sendall(b"abcdef\n")
        record = next_record(events)
        assert read_line(client) == b"timed out\n"  # the other direction still works
        assert client.recv(10) == b""
    assert record.data == b"ab"
    assert type(record.outcome) is TimeoutError
    assert [e.decision.action for e in proxy.plan.log] == ["stall"]  # the limit before: not logged


@pytest.mark.parametrize("error", ["EMFILE", "ECONNABORTED"])
def test_accept_errors_keep_clients_waiting_as_the_backlog_does(stream: str, error: str) -> None:
    """An accept() that fails in a server leaves its client waiting in the backlog
    (EMFILE: until the server backs off and accepts again): through the proxy as in
    serving(), every client is served in the end, none is reset, and no connection
    upstream is made for a failed accept."""
    served = []

    class Echo(LineEcho):
        def handle(self) -> None:
            served.append(1)
            super().handle()

    with (
        sockshock.serving(STREAM_SERVERS[stream], Echo) as srv,
        sockshock.FaultProxy(srv.address, seed=0, faults=[F.AcceptErrors(error, times=2)]) as proxy,
        connect(proxy) as first,
        connect(proxy) as second,
    ):
        for client, line in ((first, b"first\n"), (second, b"second\n")):
            client.sendall(line)
            assert read_line(client) == line
    assert served == [1, 1]
    assert [(e.kind, e.connection, e.decision.errno) for e in proxy.plan.log] == [
        ("accept", 0, getattr(errno, error))
    ] * 2  # failed accepts use no connection index


def test_a_client_held_by_accept_errors_is_let_go_at_stop(stream: str) -> None:
    failed = threading.Event()
    with sockshock.serving(STREAM_SERVERS[stream], LineEcho) as srv:
        proxy = sockshock.FaultProxy(
            srv.address, seed=0, faults=[F.AcceptErrors("EMFILE", times=1_000_000)]
        )
        proxy.on_event = lambda event: failed.set()
        with proxy:
            client = connect(proxy)
            assert failed.wait(WAIT)  # the proxy took it, and its accept failed
        # Stopped: the held client is reset (TCP) or closed (Unix).
        with client, contextlib.suppress(ConnectionResetError):
            assert client.recv(10) == b""
    assert {e.connection for e in proxy.plan.log} == {0}


def test_abrupt_shutdown_resets_everything_and_stops_listening(stream: str) -> None:
    handler, events = recorder()
    with (
        sockshock.serving(STREAM_SERVERS[stream], handler) as srv,
        sockshock.FaultProxy(
            srv.address,
            seed=0,
            faults=[F.AbruptShutdown(connections=1, after_bytes=5)],
        ) as proxy,
        connect(proxy) as idle,
        connect(proxy) as second,
    ):
        hooked = threading.Event()
        proxy.on_abrupt_shutdown = hooked.set
        second.sendall(b"0123456789")  # after_bytes is exact: 5 bytes go, then the cut
        assert proxy.shutdown_triggered.wait(WAIT)
        records = [next_record(events), next_record(events)]  # idle's and second's
        assert sorted(r.data for r in records) == [b"", b"01234"]
        assert proxy.wait_stopped(WAIT)
        assert hooked.is_set()
        assert not proxy.running
        for client in (idle, second):
            if stream == "tcp":
                with pytest.raises(ConnectionResetError):
                    client.recv(10)
            else:
                assert client.recv(10) == b""
        with pytest.raises(ConnectionRefusedError):
            connect(proxy)
    (event,) = proxy.plan.log
    assert (event.connection, event.offset, event.decision.action) == (1, 5, "shutdown")


def test_many_connections_share_one_thread() -> None:
    with (
        sockshock.serving("ThreadingTCPServer", LineEcho) as srv,
        sockshock.FaultProxy(srv.address, seed=0, faults=[F.PartialReads(7)]) as proxy,
    ):
        threads = threading.active_count()
        clients = [connect(proxy) for _ in range(64)]
        try:
            for i, client in enumerate(clients):
                client.sendall(b"client %d\n" % i)
            for i, client in enumerate(clients):
                assert read_line(client) == b"client %d\n" % i
            proxied = {t for t in threading.enumerate() if t.name.startswith("sockshock proxy")}
            assert len(proxied) == 1
            assert threading.active_count() - threads == 64  # the server's handlers only
        finally:
            for client in clients:
                client.close()
    assert {e.connection for e in proxy.plan.log} == set(range(64))


def thread_cpu_seconds(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/schedstat", encoding="ascii") as f:
        return int(f.read().split()[0]) / 1e9


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc")
def test_an_idle_proxy_does_not_spin() -> None:
    with (
        sockshock.serving("ThreadingTCPServer", LineEcho) as srv,
        sockshock.serving("UDPServer", DatagramEcho) as udp,
        sockshock.FaultProxy(
            srv.address,
            seed=0,
            faults=[F.Stall(0, connections=0), F.SlowReader(pause=30, connections=1)],
        ) as proxy,
        sockshock.FaultProxy(
            udp.address, transport="datagram", seed=0, faults=[DelayDatagrams(30)]
        ) as datagrams,
    ):
        stalled = connect(proxy)  # half-closed, its request stalled
        stalled.sendall(b"never forwarded\n")
        stalled.shutdown(socket.SHUT_WR)
        slowly_read = connect(proxy)  # gone, while its reply waits for 30 s
        slowly_read.sendall(b"echoed slowly\n")
        with connect(datagrams) as client:
            client.send(b"delayed for 30 s")
        with connect(proxy) as probe:  # everything above has been through the loop
            probe.sendall(b"probe\n")
            assert read_line(probe) == b"probe\n"
        slowly_read.close()
        threads = [p._thread for p in (proxy, datagrams)]
        assert all(t is not None and t.native_id is not None for t in threads)
        ids = [t.native_id for t in threads if t is not None and t.native_id is not None]
        before = [thread_cpu_seconds(i) for i in ids]
        time.sleep(0.3)
        used = [thread_cpu_seconds(i) - b for i, b in zip(ids, before, strict=True)]
        stalled.close()
    assert max(used) < 0.03, f"the I/O threads used {used} s of CPU in 0.3 s idle"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_and_localhost_addresses() -> None:
    class Echo6(ss.ThreadingTCPServer):
        address_family = socket.AF_INET6

    with (
        sockshock.serving(Echo6, LineEcho) as srv6,
        sockshock.serving("ThreadingTCPServer", LineEcho) as srv4,
        sockshock.FaultProxy(srv6.address, listen=("::1", 0)) as v6_to_v6,
        sockshock.FaultProxy(srv6.address) as v4_to_v6,
        sockshock.FaultProxy(("localhost", srv4.address[1]), listen=("localhost", 0)) as by_name,
    ):
        assert v6_to_v6.address[0] == "::1"
        assert by_name.address[0] == "127.0.0.1"
        for proxy in (v6_to_v6, v4_to_v6, by_name):
            with connect(proxy) as client:
                client.sendall(b"any loopback\n")
                assert read_line(client) == b"any loopback\n"
    assert _addresses.format_address(v6_to_v6.address).startswith("[::1]:")


def test_an_upstream_that_refuses_resets_the_client() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # nobody listens there
    with (
        sockshock.FaultProxy(("127.0.0.1", port)) as proxy,
        pytest.raises(ConnectionResetError),
        connect(proxy) as client,
    ):  # the RST may come before connect() has returned
        client.recv(10)


@pytest.mark.parametrize("faults", [[], [F.Latency(0.0)]], ids=["spliced", "decided"])
def test_a_server_that_does_not_read_stops_the_proxy_reading(faults: list[Any]) -> None:
    release = threading.Event()

    class Sleeper(ss.BaseRequestHandler):
        def handle(self) -> None:
            release.wait(WAIT)

    with (
        sockshock.serving("ThreadingTCPServer", Sleeper) as srv,
        sockshock.FaultProxy(srv.address, faults=faults, seed=0) as proxy,
    ):
        try:
            with connect(proxy, timeout=0.3) as client, pytest.raises(TimeoutError):
                client.sendall(b"x" * (64 * 1024 * 1024))
            (conn,) = proxy._acceptor.connections.values()
            pipe = conn.inward
            held = pipe.queued + pipe.outlen + pipe.inpipe
            assert 0 < held <= _pipe.BUFFER + proxy._loop.pipe_size  # (one read more at most)
            assert not pipe.wants_read  # back-pressure: the client's kernel buffer filled
        finally:
            release.set()


# -- datagrams --------------------------------------------------------------------------------


def test_dropped_datagrams_never_reach_the_server() -> None:
    handler, seen = datagram_recorder()
    with (
        sockshock.serving("UDPServer", handler) as srv,
        sockshock.FaultProxy(
            srv.address, transport="datagram", seed=0, faults=[F.DropDatagrams(connections=0)]
        ) as proxy,
        connect(proxy) as lost,
        connect(proxy) as kept,
    ):
        lost.send(b"lost")
        kept.send(b"kept")
        assert kept.recv(10) == b"kept"  # peer 0's datagram came first, and went nowhere
    assert seen == [b"kept"]
    assert [(e.connection, e.decision.action) for e in proxy.plan.log] == [(0, "drop")]


@pytest.mark.parametrize("direction", ["in", "out"])
def test_duplicated_datagrams(direction: str) -> None:
    handler, seen = datagram_recorder()
    with (
        sockshock.serving("UDPServer", handler) as srv,
        sockshock.FaultProxy(
            srv.address,
            transport="datagram",
            seed=0,
            faults=[F.DuplicateDatagrams(direction=direction)],
        ) as proxy,
        connect(proxy) as client,
    ):
        client.send(b"twice")
        assert [client.recv(10), client.recv(10)] == [b"twice", b"twice"]
        assert seen == ([b"twice", b"twice"] if direction == "in" else [b"twice"])


@pytest.mark.parametrize("direction", ["in", "out"])
def test_corrupted_and_truncated_datagrams(direction: str) -> None:
    payload = bytes(range(100))
    with (
        sockshock.serving("UDPServer", DatagramEcho) as srv,
        sockshock.FaultProxy(
            srv.address,
            transport="datagram",
            seed=3,
            faults=[
                F.CorruptDatagrams(bits=1, direction=direction),
                F.TruncateDatagrams(60, direction=direction),
            ],
        ) as proxy,
        connect(proxy) as client,
    ):
        client.send(payload)
        reply = client.recv(200)
    assert len(reply) == 60
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(reply, payload[:60], strict=True))
    (event,) = [e for e in proxy.plan.log if e.decision.corrupt]
    assert 0 <= event.decision.corrupt[0] < len(payload) * 8
    assert flipped == 1  # a bit drawn past the 60 bytes kept wraps into them (mangle())


def test_a_held_datagram_arrives_behind_a_later_one() -> None:
    handler, seen = datagram_recorder()
    with (
        sockshock.serving("UDPServer", handler) as srv,
        sockshock.FaultProxy(
            srv.address, transport="datagram", seed=0, faults=[F.ReorderDatagrams(1, first_ops=1)]
        ) as proxy,
        connect(proxy) as client,
    ):
        client.send(b"first")
        client.send(b"second")
        assert {client.recv(10), client.recv(10)} == {b"first", b"second"}
    assert seen == [b"second", b"first"]
    assert [e.decision.hold for e in proxy.plan.log] == [1]


def test_a_held_datagram_with_nothing_behind_it_goes_after_the_hold_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_datagrams, "HOLD_WINDOW", 0.05)
    with (
        sockshock.serving("UDPServer", DatagramEcho) as srv,
        sockshock.FaultProxy(
            srv.address, transport="datagram", seed=0, faults=[F.ReorderDatagrams(3)]
        ) as proxy,
        connect(proxy) as client,
    ):
        start = time.monotonic()
        client.send(b"alone")
        assert client.recv(10) == b"alone"
        assert time.monotonic() - start >= _datagrams.HOLD_WINDOW


def test_a_datagram_delay_holds_one_peer_only() -> None:
    handler, seen = datagram_recorder()
    with (
        sockshock.serving("UDPServer", handler) as srv,
        sockshock.FaultProxy(
            srv.address, transport="datagram", seed=0, faults=[DelayDatagrams(0.3, connections=0)]
        ) as proxy,
        connect(proxy) as slow,
        connect(proxy) as fast,
    ):
        start = time.monotonic()
        slow.send(b"slow")
        fast.send(b"fast")
        assert fast.recv(10) == b"fast"
        assert slow.recv(10) == b"slow"
        assert time.monotonic() - start >= 0.3
    assert seen == [b"fast", b"slow"]


def test_an_abrupt_shutdown_of_a_datagram_proxy() -> None:
    with (
        sockshock.serving("UDPServer", DatagramEcho) as srv,
        sockshock.FaultProxy(
            srv.address, transport="datagram", seed=0, faults=[F.AbruptShutdown(connections=1)]
        ) as proxy,
        connect(proxy) as first,
        connect(proxy) as second,
    ):
        first.send(b"one")
        assert first.recv(10) == b"one"
        second.send(b"two")
        assert proxy.shutdown_triggered.wait(WAIT)
        assert proxy.wait_stopped(WAIT)


# -- servers in other processes -------------------------------------------------------------------


def test_http_server_in_a_subprocess_through_the_proxy(tmp_path: Any) -> None:
    body = b"served through the fault proxy\n" * 200
    (tmp_path / "page.txt").write_bytes(body)
    with child(
        "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path), "0"
    ) as server:
        match = re.search(r"port (\d+)", read_line_within(server))
        assert match, "http.server did not say where it listens"
        upstream = ("127.0.0.1", int(match.group(1)))
        with sockshock.FaultProxy(
            upstream,
            seed=11,
            faults=[
                F.PartialReads(5),
                F.PartialWrites(700),
                F.Latency(0.0, jitter=0.002, direction="out"),
            ],
        ) as proxy:
            url = f"http://127.0.0.1:{proxy.address[1]}/page.txt"
            with urllib.request.urlopen(url, timeout=WAIT) as response:
                assert response.read() == body
    kinds = {e.kind for e in proxy.plan.log}
    assert kinds == {"recv", "send"}


@pytest.mark.parametrize("transport", ["tcp", "udp", "unix"])
def test_an_echo_server_in_a_subprocess(transport: str, tmp_path: Any) -> None:
    args = [os.path.join(HERE, "_echo_peer.py"), transport]
    if transport == "unix":
        args.append(str(tmp_path / "echo.sock"))
    faults = {
        "tcp": [F.PartialReads(2), F.PartialWrites(3)],
        "unix": [F.PartialReads(2), F.Latency(0.001, direction="out")],
        "udp": [F.DuplicateDatagrams(direction="out")],
    }[transport]
    with child(*args) as server:
        address = json.loads(read_line_within(server))
        upstream = address if transport == "unix" else tuple(address)
        with (
            sockshock.FaultProxy(
                upstream,
                transport="datagram" if transport == "udp" else "stream",
                faults=faults,
                seed=2,
            ) as proxy,
            connect(proxy) as client,
        ):
            if transport == "udp":
                client.send(b"datagram")
                assert [client.recv(20), client.recv(20)] == [b"datagram", b"datagram"]
            else:
                client.sendall(b"over there\n")
                assert read_line(client) == b"over there\n"
    assert proxy.plan.log


CLI_CASES = {  # transport: (signal, server class, faults)
    "tcp": (
        signal.SIGTERM,
        "ThreadingTCPServer",
        ["PartialReads(2)", "Latency(0.001, direction='out')"],
    ),
    "unix": (signal.SIGINT, "ThreadingUnixStreamServer", ["PartialWrites(3)"]),
    "udp": (signal.SIGTERM, "UDPServer", ["DuplicateDatagrams(direction='out')"]),
}


@pytest.mark.parametrize("transport", CLI_CASES)
def test_the_command_line_proxies_until_a_signal(transport: str) -> None:
    signum, server_class, models = CLI_CASES[transport]
    handler = DatagramEcho if transport == "udp" else LineEcho
    with sockshock.serving(server_class, handler) as srv:
        upstream = srv.address if transport == "unix" else f"127.0.0.1:{srv.address[1]}"
        flags = [] if transport == "tcp" else [f"--{transport}"]
        faults = [arg for model in models for arg in ("--fault", model)]
        with child(
            "-m",
            "sockshock._cli._proxy",
            "--upstream",
            upstream,
            *flags,
            "--seed",
            "7",
            *faults,
        ) as proc:
            printed = read_line_within(proc).strip()
            if transport == "unix":
                proxy_address: Any = printed
                client = socket.socket(socket.AF_UNIX)
            else:
                host, _, port = printed.rpartition(":")
                assert host == "127.0.0.1"
                proxy_address = (host, int(port))
                client = socket.socket(
                    type=socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
                )
            with client:
                client.settimeout(WAIT)
                client.connect(proxy_address)
                if transport == "udp":
                    client.send(b"datagram")
                    assert [client.recv(20), client.recv(20)] == [b"datagram", b"datagram"]
                else:
                    client.sendall(b"via the command line\n")
                    assert read_line(client) == b"via the command line\n"
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert "FaultPlan(seed=7)" in out
    assert " -> limit=" in out or "duplicate=1" in out
    assert f"sockshock proxy: {transport} " in err
    assert "seed 7" in err
    if transport == "unix":
        assert not os.path.exists(printed)  # its private directory is gone


def test_the_command_line_says_when_it_cannot_listen(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert proxy_main(["--upstream", "127.0.0.1:9", "--listen", f"127.0.0.1:{port}"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"sockshock proxy: cannot listen on 127.0.0.1:{port}: ")


def test_the_fixture_function_proxies_any_address_and_stops_them_all() -> None:
    with sockshock.audit(), sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        fixture = sockshock_proxy(seed=3)
        factory = next(fixture)
        assert isinstance(factory, ProxyFactory)
        first = factory(srv.address, faults=[F.PartialReads(2)])
        second = factory(first.address)  # a proxy in front of a proxy
        with connect(second) as client:
            client.sendall(b"twice proxied\n")
            assert read_line(client) == b"twice proxied\n"
        assert first.plan.seed == 3
        assert "PartialReads" in factory.report()
        with pytest.raises(StopIteration):
            next(fixture)  # teardown
        assert not first.running
        assert not second.running


# -- the same plan, the same decisions ------------------------------------------------------------

DETERMINISM_PLANS = {
    "EOFAfter(10)": [F.EOFAfter(10)],
    "ResetAfter(5)": [F.ResetAfter(5)],
    "PartialReads(3)": [F.PartialReads(3)],
    "PartialWrites(4)": [F.PartialWrites(4)],
    "one per connection": [
        F.PartialReads(3, connections=0),
        F.EOFAfter(10, connections=1),
        F.ResetAfter(5, connections=2),
        F.PartialWrites(4, connections=3),
        F.Latency(0.0, jitter=0.002, direction="out"),
    ],
}


@pytest.mark.parametrize("models", DETERMINISM_PLANS.values(), ids=DETERMINISM_PLANS.keys())
def test_the_proxy_decides_what_the_fault_layer_decides(models: list[Any]) -> None:
    """The same plan and seed through the server's fault layer and through the proxy:
    the same decisions at the same offsets, connection by connection.

    Operation sizes differ for reads: the server's recv() asks for 4096 bytes, the
    proxy offers the bytes it holds. So a limit at least as large as what is left of
    the request changes nothing through the proxy, and the plan does not log a
    decision without effect; the layer logs it (4096 > limit) although the server
    got no fewer bytes than without it. The random draws are the same either way,
    so every later decision still matches: such events are set aside, then the logs
    must be equal.
    """
    payload = b"a request of exactly 30 bytes\n"

    def effective(event: _F.FaultEvent) -> bool:
        only_a_limit = event.decision == _F.Decision(limit=event.decision.limit)
        rest = len(payload) - event.offset
        return not (
            event.kind == "recv" and only_a_limit and 0 < rest <= (event.decision.limit or 0)
        )

    connections = 4 if len(models) > 1 else 2

    def run(through_proxy: bool) -> dict[int, list[_F.FaultEvent]]:
        handler, events = recorder(reply=b"r" * 20)
        plan = F.FaultPlan(*models, seed=20240611)
        with contextlib.ExitStack() as stack:
            if through_proxy:
                srv = stack.enter_context(sockshock.serving("ThreadingTCPServer", handler))
                address = stack.enter_context(
                    sockshock.FaultProxy(srv.address, faults=plan)
                ).address
            else:
                srv = stack.enter_context(
                    sockshock.serving("ThreadingTCPServer", handler, faults=plan)
                )
                address = srv.address
            for _ in range(connections):  # one after the other: accept order is fixed
                with socket.create_connection(address, timeout=WAIT) as client:
                    client.sendall(payload)
                    # A server that closes with bytes unread resets the client: it may
                    # be too late to half-close, and the reply may be lost.
                    with contextlib.suppress(OSError):
                        client.shutdown(socket.SHUT_WR)
                    next_record(events)
                    with contextlib.suppress(OSError):
                        read_all(client)
        return {
            connection: [dataclasses.replace(e, size=0) for e in group if effective(e)]
            for connection, group in plan.log_by_connection().items()
        }

    layer, proxied = run(through_proxy=False), run(through_proxy=True)
    assert layer, "the plan decided nothing: the comparison would prove nothing"
    assert proxied == layer


# -- stopping ---------------------------------------------------------------------------------------


class CutEcho(LineEcho):
    """Echoes lines; a proxy that stops cuts the wire, and a reply still on its way
    reaches a closed socket: the kernel answers RST, as it would on a real cut."""

    def handle(self) -> None:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()


def test_stop_leaves_no_thread_descriptor_or_socket_file_behind() -> None:
    with (
        sockshock.audit(),
        sockshock.serving("ThreadingTCPServer", CutEcho) as tcp,
        sockshock.serving("ThreadingUnixStreamServer", CutEcho) as unix,
        sockshock.serving("UDPServer", DatagramEcho) as udp,
    ):
        proxies = [
            FaultProxy(
                tcp.address,
                seed=0,
                faults=[
                    F.Stall(0, connections=0),
                    F.Latency(30, connections=1),
                    F.SlowReader(pause=30, connections=2),
                ],
            ),
            FaultProxy(unix.address, seed=0),
            FaultProxy(
                udp.address,
                transport="datagram",
                seed=0,
                faults=[DelayDatagrams(30, connections=0), F.ReorderDatagrams(1, connections=1)],
            ),
        ]
        clients = []
        try:
            for proxy in proxies:
                proxy.start()
            tcp_proxy, unix_proxy, udp_proxy = proxies
            for _ in range(4):  # stalled, delayed, slowly read, idle
                clients.append(connect(tcp_proxy))
                clients[-1].sendall(b"pending\n")
            clients.append(connect(unix_proxy))
            for _ in range(2):  # a delayed datagram, a held one
                clients.append(connect(udp_proxy))
                clients[-1].send(b"pending")
            with connect(tcp_proxy) as probe:  # everything above has been accepted
                probe.sendall(b"probe\n")
                assert read_line(probe) == b"probe\n"
            start = time.monotonic()
            for proxy in proxies:
                proxy.stop()
            assert time.monotonic() - start < 1.0
            assert not any(p.running for p in proxies)
        finally:
            for proxy in proxies:
                proxy.stop()
            for client in clients:
                client.close()


def test_start_once_stop_any_number_of_times() -> None:
    proxy = FaultProxy(("127.0.0.1", 9))
    with pytest.raises(ProxyError, match="start"):
        proxy.address  # noqa: B018
    proxy.stop()  # never started: nothing to do
    proxy = FaultProxy(("127.0.0.1", 9))
    with proxy:
        assert proxy.running
        with pytest.raises(ProxyError, match="started before"):
            proxy.start()
    proxy.stop()
    assert not proxy.running


def test_a_stopped_proxy_cannot_be_entered_again() -> None:
    proxy = FaultProxy(("127.0.0.1", 9))
    with proxy:
        pass
    with pytest.raises(ProxyError, match="started before"), proxy:
        raise AssertionError("entered a stopped proxy")
    assert not proxy.running
    started = FaultProxy(("127.0.0.1", 9)).start()
    with started as entered:  # started by hand: used as it is, stopped at the end
        assert entered is started
        assert started.running
    assert not started.running


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        (
            "x",
            sockshock.errors.InvalidArgument,
            r"timeout='x' \(type=str\) \(from FaultProxy.stop\(\)\)",
        ),
        (math.nan, sockshock.errors.InvalidArgument, r"timeout=nan must be a finite number"),
        (
            -1,
            sockshock.errors.InvalidArgument,
            r"timeout=-1 must be in \(0, 3600\] \(from FaultProxy",
        ),
        (0, sockshock.errors.InvalidArgument, r"timeout=0 must be in \(0, 3600\]"),
    ],
)
def test_stop_checks_its_timeout_first_and_leaves_the_proxy_running(
    timeout: Any, error: type[Exception], message: str
) -> None:
    with sockshock.audit():  # nothing left behind once the real stop() ran
        proxy = FaultProxy(("127.0.0.1", 9)).start()
        try:
            with pytest.raises(error, match=message):
                proxy.stop(timeout=timeout)
            assert proxy.running
        finally:
            proxy.stop()
        assert not proxy.running


def test_a_unix_path_with_a_nul_byte_is_refused_before_anything_exists(tmp_path: Path) -> None:
    with sockshock.audit(), pytest.raises(sockshock.errors.InvalidArgument, match="NUL byte"):
        FaultProxy(str(tmp_path / "up.sock"), listen=f"{tmp_path}/a\0b")
    assert list(tmp_path.iterdir()) == []


def test_the_body_exception_wins_over_a_failed_stop() -> None:
    proxy = FaultProxy(("127.0.0.1", 9))
    with pytest.raises(KeyError, match="body"), proxy:
        proxy._failure = RuntimeError("a bug in the I/O thread")
        raise KeyError("body")
    proxy = FaultProxy(("127.0.0.1", 9)).start()
    proxy._failure = RuntimeError("a bug in the I/O thread")
    with pytest.raises(ProxyError, match="a bug in the I/O thread"):
        proxy.stop()


# -- bad arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"upstream": ("10.0.0.1", 80)},
            sockshock.errors.InvalidArgument,
            r"upstream=\('10.0.0.1', 80\): the proxy only uses loopback addresses",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "listen": ("0.0.0.0", 0)},
            sockshock.errors.InvalidArgument,
            r"listen=\('0.0.0.0', 0\): the proxy only uses loopback",
        ),
        (
            {"upstream": ("example.com", 80)},
            sockshock.errors.InvalidArgument,
            r"upstream=\('example.com', 80\): the proxy only uses loopback",
        ),
        (
            {"upstream": ("127.0.0.1", 0)},
            sockshock.errors.InvalidArgument,
            r"port=0 must be in \[1, 65535\] \(from upstream=\('127.0.0.1', 0\) of FaultProxy\)",
        ),
        (
            {"upstream": "/tmp/s.sock", "transport": "datagram"},
            sockshock.errors.InvalidArgument,
            r"upstream='/tmp/s.sock' is a path, and the proxy relays Unix stream sockets only",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "transport": "udp"},
            sockshock.errors.InvalidArgument,
            r"transport='udp' is transport='datagram' in sockshock",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "transport": "sctp"},
            sockshock.errors.InvalidArgument,
            r"transport='sctp' must be one of 'stream', 'datagram' \(from FaultProxy\)",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "faults": F.FaultPlan(seed=1), "seed": 2},
            sockshock.errors.InvalidArgument,
            r"seed=2 conflicts with the plan's own seed=1",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "faults": "PartialReads(3)"},
            sockshock.errors.InvalidArgument,
            r"expected a FaultPlan or a list of fault models \(sockshock.faults\) but got "
            r"faults='PartialReads\(3\)' \(type=str\) \(from FaultProxy\)",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "faults": ["PartialReads(3)"]},
            sockshock.errors.InvalidArgument,
            r"got 'PartialReads\(3\)' \(type=str\) \(from FaultProxy\)",
        ),
        (
            {"upstream": "/tmp/s.sock", "listen": "/tmp/a\0b"},
            sockshock.errors.InvalidArgument,
            r"listen='/tmp/a\\x00b': a Unix socket path cannot contain a NUL byte \(from FaultProxy\)",
        ),
        (
            {"upstream": "127.0.0.1:80"},
            sockshock.errors.InvalidArgument,
            r"upstream='127.0.0.1:80' looks like HOST:PORT, not a Unix socket path",
        ),
        (
            {"upstream": "/tmp/s.sock", "listen": "[::1]:0"},
            sockshock.errors.InvalidArgument,
            r"listen='\[::1\]:0' looks like HOST:PORT",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "faults": [F.DropDatagrams(0.5)]},
            sockshock.errors.InvalidArgument,
            r"DropDatagrams\(probability=0.5\) cannot fire on a tcp proxy: it acts on datagrams only",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "transport": "datagram", "faults": [F.AcceptErrors()]},
            sockshock.errors.InvalidArgument,
            r"AcceptErrors\(\) cannot fire on a udp proxy: it acts on stream connections only",
        ),
        (
            {"upstream": ("127.0.0.1", 80), "seed": -1},
            sockshock.errors.InvalidArgument,
            r"seed=-1 must be in \[0, 18446744073709551615\] \(from FaultProxy\)",
        ),
    ],
)
def test_bad_arguments_get_one_clear_error(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    upstream = kwargs.pop("upstream")
    with pytest.raises(error, match=message) as raised:
        FaultProxy(upstream, **kwargs)
    assert isinstance(raised.value, sockshock.errors.InvalidArgument)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--upstream is required"),
        (["--upstream", "127.0.0.1"], "--upstream='127.0.0.1': expected HOST:PORT"),
        (["--upstream", "10.1.2.3:80"], "the proxy only uses loopback addresses"),
        (["--upstream", "127.0.0.1:80", "--listen", "0.0.0.0:0"], "listen=('0.0.0.0', 0)"),
        (["--upstream", "127.0.0.1:80", "--udp", "--unix"], "not allowed with argument"),
        (["--upstream", "127.0.0.1:80", "--seed", "x"], "invalid int value: 'x'"),
        (
            ["--upstream", "/tmp/nope.sock", "--unix", "--listen", "127.0.0.1:0"],
            "--listen='127.0.0.1:0' looks like HOST:PORT, but --unix expects a Unix socket path",
        ),
        (
            ["--upstream", "127.0.0.1:8000", "--unix"],
            "--upstream='127.0.0.1:8000' looks like HOST:PORT, but --unix expects a Unix socket path",
        ),
        (["--upstream", "localhost:8000", "--unix"], "looks like HOST:PORT"),
        (
            ["--upstream", "127.0.0.1:80", "--fault", "PartialRead(3)"],
            "'PartialRead' is not a fault model; did you mean 'PartialReads'?",
        ),
        (
            ["--upstream", "127.0.0.1:80", "--fault", "PartialReads(0)"],
            "--fault 'PartialReads(0)': max_chunk=0 must be in [1, inf] (from PartialReads)",
        ),
        (
            ["--upstream", "127.0.0.1:80", "--fault", "__import__('os').getpid()"],
            "expected a fault model call such as 'PartialReads(3)'",
        ),
        (
            ["--upstream", "127.0.0.1:80", "--fault", "Latency(seconds=x)"],
            "arguments must be literals",
        ),
        (
            ["--upstream", "127.0.0.1:80", "--fault", "Latency(1, 2, 3, 4)"],
            "Latency() takes at most 3 positional argument(s) (seconds, jitter, direction), not 4",
        ),
    ],
)
def test_command_line_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert proxy_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("sockshock proxy: ")
    assert message in err


PROXY_ONLY_TEST = """
import socket
from sockshock import faults as F
from sockshock.handlers import LineEcho
import sockshock

def test_through_the_proxy(sockshock_proxy):
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        proxy = sockshock_proxy(srv.address, faults=[F.PartialWrites(1)])
        with socket.create_connection(proxy.address, timeout=5) as client:
            client.sendall(b"ab\\n")
            reply = b""
            while not reply.endswith(b"\\n"):
                reply += client.recv(10)
    assert reply == b"wrong"
"""


def test_a_proxy_only_failure_report_says_how_to_re_run(pytester: pytest.Pytester) -> None:
    """Without the sockshock fixture, the proxies' section carries the seed and the
    re-run line itself."""
    pytester.makepyfile(test_proxied=PROXY_ONLY_TEST)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--sockshock-seed=77",
        timeout=SUBPROCESS_TIMEOUT,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- sockshock proxies (call) -*",
            "fault seed: 77 (session seed *)",
            "re-run this test with the same faults:",
            "  pytest test_proxied.py::test_through_the_proxy --sockshock-seed=77",
            "FaultProxy(tcp *, FaultPlan(PartialWrites(max_chunk=1), seed=77)):",
            "FaultPlan(seed=77): 2 fault(s) injected",
        ]
    )


def test_start_after_stop_says_what_happened() -> None:
    never = FaultProxy(("127.0.0.1", 9))
    never.stop()
    with pytest.raises(ProxyError, match="was stopped before it started; a proxy starts once"):
        never.start()
    used = FaultProxy(("127.0.0.1", 9)).start()
    used.stop()
    with pytest.raises(ProxyError, match="was started before; a proxy starts once"):
        used.start()

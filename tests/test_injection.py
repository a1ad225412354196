"""The fault layer through real servers: what a server sees is what the OS would show."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import _stdlib, _wire
from sockshock import faults as F
from sockshock.handlers import DatagramEcho, LineEcho, NaiveRecvEcho, NaiveSendEcho
from sockshock.layer import check_socket_layer
from tests._support import WAIT, read_line


class Recorder(ss.BaseRequestHandler):
    """Reads until end of file, recording each recv's size and any error."""

    seen: list[Any]

    def handle(self) -> None:
        self.request.settimeout(getattr(self.server, "handler_timeout", None))
        try:
            while chunk := self.request.recv(4096):
                self.seen.append(len(chunk))
            self.seen.append("eof")
        except OSError as exc:
            self.seen.append(exc)


def recorder() -> type[Recorder]:
    return type("Recorder", (Recorder,), {"seen": []})


def test_the_fault_layer_passes_the_layer_conformance_kit() -> None:
    check_socket_layer(sockshock.layer.FaultLayer())
    # An active plan whose models never fire goes through every override.
    layer = sockshock.layer.FaultLayer([F.Latency(0.0)])
    check_socket_layer(layer)
    layer.close()


def test_wrapped_sockets_are_sockets() -> None:
    layer = sockshock.layer.FaultLayer([F.PartialReads(1)])
    try:
        with layer.socket() as sock:
            assert isinstance(sock, socket.socket)
            assert isinstance(sock, _wire.FaultySocket)
    finally:
        layer.close()


def test_partial_reads_reach_the_server() -> None:
    handler = recorder()
    with (
        sockshock.serving("ThreadingTCPServer", handler, faults=[F.PartialReads(3)], seed=1) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"x" * 100)
    sizes = handler.seen[:-1]
    assert handler.seen[-1] == "eof"
    assert sum(sizes) == 100
    assert max(sizes) <= 3
    assert len(srv.plan.log) == len(sizes) + 1  # and the read that saw end of file


def test_partial_writes_shorten_send_and_sendall_still_delivers() -> None:
    sent = []

    class Handler(ss.BaseRequestHandler):
        def handle(self) -> None:
            sent.append(self.request.send(b"abcdef"))
            self.request.sendall(b"0123456789" * 10)

    with (
        sockshock.serving("TCPServer", Handler, faults=[F.PartialWrites(2)], seed=4) as srv,
        srv.connect() as client,
    ):
        data = b""
        while chunk := client.recv(4096):
            data += chunk
    assert 1 <= sent[0] <= 2
    assert data == b"abcdef"[: sent[0]] + b"0123456789" * 10


def test_latency_and_bandwidth_advance_a_virtual_clock() -> None:
    with (
        sockshock.serving(
            "TCPServer", LineEcho, faults=[F.Latency(0.25)], clock="virtual", seed=0
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"one\n")
        assert read_line(client) == b"one\n"
        assert srv.layer.clock.now() >= 0.25
    with (
        sockshock.serving(
            "TCPServer",
            LineEcho,
            faults=[F.Bandwidth(1000, direction="out")],
            clock="virtual",
            seed=0,
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"y" * 499 + b"\n")
        assert read_line(client) == b"y" * 499 + b"\n"
        assert srv.layer.clock.now() == pytest.approx(0.45)  # 10 sends of 50 bytes


class TimedLine(ss.StreamRequestHandler):
    timeout = 5.0
    outcome: list[Any]

    def handle(self) -> None:
        try:
            line = self.rfile.readline()
            self.outcome.append(self.server.socket_layer.clock.now())
            self.wfile.write(line * 100)
            self.outcome.append("written")
        except OSError as exc:
            self.outcome.append((exc, self.server.socket_layer.clock.now()))


def test_a_slow_client_times_out_in_virtual_time() -> None:
    handler = type("H", (TimedLine,), {"outcome": []})
    with (
        sockshock.serving(
            "TCPServer", handler, faults=[F.SlowClient(chunk=1, pause=60)], clock="virtual", seed=0
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"request\n")
        assert client.recv(10) == b""
    ((error, at),) = handler.outcome
    assert type(error) is TimeoutError
    assert str(error) == "timed out"
    assert at == 5.0


def test_a_slow_client_within_the_timeout_is_served_byte_by_byte() -> None:
    handler = type("H", (TimedLine,), {"outcome": []})
    with (
        sockshock.serving(
            "TCPServer", handler, faults=[F.SlowClient(chunk=1, pause=1)], clock="virtual", seed=0
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"abc\n")
        assert client.recv(4) == b"abc\n"
    assert handler.outcome[0] == 4.0  # one second per byte, each within the timeout


def test_a_slow_reader_makes_the_write_timeout_fire() -> None:
    handler = type("H", (TimedLine,), {"outcome": []})
    with (
        sockshock.serving(
            "TCPServer", handler, faults=[F.SlowReader(chunk=10, pause=30)], clock="virtual", seed=0
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"abc\n")
        assert client.recv(100) == b""
    read_at, (error, at) = handler.outcome
    assert type(error) is TimeoutError
    assert at == read_at + 5.0


def test_reset_after_looks_like_a_reset() -> None:
    outcome: list[Any] = []

    class Handler(ss.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            try:
                while chunk := self.request.recv(100):
                    data += chunk
            except OSError as exc:
                outcome.append((data, exc))
            for _ in range(2):
                try:
                    self.request.sendall(b"reply")
                except OSError as exc:
                    outcome.append(exc)
            outcome.append(self.request.recv(10))

    with (
        sockshock.serving("ThreadingTCPServer", Handler, faults=[F.ResetAfter(5)], seed=0) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"0123456789")
        assert client.recv(10) == b""
    (data, reset), first_write, second_write, later_read = outcome
    assert data == b"01234"
    assert type(reset) is ConnectionResetError
    assert reset.errno == errno.ECONNRESET
    assert str(reset) == f"[Errno {errno.ECONNRESET}] {os.strerror(errno.ECONNRESET)}"
    assert type(first_write) is BrokenPipeError
    assert first_write.errno == errno.EPIPE
    assert type(second_write) is BrokenPipeError
    assert later_read == b""


def test_eof_after_cuts_the_request_short() -> None:
    lines: list[bytes] = []

    class Handler(ss.StreamRequestHandler):
        def handle(self) -> None:
            lines.extend(self.rfile.readlines())

    with (
        sockshock.serving("TCPServer", Handler, faults=[F.EOFAfter(6)], seed=0) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"first\nsecond\n")
        # The server closes with "second\n" unread: the kernel may send RST.
        with contextlib.suppress(ConnectionResetError):
            assert client.recv(10) == b""
    assert lines == [b"first\n"]


def test_stall_blocks_until_the_timeout() -> None:
    handler = type("H", (TimedLine,), {"outcome": []})
    with (
        sockshock.serving(
            "TCPServer", handler, faults=[F.Stall(2)], clock="virtual", seed=0
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"complete line\n")
        assert client.recv(10) == b""
    ((error, at),) = handler.outcome
    assert type(error) is TimeoutError
    assert at == 5.0


def test_stall_without_timeout_is_found_by_the_shutdown_bound() -> None:
    handler = recorder()
    # A client of the test's own: the harness ends the sending side of the ones
    # connect() made, and a Stall ends when its peer does.
    with (
        socket.socket() as client,
        pytest.raises(sockshock.errors.ShutdownTimeout, match=r"Recorder|recv"),
        sockshock.serving(
            "ThreadingTCPServer", handler, faults=[F.Stall(0)], seed=0, shutdown_timeout=0.1
        ) as srv,
    ):
        client.connect(srv.address)
        client.sendall(b"never seen")
        # The handler's read stalled before the stop begins: on a loaded machine the
        # loop may not take the connection within the stop's short wait for it
        # (a quarter of shutdown_timeout), and the Stall would never fire.
        deadline = time.monotonic() + WAIT
        while not srv.plan.log and time.monotonic() < deadline:
            time.sleep(0.001)
        assert [event.decision.action for event in srv.plan.log] == ["stall"]
    assert handler.seen == ["eof"]  # unstuck by the harness: shutdown reads as EOF


def test_non_blocking_sockets_see_delays_as_would_block() -> None:
    outcome: list[Any] = []

    class Handler(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.setblocking(False)
            try:
                self.request.recv(10)
            except BlockingIOError as exc:
                outcome.append(exc.errno)
            self.request.settimeout(5)
            outcome.append(self.request.recv(10))

    with (
        sockshock.serving("TCPServer", Handler, faults=[F.Latency(0.001)], seed=0) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"data")
        assert client.recv(10) == b""
    assert outcome == [errno.EAGAIN, b"data"]


def test_makefile_recv_into_and_sendfile_work_under_faults(tmp_path: Any) -> None:
    source = tmp_path / "payload"
    source.write_bytes(b"file contents " * 50)

    class Handler(ss.StreamRequestHandler):
        def handle(self) -> None:
            buffer = bytearray(5)
            n = self.connection.recv_into(buffer)
            self.wfile.write(bytes(buffer[:n]) + b"|" + self.rfile.readline())
            with open(source, "rb") as f:
                self.connection.sendfile(f)

    with (
        sockshock.serving(
            "TCPServer", Handler, faults=[F.PartialReads(2), F.PartialWrites(7)], seed=2
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"ab rest of line\n")
        data = b""
        while chunk := client.recv(4096):
            data += chunk
    head, _, rest = data.partition(b"|")
    assert 1 <= len(head) <= 2
    assert rest == b"ab rest of line\n"[len(head) :] + source.read_bytes()


# -- datagrams -------------------------------------------------------------------------

UDP_KINDS = ["UDPServer", "UnixDatagramServer"]


@pytest.mark.parametrize("name", UDP_KINDS)
def test_dropped_datagrams_are_silence(name: str) -> None:
    sent = {b"%d" % i for i in range(12)}
    replies: set[bytes] = set()
    with (
        sockshock.serving(name, DatagramEcho, faults=[F.DropDatagrams(0.5)], seed=7) as srv,
        srv.connect(timeout=0.05) as client,
    ):
        for datagram in sorted(sent):
            client.send(datagram)
        # Every datagram is answered or dropped (silence): wait until the replies and
        # the plan's drops account for all of them -- however late a reply comes.
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            drops = [e for e in srv.plan.log if e.decision.action == "drop"]
            if len(replies) + len(drops) == len(sent):
                break
            with contextlib.suppress(TimeoutError):
                replies.add(client.recv(10))
    drops = [e for e in srv.plan.log if e.decision.action == "drop"]
    assert replies <= sent
    assert len(replies) + len(drops) == 12
    assert 0 < len(drops) < 12


@pytest.mark.parametrize("direction", ["in", "out"])
def test_duplicated_datagrams_are_answered_twice(direction: str) -> None:
    handled = []

    class Echo(ss.DatagramRequestHandler):
        def handle(self) -> None:
            handled.append(self.packet)
            self.wfile.write(self.packet)

    with (
        sockshock.serving(
            "UDPServer", Echo, seed=0, faults=[F.DuplicateDatagrams(direction=direction)]
        ) as srv,
        srv.connect(timeout=WAIT) as client,
    ):
        client.send(b"twice")
        assert client.recv(10) == b"twice"
        assert client.recv(10) == b"twice"
        assert handled == ([b"twice", b"twice"] if direction == "in" else [b"twice"])
        assert srv.server.socket.getsockname() == srv.address


@pytest.mark.parametrize("direction", ["in", "out"])
def test_corrupted_and_truncated_datagrams(direction: str) -> None:
    payload = bytes(range(100))
    with (
        sockshock.serving(
            "UDPServer",
            DatagramEcho,
            seed=3,
            faults=[
                F.CorruptDatagrams(bits=1, direction=direction),
                F.TruncateDatagrams(60, direction=direction),
            ],
        ) as srv,
        srv.connect(timeout=WAIT) as client,
    ):
        client.send(payload)
        reply = client.recv(200)
    assert len(reply) == 60
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(reply, payload[:60], strict=True))
    (event,) = [e for e in srv.plan.log if e.decision.corrupt]
    assert 0 <= event.decision.corrupt[0] < len(payload) * 8
    assert flipped == 1  # a bit drawn past the 60 bytes kept wraps into them (mangle())


def test_reordered_datagrams_arrive_in_another_order() -> None:
    order: list[bytes] = []
    release = threading.Event()
    all_handled = threading.Event()
    sent = [b"%02d" % i for i in range(12)]

    class Slow(ss.DatagramRequestHandler):
        def handle(self) -> None:
            release.wait(5)  # let the whole burst queue up behind the first
            order.append(self.packet)
            if len(order) == len(sent):
                all_handled.set()

    with (
        sockshock.serving(
            "UDPServer", Slow, seed=2, faults=[F.ReorderDatagrams(3, probability=0.5)]
        ) as srv,
        srv.connect(timeout=WAIT) as client,
    ):
        for packet in sent:
            client.send(packet)
        release.set()
        assert all_handled.wait(5), f"handled only {order}"
    assert sorted(order) == sent  # nothing lost, nothing doubled
    assert order != sent
    assert any(e.decision.hold for e in srv.plan.log)


def test_accept_errors_are_survived_and_the_client_is_served() -> None:
    with (
        sockshock.serving(
            "ThreadingTCPServer", LineEcho, seed=0, faults=[F.AcceptErrors("EMFILE", times=3)]
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"served\n")
        assert read_line(client) == b"served\n"
    errors = [e for e in srv.plan.log if e.kind == "accept"]
    assert [e.decision.errno for e in errors] == [errno.EMFILE] * 3


def test_abrupt_shutdown_at_a_precise_moment() -> None:
    reading = threading.Event()
    finished: list[bytes] = []

    class Handler(ss.StreamRequestHandler):
        def handle(self) -> None:
            first = self.rfile.read(5)
            reading.set()
            finished.append(first + self.rfile.readline())
            self.wfile.write(b"done\n")

    with sockshock.serving(
        "ThreadingTCPServer",
        Handler,
        seed=0,
        faults=[F.AbruptShutdown(connections=1, after_bytes=5)],
    ) as srv:
        with srv.connect() as first:
            first.sendall(b"first request\n")
            assert read_line(first) == b"done\n"
        with srv.connect() as second:
            second.sendall(b"secon")
            assert reading.wait(5)
            # Reading past byte 5 of connection 1 stops the server...
            assert srv.layer.shutdown_triggered.wait(5)
            second.sendall(b"d request\n")  # ...and the in-flight request completes
            assert read_line(second) == b"done\n"
        assert srv.wait_stopped(WAIT)
        assert srv.server.socket.fileno() == -1
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(srv.address, timeout=WAIT),
        ):
            pass
    assert finished == [b"first request\n", b"second request\n"]
    assert [e.decision.action for e in srv.plan.log] == ["shutdown"]


# -- the matrix: every server class shows the effect -----------------------------------


@pytest.mark.parametrize("kind", sockshock.server_kinds(transport="stream"), ids=lambda k: k.name)
def test_every_stream_server_under_partial_io(kind: _stdlib.ServerKind) -> None:
    with (
        sockshock.serving(
            kind.server_class, LineEcho, seed=5, faults=[F.PartialReads(2), F.PartialWrites(3)]
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"through the faults\n")
        assert read_line(client) == b"through the faults\n"
    kinds = {e.kind for e in srv.plan.log}
    assert kinds == {"recv", "send"}
    if kind.concurrency == "forking":  # decided in the child, logged in the parent
        assert all(e.pid not in (None, os.getpid()) for e in srv.plan.log)


@pytest.mark.parametrize("kind", sockshock.server_kinds(transport="datagram"), ids=lambda k: k.name)
def test_every_datagram_server_under_duplication(kind: _stdlib.ServerKind) -> None:
    with (
        sockshock.serving(
            kind.server_class, DatagramEcho, seed=5, faults=[F.DuplicateDatagrams(direction="out")]
        ) as srv,
        srv.connect(timeout=WAIT) as client,
    ):
        client.send(b"dup")
        assert [client.recv(10), client.recv(10)] == [b"dup", b"dup"]


def test_a_forking_server_logs_what_a_threading_one_logs() -> None:
    logs = []
    for name in ("ThreadingTCPServer", "ForkingTCPServer"):
        with sockshock.serving(
            name, LineEcho, seed=99, faults=[F.PartialReads(4), F.Latency(0.0, jitter=0.001)]
        ) as srv:
            for line in (b"alpha beta\n", b"gamma delta epsilon\n"):
                with srv.connect() as client:
                    client.sendall(line)
                    assert read_line(client) == line
        logs.append(srv.plan.log_by_connection())
    assert logs[0] == logs[1]


# -- faults find real bugs -------------------------------------------------------------


def test_partial_reads_expose_one_recv_one_message() -> None:
    with (
        pytest.raises(ValueError, match="incomplete message"),
        sockshock.serving(
            "ThreadingTCPServer", NaiveRecvEcho, seed=1, faults=[F.PartialReads(3)]
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"a whole line\n")
        client.recv(100)


def test_partial_writes_expose_send_instead_of_sendall() -> None:
    with (
        sockshock.serving(
            "ThreadingTCPServer", NaiveSendEcho, seed=1, faults=[F.PartialWrites(4)]
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"a whole line\n")
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := client.recv(100):
            reply += chunk
    assert reply != b"a whole line\n"
    assert b"a whole line\n".startswith(reply)


@pytest.mark.parametrize(("name", "order"), [("TCPServer", [0, 1]), ("ThreadingTCPServer", [1, 0])])
def test_a_slow_client_starves_a_synchronous_server_only(name: str, order: list[int]) -> None:
    started = threading.Event()
    done: list[int] = []

    class Handler(ss.StreamRequestHandler):
        def handle(self) -> None:
            started.set()
            line = self.rfile.readline()
            done.append(int(line))
            self.wfile.write(line)

    with (
        sockshock.serving(
            name, Handler, seed=0, faults=[F.SlowClient(chunk=1, pause=0.05, connections=0)]
        ) as srv,
        srv.connect() as slow,
        srv.connect() as quick,
    ):
        slow.sendall(b"0\n")
        assert started.wait(5)
        quick.sendall(b"1\n")
        assert read_line(quick) == b"1\n"
        assert read_line(slow) == b"0\n"
    assert done == order


# -- the standard library's servers under faults ---------------------------------------


def test_http_and_xmlrpc_serve_correctly_under_faults(ours_as_socketserver: Any) -> None:
    import http.client
    import http.server
    import xmlrpc.client
    import xmlrpc.server

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body * 2)

        def log_message(self, *args: Any) -> None:
            pass

    faults = [F.PartialReads(3), F.PartialWrites(5), F.Latency(0.0005)]
    with sockshock.serving(http.server.ThreadingHTTPServer, Hello, faults=faults, seed=8) as srv:
        conn = http.client.HTTPConnection(*srv.address, timeout=5)
        try:
            conn.request("POST", "/", body=b"payload-" * 20)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"payload-" * 40)
        finally:
            conn.close()
    assert len(srv.plan.log) > 20

    class RPC(xmlrpc.server.SimpleXMLRPCServer):
        def __init__(self, addr: Any, handler: Any) -> None:
            super().__init__(addr, handler, logRequests=False)
            self.register_function(lambda s: s[::-1], "reverse")

    with sockshock.serving(
        RPC, xmlrpc.server.SimpleXMLRPCRequestHandler, faults=faults, seed=8
    ) as srv:
        host, port = srv.address
        with xmlrpc.client.ServerProxy(f"http://{host}:{port}/") as proxy:
            assert proxy.reverse("sockshock") == "kcohskcos"


def test_faults_reach_a_server_built_on_the_standard_library() -> None:
    import socketserver

    handler = recorder()
    with (
        sockshock.serving(
            socketserver.TCPServer, handler, faults=[F.PartialReads(2)], seed=3
        ) as srv,
        srv.connect() as client,
    ):
        assert isinstance(srv.server.socket, _wire.FaultySocket)
        client.sendall(b"x" * 10)
    assert handler.seen[-1] == "eof"
    assert sum(handler.seen[:-1]) == 10
    assert max(handler.seen[:-1]) <= 2

"""sockshock.clients: real misbehaving clients over real sockets, against real servers
(sockshock's and the standard library's), and what they find."""

from __future__ import annotations

import contextlib
import http.server
import importlib
import inspect
import socket
import socketserver as stdlib_socketserver
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import _clients, clients
from sockshock.handlers import DatagramEcho, LineEcho, NaiveRecvEcho
from tests._support import ipv6_loopback

# -- handlers for the findings ------------------------------------------------------


def header_reader(entered: threading.Event) -> type[ss.StreamRequestHandler]:
    """Reads a request's lines up to the blank line, then answers ``ok``."""

    class HeaderReader(ss.StreamRequestHandler):
        def handle(self) -> None:
            entered.set()
            for line in self.rfile:
                if line in (b"\r\n", b"\n"):
                    self.wfile.write(b"ok\n")
                    return

    return HeaderReader


class Hello(http.server.BaseHTTPRequestHandler):
    """The standard library's HTTP handler, answering every GET with ``hello``."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def stdlib_http(**attrs: Any) -> Any:
    """``serving()`` the standard library's ThreadingHTTPServer (polls: a short interval)."""
    handler = type("Handler", (Hello,), attrs)
    return sockshock.serving(http.server.ThreadingHTTPServer, handler, poll_interval=0.05)


# -- slowloris ------------------------------------------------------------------------


def test_slowloris_holds_a_synchronous_server_so_other_clients_starve() -> None:
    entered = threading.Event()
    with sockshock.serving("TCPServer", header_reader(entered)) as srv:
        with clients.slowloris(srv.address, interval=0.01, duration=10) as run:
            assert entered.wait(2)
            other = srv.connect(timeout=0.15)
            other.sendall(b"GET / HTTP/1.0\r\n\r\n")
            with pytest.raises(TimeoutError):
                other.recv(10)  # starved while the slowloris client is there
            assert run.running
        # The slowloris client went away: only now does the server get to the other one.
        other.settimeout(2)
        assert other.recv(10) == b"ok\n"
    result = run.result()
    assert result.stopped
    assert result.outcomes == {"open": 1}  # the server never ended it
    assert result.sent > len(_clients.HTTP_REQUEST_HEAD)  # header lines kept coming


def test_slowloris_does_not_starve_a_threading_server() -> None:
    entered = threading.Event()
    with (
        sockshock.serving("ThreadingTCPServer", header_reader(entered)) as srv,
        clients.slowloris(srv.address, count=3, interval=0.01, duration=10) as run,
    ):
        assert run.wait_connected(2)
        assert entered.wait(2)
        with srv.connect(timeout=2) as other:
            other.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert other.recv(10) == b"ok\n"
        assert run.running
    assert run.result().outcomes == {"open": 3}


def test_http_server_lets_slowloris_outlast_its_timeout_then_serves_the_unfinished_request() -> (
    None
):
    # http.server's handler timeout applies to each read: a header line every 0.02 s
    # keeps a 0.2 s timeout from ever firing. When the client finally gives up,
    # http.server takes end of file for the end of the headers and serves the
    # request that never finished -- into a closed connection.
    headers: list[int] = []
    served_at: list[float] = []
    served = threading.Event()

    class Records(Hello):
        timeout = 0.2

        def do_GET(self) -> None:
            served_at.append(time.monotonic())
            headers.append(sum(name.startswith("X-Slowloris") for name in self.headers))
            with contextlib.suppress(OSError):  # the client has gone
                super().do_GET()
            served.set()

    with sockshock.serving(http.server.ThreadingHTTPServer, Records, poll_interval=0.05) as srv:
        start = time.monotonic()
        result = clients.slowloris(srv.address, interval=0.02, duration=0.35).result()
        assert served.wait(2)
    assert served_at[0] - start >= 0.35  # held for the whole run, then answered unfinished
    (conn,) = result.connections
    assert conn.outcome == "open"
    assert conn.closed_at is None
    assert headers[0] >= 5  # about 15 header lines arrived in time


def test_http_server_timeout_drops_a_slowloris_that_drips_slower_than_it() -> None:
    with stdlib_http(timeout=0.2) as srv:
        result = clients.slowloris(srv.address, interval=0.5, duration=1.0).result()
    (conn,) = result.connections
    assert conn.outcome == "eof"
    assert conn.closed_at is not None
    assert 0.2 <= conn.closed_at < 0.5
    assert result.elapsed < 0.5  # the run ends when the server ends every connection


def test_a_stream_handler_timeout_fires_on_a_slow_drip_but_not_a_fast_one() -> None:
    class TimedHeaders(ss.StreamRequestHandler):
        timeout = 0.5  # 50 times the fast drip's interval: a loaded machine cannot close it

        def handle(self) -> None:
            for line in self.rfile:
                if line == b"\r\n":
                    return

    with sockshock.serving("ThreadingTCPServer", TimedHeaders) as srv:
        fast = clients.slowloris(srv.address, interval=0.01, duration=0.3)
        slow = clients.slowloris(srv.address, interval=2.0, duration=1.0)
        with fast, slow:
            fast_result, slow_result = fast.result(), slow.result()
        (failure,) = srv.errors  # the slow client's handler
        assert isinstance(failure.exception, TimeoutError)
        srv.errors.clear()
    assert fast_result.outcomes == {"open": 1}
    assert slow_result.outcomes == {"eof": 1}


# -- connect_and_idle ---------------------------------------------------------------------


def test_a_handler_without_a_timeout_is_held_by_an_idle_client() -> None:
    entered, finished = threading.Event(), threading.Event()

    class WaitsForALine(ss.StreamRequestHandler):
        def handle(self) -> None:
            entered.set()
            self.rfile.readline()  # no timeout
            finished.set()

    with sockshock.serving("ThreadingTCPServer", WaitsForALine) as srv:
        with clients.connect_and_idle(srv.address, duration=10) as run:
            assert entered.wait(2)
            assert not finished.wait(0.1)  # silence: the handler just waits
        assert finished.wait(2)  # only the client leaving frees it
    result = run.result()
    assert result.stopped
    assert result.outcomes == {"open": 1}
    assert result.sent == result.received == 0


def test_a_handler_timeout_closes_an_idle_client_and_surfaces_as_timeout_error() -> None:
    class TimesOut(ss.StreamRequestHandler):
        timeout = 0.05

        def handle(self) -> None:
            self.rfile.readline()

    with sockshock.serving("ThreadingTCPServer", TimesOut) as srv:
        result = clients.connect_and_idle(srv.address, count=2, duration=2).result()
        assert [type(f.exception) for f in srv.errors] == [TimeoutError, TimeoutError]
        srv.errors.clear()
    assert result.outcomes == {"eof": 2}
    assert all(c.closed_at is not None and 0.05 <= c.closed_at < 2 for c in result.connections)
    assert result.elapsed < 2
    assert not result.stopped


# -- rst_on_close ---------------------------------------------------------------------------


def test_rst_on_close_makes_the_handler_see_connection_reset() -> None:
    got: list[bytes] = []
    done = threading.Event()

    class Reads(ss.BaseRequestHandler):
        def handle(self) -> None:
            try:
                while data := self.request.recv(1024):
                    got.append(data)
            finally:
                done.set()

    with pytest.raises(ConnectionResetError), sockshock.serving("ThreadingTCPServer", Reads) as srv:
        result = clients.rst_on_close(srv.address, request=b"GET / HT").result()
        assert done.wait(2)
    assert b"".join(got) == b"GET / HT"  # what was sent arrives, then the reset
    assert result.sent == 8
    assert result.outcomes == {"open": 1}


def test_a_client_reset_escapes_http_servers_handler() -> None:
    done = threading.Event()

    def handle(self: http.server.BaseHTTPRequestHandler) -> None:
        try:
            http.server.BaseHTTPRequestHandler.handle(self)
        finally:
            done.set()

    with pytest.raises(ConnectionResetError), stdlib_http(handle=handle) as srv:
        clients.rst_on_close(srv.address).result()  # cut off in its Host header
        assert done.wait(2)


# -- never_reads ----------------------------------------------------------------------------


def test_never_reads_blocks_the_servers_sendall_until_its_timeout() -> None:
    blocked = threading.Event()
    written: list[int] = []

    class Streams(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(0.1)
            self.request.recv(100)
            total = 0
            try:
                while True:
                    self.request.sendall(b"x" * 65536)
                    total += 65536
            except TimeoutError:
                written.append(total)
                blocked.set()

    with (
        sockshock.serving("ThreadingTCPServer", Streams) as srv,
        clients.never_reads(
            srv.address, request=b"everything, please\n", rcvbuf=4096, duration=10
        ) as run,
    ):
        assert blocked.wait(2)  # the server's sendall timed out
    result = run.result()
    (conn,) = result.connections
    assert conn.received == 0
    assert conn.sent == len(b"everything, please\n")
    # What reached the client waits unread; the rest of what the server "wrote"
    # sat in its own send buffer.
    assert result.unread is not None
    assert 0 < result.unread <= written[0] + 65536
    assert result.unread_since is not None
    assert result.unread_since < result.elapsed


def test_never_reads_sees_the_server_close_without_reading() -> None:
    class AnswersAndCloses(ss.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    with sockshock.serving("ThreadingTCPServer", AnswersAndCloses) as srv:
        result = clients.never_reads(srv.address, request=b"ping\n", duration=2).result()
    assert result.unread == 5  # the reply, never read
    if hasattr(__import__("select"), "POLLRDHUP"):  # Linux
        assert result.outcomes == {"eof": 1}
        assert result.elapsed < 2


# -- half_close and drip_feed --------------------------------------------------------------


def test_half_close_gets_http_servers_whole_reply() -> None:
    with stdlib_http() as srv:
        result = clients.half_close(srv.address).result()
    assert result.reply.startswith(b"HTTP/1.0 200 ")
    assert result.reply.endswith(b"hello")
    assert result.outcomes == {"eof": 1}


def test_half_close_lets_a_read_to_end_handler_answer_on_a_unix_socket() -> None:
    with sockshock.serving("ThreadingUnixStreamServer", LineEcho) as srv:
        result = clients.half_close(Path(srv.address), request=b"one\ntwo\n").result()
    assert result.reply == b"one\ntwo\n"
    assert result.outcomes == {"eof": 1}


def test_drip_feed_breaks_a_handler_that_takes_one_recv_for_one_message() -> None:
    with (
        pytest.raises(ValueError, match="incomplete message"),
        sockshock.serving("ThreadingTCPServer", NaiveRecvEcho) as srv,
    ):
        result = clients.drip_feed(
            srv.address, payload=b"a whole line\n", chunk=3, pause=0.005
        ).result()
    assert result.outcomes == {"eof": 1}  # the handler failed and the server closed


@pytest.mark.parametrize("server_class", ["ThreadingTCPServer", "ThreadingUnixStreamServer"])
def test_drip_feed_through_a_correct_handler(server_class: str) -> None:
    with sockshock.serving(server_class, LineEcho) as srv:
        result = clients.drip_feed(
            srv.address, payload=b"one byte at a time\n", pause=0.001, until=b"\n"
        ).result()
    assert result.reply == b"one byte at a time\n"
    assert result.outcomes == {"open": 1}


def test_http_server_copes_with_a_dripped_request() -> None:
    with stdlib_http() as srv:
        result = clients.drip_feed(srv.address, chunk=4, pause=0.002).result()
    assert result.reply.startswith(b"HTTP/1.0 200 ")
    assert result.outcomes == {"eof": 1}


# -- connection_flood -------------------------------------------------------------------------


def test_a_flood_is_served_completely_by_a_threading_server() -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        result = clients.connection_flood(
            srv.address, count=100, concurrency=8, request=b"ping\n", until=b"\n"
        ).result()
    assert len(result.connections) == result.established == 100
    assert {c.reply for c in result.connections} == {b"ping\n"}
    assert result.refused == result.failed == 0
    assert result.errors == ()


@pytest.mark.parametrize("module", [stdlib_socketserver, ss], ids=["stdlib", "sockshock"])
def test_a_flood_overflows_the_stdlib_backlog_of_a_busy_synchronous_server(module: Any) -> None:
    entered, release = threading.Event(), threading.Event()

    class Held(module.BaseRequestHandler):  # type: ignore[misc]
        def handle(self) -> None:
            entered.set()
            release.wait(2)

    with sockshock.serving(module.TCPServer, Held, poll_interval=0.05) as srv:
        try:
            srv.connect()
            assert entered.wait(2)  # the server is busy: new connections queue up
            result = clients.connection_flood(
                srv.address, count=30, concurrency=30, timeout=0.2
            ).result()
        finally:
            release.set()
    if module is stdlib_socketserver:
        # request_queue_size = 5: the kernel lets 6 wait and drops the others' SYNs,
        # so their connect() times out (refused instead where the kernel is set to
        # tcp_abort_on_overflow).
        assert result.established <= 10
        assert result.failed + result.refused == 30 - result.established
    else:  # request_queue_size = 4096
        assert result.established == 30
        assert result.failed == 0


def test_a_flood_cut_short_by_its_duration_says_how_many_it_never_tried() -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        # no until=: each connection waits its whole timeout for the server to close
        result = clients.connection_flood(
            srv.address, count=50, concurrency=2, request=b"x\n", duration=0.3, timeout=0.2
        ).result()
        whole = clients.connection_flood(srv.address, count=4, request=b"x\n", until=b"\n").result()
    assert 0 < len(result.connections) < 50
    assert result.requested == 50
    assert result.not_attempted == 50 - len(result.connections)
    assert result.out_of_time
    assert not result.stopped
    assert whole.requested == len(whole.connections) == 4
    assert whole.not_attempted == 0
    assert not whole.out_of_time
    made = len(result.connections)
    assert str(result).startswith(
        f"connection_flood to {srv.address!r}: {made} of 50 connection(s) in "
    )
    assert (
        f", {50 - made} never attempted (out of time: its duration ran out); "
        f"outcomes: open={made}" in str(result)
    )
    assert "never attempted" not in str(whole)


def test_refused_and_failed_connections_are_counted() -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = clients.connection_flood(("127.0.0.1", port), count=3).result()
    assert refused.refused == 3
    assert refused.established == 0
    assert refused.errors == ("ECONNREFUSED: Connection refused",)
    missing = clients.connect_and_idle("/nonexistent/sockshock.sock").result()
    assert missing.failed == 1
    assert missing.errors[0].startswith("ENOENT")


# -- datagram_burst --------------------------------------------------------------------------


def test_a_unix_datagram_burst_is_all_answered_through_back_pressure() -> None:
    with sockshock.serving("UnixDatagramServer", DatagramEcho) as srv:
        result = clients.datagram_burst(srv.address, count=300, payload=b"dgram").result()
    assert result.datagrams == result.replies == 300
    assert result.failed == 0
    assert result.reply == b"dgram"
    assert result.received == 300 * 5


def test_a_udp_burst_loses_what_a_busy_server_has_no_room_for() -> None:
    release = threading.Event()

    class Gated(ss.DatagramRequestHandler):
        def handle(self) -> None:
            release.wait(2)
            self.wfile.write(self.rfile.read())

    class SmallBuffer(ss.UDPServer):
        def server_bind(self) -> None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            super().server_bind()

    with (
        sockshock.serving(SmallBuffer, Gated) as srv,
        clients.datagram_burst(srv.address, count=200, timeout=0.3) as run,
    ):
        try:
            assert run.wait_sent(2)  # all 200 sent while the server was busy
        finally:
            release.set()
        result = run.result()
    assert result.datagrams == 200
    assert result.failed == 0
    assert 1 <= result.replies < 50
    assert result.unanswered == 200 - result.replies


def test_a_udp_burst_to_nobody_sees_connection_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = clients.datagram_burst(("127.0.0.1", port), count=5, timeout=0.05).result()
    assert result.replies == 0
    assert "ECONNREFUSED: Connection refused" in result.errors


# -- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "match"),
    [
        (("10.1.2.3", 80), r"address=\('10\.1\.2\.3', 80\) is not a loopback address"),
        (("0.0.0.0", 80), r"is not a loopback address"),
        (("example.com", 80), r"names a host; only 'localhost' is resolved"),
        (("2001:db8::1", 80), r"is not a loopback address"),
        ("", r"address='': the Unix socket path is empty"),
        (
            ("127.0.0.1", 0),
            r"port=0 must be in \[1, 65535\] \(from address=\('127\.0\.0\.1', 0\), slowloris\(\)\)",
        ),
        (
            "127.0.0.1:80",
            r"address='127.0.0.1:80' looks like HOST:PORT, not a Unix socket path; for TCP pass "
            r"a \(host, port\) tuple: address=\('127.0.0.1', 80\) \(from slowloris\(\)\)",
        ),
        ("localhost:8080", r"pass a \(host, port\) tuple: address=\('localhost', 8080\)"),
        ("[::1]:80", r"address=\('::1', 80\)"),
        (
            "/tmp/a\0b.sock",
            r"address='/tmp/a\\x00b.sock': a Unix socket path cannot contain a NUL "
            r"byte \(from slowloris\(\)\)",
        ),
        (("127.0.0.1", 80, 0, 0), r"a 4-tuple \(host, port, flowinfo, scope_id\) is for IPv6"),
        (("::1", 80, -1, 0), r"flowinfo=-1 must be in \[0, 1048575\]"),
    ],
)
def test_only_loopback_and_unix_addresses_are_accepted(address: Any, match: str) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match=match):
        clients.slowloris(address)


@pytest.mark.parametrize(
    "address",
    [
        8080,
        ["127.0.0.1", 80],
        ("127.0.0.1",),
        b"/tmp/x.sock",
        ("::1", 80, "x", 0),
        ("::1", 80, 0, None),
    ],
)
def test_addresses_of_the_wrong_type_are_refused(address: Any) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match="address="):
        clients.half_close(address)
    with pytest.raises(sockshock.errors.InvalidArgument, match="address="):
        clients.drip_feed(address).result()


def test_a_relative_unix_path_is_still_a_path() -> None:
    for path in ("server.sock", "./127.0.0.1:80", "dir/host:80"):
        assert clients.connect_and_idle(path)._control.target.sockaddr == path  # not run


def test_the_refusal_says_what_is_allowed_and_where_the_address_came_from() -> None:
    with pytest.raises(sockshock.errors.InvalidArgument) as info:
        clients.connection_flood(("192.168.0.1", 8080))
    assert str(info.value) == (
        "address=('192.168.0.1', 8080) is not a loopback address: sockshock's clients only "
        "connect to loopback addresses (127.0.0.0/8, ::1, 'localhost' resolved to loopback "
        "only) and Unix socket paths (from connection_flood())"
    )


def test_localhost_is_resolved_to_loopback() -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        result = clients.half_close(("localhost", srv.address[1]), request=b"hi\n").result()
    assert result.address == ("127.0.0.1", srv.address[1])
    assert result.reply == b"hi\n"


def test_other_loopback_forms_are_accepted() -> None:
    for address in [("127.0.0.2", 1), ("::1", 1), ("::ffff:127.0.0.1", 1), ("LOCALHOST", 1)]:
        clients.connect_and_idle(address)  # checked, not run


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_servers_are_reached_at_their_four_tuple_address() -> None:
    class V6(ss.ThreadingTCPServer):
        address_family = socket.AF_INET6

    with sockshock.serving(V6, LineEcho) as srv:
        result = clients.half_close(srv.address, request=b"six\n").result()
    assert result.reply == b"six\n"


# -- bounds and argument checks ----------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda a: clients.connection_flood(a, count=10_001),
            sockshock.errors.InvalidArgument,
            r"count=10001 must be in \[1, 10000\] \(from connection_flood\(\)\)",
        ),
        (
            lambda a: clients.slowloris(a, interval=0),
            sockshock.errors.InvalidArgument,
            r"interval=0 must be in \[0\.001, 60\] \(from slowloris\(\)\)",
        ),
        (
            lambda a: clients.connect_and_idle(a, duration=0),
            sockshock.errors.InvalidArgument,
            r"duration=0 must be in \(0, 300\]",
        ),
        (
            lambda a: clients.half_close(a, timeout=float("inf")),
            sockshock.errors.InvalidArgument,
            r"timeout=inf must be a finite number",
        ),
        (
            lambda a: clients.datagram_burst(a, payload=b"x" * 70_000),
            sockshock.errors.InvalidArgument,
            r"len\(payload\)=70000 must be in \[0, 65507\]",
        ),
        (
            lambda a: clients.never_reads(a, request=b"x" * 1000, repeat=100_000),
            sockshock.errors.InvalidArgument,
            r"len\(request\) \* repeat=100000000 must be in \[0, ",
        ),
        (
            lambda a: clients.drip_feed(a, payload="text"),  # type: ignore[arg-type]
            sockshock.errors.InvalidArgument,
            r"expected bytes but got payload='text' \(type=str\)",
        ),
        (
            lambda a: clients.slowloris(a, count=True),
            sockshock.errors.InvalidArgument,
            r"expected int but got count=True",
        ),
        (
            lambda a: clients.connection_flood(a, until=b"\n"),
            sockshock.errors.InvalidArgument,
            r"until=b'\\n' needs a request=",
        ),
    ],
)
def test_bad_values_raise_one_clear_error(make: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make(("127.0.0.1", 9))


def test_every_option_has_a_limit_and_every_default_is_within_it() -> None:
    common = {"duration", "timeout", "max_reply"}
    for kind in _clients.KINDS:
        function = getattr(clients, kind)
        names = list(inspect.signature(function).parameters)
        assert names[0] == "address"
        assert set(names[1:]) == set(_clients.LIMITS[kind]) | common, kind
        assert _clients.ClientSpec(kind).to_mapping() == {"kind": kind}


# -- running: foreground, background, stopping, cleaning up -----------------------------------


def test_leaving_the_block_stops_the_client_at_once_and_leaves_nothing_behind() -> None:
    with (
        sockshock.audit(),
        sockshock.serving("ThreadingTCPServer", header_reader(threading.Event())) as srv,
    ):
        with clients.slowloris(srv.address, count=5, duration=60) as run:
            assert run.wait_connected(2)
            assert run.wait_sent(2)
            start = time.monotonic()
        assert time.monotonic() - start < 1.0
        assert not run.running
        result = run.result()
    assert result.stopped
    assert result.outcomes == {"open": 5}
    assert result.elapsed < 10


def test_the_block_raising_still_stops_joins_and_closes() -> None:
    with sockshock.audit(), sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        with (
            pytest.raises(KeyError, match="the test's own error"),
            clients.connect_and_idle(srv.address, count=3, duration=60) as run,
        ):
            assert run.wait_connected(2)
            raise KeyError("the test's own error")
        assert not run.running
    assert run.result().outcomes == {"open": 3}


def test_a_stopped_flood_stays_within_its_count() -> None:
    with (
        sockshock.serving("ThreadingTCPServer", LineEcho) as srv,
        clients.connection_flood(
            srv.address, count=10_000, concurrency=4, request=b"x\n", until=b"\n"
        ) as run,
    ):
        run.stop()
    result = run.result()
    assert result.stopped
    assert len(result.connections) < 10_000
    assert result.not_attempted == 10_000 - len(result.connections)
    assert not result.out_of_time  # stopped, not out of time


def test_a_run_runs_once() -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        run = clients.half_close(srv.address, request=b"once\n")
        assert "not started" in repr(run)
        result = run.result()
        assert run.result() is result  # the same result again, not a second run
        with pytest.raises(sockshock.errors.SockshockError, match="already started"):
            run.start()
    assert result.reply == b"once\n"


def test_a_client_that_is_never_started_does_nothing() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        clients.connection_flood(listener.getsockname(), count=5)  # neither run nor entered
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection is waiting


# -- the plain-data form ----------------------------------------------------------------------


def test_a_spec_from_a_scenario_names_its_source_in_errors() -> None:
    with pytest.raises(
        sockshock.errors.InvalidArgument,
        match=r"count=0 must be in \[1, 1000\] \(from scenarios/x.toml:12\)",
    ):
        _clients.ClientSpec.from_mapping(
            {"kind": "slowloris", "count": 0}, source="scenarios/x.toml:12"
        )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"kind": "slowlorris"}, r"kind='slowlorris' is not a client; did you mean 'slowloris'\?"),
        (
            {"kind": "slowloris", "intervall": 1},
            r"intervall=1 is not an option of slowloris; "
            r"did you mean 'interval'\?",
        ),
        ({"count": 5}, r"a client spec needs a 'kind'"),
        ({"kind": "datagram_burst", "payload": "x" * 70_000}, r"len\(payload\)=70000"),
    ],
)
def test_bad_specs_are_refused_with_their_source(data: dict[str, Any], match: str) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match=match + r".*\(from s.toml:3\)"):
        _clients.ClientSpec.from_mapping(data, source="s.toml:3")


def test_a_spec_takes_text_for_bytes_round_trips_and_runs() -> None:
    spec = _clients.ClientSpec.from_mapping(
        {"kind": "drip_feed", "payload": "hi\n", "chunk": 1, "pause": 0, "until": "\n"},
        source="scenarios/echo.toml:4",
    )
    assert spec == _clients.ClientSpec("drip_feed", payload=b"hi\n", chunk=1, pause=0, until=b"\n")
    assert _clients.ClientSpec.from_mapping(spec.to_mapping()) == spec
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        result = spec.run(srv.address).result()
    assert result.kind == "drip_feed"
    assert result.reply == b"hi\n"
    with pytest.raises(sockshock.errors.InvalidArgument, match=r"\(from scenarios/echo.toml:4\)"):
        spec.run(("8.8.8.8", 53))


def test_a_spec_is_not_a_mapping_of_anything() -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match="expected a mapping"):
        _clients.ClientSpec.from_mapping(["slowloris"])  # type: ignore[arg-type]


# -- the public module -----------------------------------------------------------------------


def test_the_public_module_reexports_each_name_once_and_only_there() -> None:
    assert len(set(clients.__all__)) == len(clients.__all__)
    others = [
        "sockshock",
        "sockshock.faults",
        "sockshock.layer",
        "sockshock.handlers",
        "sockshock.socketserver",
    ]
    elsewhere = {id(getattr(m, n)) for m in map(importlib.import_module, others) for n in m.__all__}
    for name in clients.__all__:
        obj = getattr(clients, name)
        if isinstance(obj, (type, type(clients.slowloris))):
            assert id(obj) not in elsewhere, name
    for kind in _clients.KINDS:
        assert f":func:`{kind}`" in (clients.__doc__ or ""), kind

"""The servers people already have, through the natural API -- no adapter subclass,
no monkeypatch, no private attribute: the standard library's http.server,
xmlrpc.server, wsgiref and logging.config.listen, and two packages built on
socketserver (werkzeug, dnslib), each under partial reads, resets, early end of
file, a slow client and an abrupt shutdown. Some of what the faults find are real
bugs of those servers; the tests say so."""

from __future__ import annotations

import contextlib
import http.server
import json
import logging.config
import socket
import struct
import subprocess
import sys
import urllib.request
import xmlrpc.client
import xmlrpc.server
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import sockshock
from sockshock import faults as F
from sockshock import socketserver as ss

SCRIPTS = Path(__file__).with_name("scripts")


def exchange(srv: Any, request: bytes) -> bytes:
    """Send a whole request, half-close, read the reply to end of file. A server that
    gives up on the request may close (or reset) the connection meanwhile: what
    came back until then is the reply."""
    reply = b""
    with srv.connect() as client, contextlib.suppress(ConnectionError):
        client.sendall(request)
        with contextlib.suppress(OSError):  # ENOTCONN: the server is gone already
            client.shutdown(socket.SHUT_WR)
        while chunk := client.recv(65536):
            reply += chunk
    return reply


# -- http.server --------------------------------------------------------------------


class Hello(http.server.BaseHTTPRequestHandler):
    """Answers "hello"; notes each path it served and each line it logged."""

    timeout = 5.0

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: Any) -> None:
        self.server.logged.append(format % args)


GET = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"


def http_server(**kwargs: Any) -> Any:
    return sockshock.serving(
        http.server.ThreadingHTTPServer, Hello, seed=1, paths=[], logged=[], **kwargs
    )


def test_http_server_under_partial_reads_and_writes() -> None:
    with http_server(faults=[F.PartialReads(1), F.PartialWrites(1)]) as srv:
        reply = exchange(srv, GET)
        assert reply.startswith(b"HTTP/1.0 200 OK\r\n")
        assert reply.endswith(b"\r\n\r\nhello")
        assert srv.server.paths == ["/hello"]


def test_http_server_answers_a_truncated_request_line_as_http09() -> None:
    # A real bug: the connection ends after 8 bytes, "GET /hel", and http.server
    # serves that fragment as a complete HTTP/0.9 request for "/hel".
    with http_server(faults=[F.EOFAfter(8)]) as srv:
        assert exchange(srv, GET) == b"hello"  # no status line: HTTP/0.9
        assert srv.server.paths == ["/hel"]


def test_http_server_under_a_reset() -> None:
    with http_server(faults=[F.ResetAfter(10)], expect_errors=ConnectionResetError) as srv:
        assert exchange(srv, GET) == b""
        (failure,) = srv.errors
        assert isinstance(failure.exception, ConnectionResetError)
    assert srv.server.paths == []


def test_http_server_times_out_a_slow_client_in_virtual_time() -> None:
    with http_server(faults=[F.SlowClient(pause=60)], clock="virtual") as srv:
        assert exchange(srv, GET) == b""
        assert srv.server.logged == ["Request timed out: TimeoutError('timed out')"]
        assert srv.layer.clock.now() == pytest.approx(5.0)


def abrupt_shutdown(srv: Any, request: bytes, first: int) -> bytes:
    """Send the first bytes, wait for the AbruptShutdown they trigger, send the rest:
    the in-flight request is answered, the server then refuses connections."""
    with srv.connect() as client:
        client.sendall(request[:first])
        assert srv.layer.shutdown_triggered.wait(5)
        client.sendall(request[first:])
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk
    assert srv.wait_stopped(5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(srv.address[:2], timeout=2).close()
    return reply


def test_http_server_stopped_abruptly_mid_request() -> None:
    with http_server(faults=[F.AbruptShutdown(after_bytes=5)]) as srv:
        assert abrupt_shutdown(srv, GET, 8).endswith(b"hello")


# -- xmlrpc.server -------------------------------------------------------------------


class Slow(xmlrpc.server.SimpleXMLRPCRequestHandler):
    timeout = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        self.server.logged.append(format % args)


def xmlrpc_server(handler: Any = xmlrpc.server.SimpleXMLRPCRequestHandler, **kwargs: Any) -> Any:
    return sockshock.serving(
        xmlrpc.server.SimpleXMLRPCServer,
        handler,
        seed=2,
        server_kwargs={"logRequests": False, "allow_none": True},
        **kwargs,
    )


def call(srv: Any, method: str, *args: Any) -> Any:
    host, port = srv.address
    with xmlrpc.client.ServerProxy(f"http://{host}:{port}/", allow_none=True) as proxy:
        srv.server.register_function(lambda text: text[::-1], "reverse")
        srv.server.register_function(lambda: None, "nothing")
        return getattr(proxy, method)(*args)


def test_xmlrpc_under_partial_reads_and_writes_with_constructor_arguments() -> None:
    with xmlrpc_server(faults=[F.PartialReads(2), F.PartialWrites(3)]) as srv:
        assert srv.server.logRequests is False
        assert call(srv, "reverse", "sockshock") == "kcohskcos"
        assert call(srv, "nothing") is None  # allow_none=True reached the constructor


def test_xmlrpc_without_a_handler_takes_its_constructors_default() -> None:
    """SimpleXMLRPCServer(addr, requestHandler=SimpleXMLRPCRequestHandler...): the
    class's own default handler, as the class itself would take it."""
    with sockshock.serving(
        xmlrpc.server.SimpleXMLRPCServer,
        faults=[F.PartialReads(2)],
        seed=1,
        server_kwargs={"logRequests": False},
    ) as srv:
        assert srv.server.RequestHandlerClass is xmlrpc.server.SimpleXMLRPCRequestHandler
        assert call(srv, "reverse", "abc") == "cba"

    class Pooled(ss.ThreadPoolMixIn, xmlrpc.server.SimpleXMLRPCServer):
        """A pass-through __init__ first in the MRO: the default is found past it."""

    with sockshock.serving(Pooled, server_kwargs={"logRequests": False}) as srv:
        assert call(srv, "reverse", "xyz") == "zyx"
    with (
        pytest.raises(
            sockshock.errors.InvalidArgument, match="whose constructor has no default one"
        ),
        sockshock.serving(http.server.HTTPServer),
    ):
        pass


def test_xmlrpc_under_early_end_of_file_answers_a_fault() -> None:
    with (
        xmlrpc_server(faults=[F.EOFAfter(200)]) as srv,
        pytest.raises(xmlrpc.client.Fault, match="ExpatError"),
    ):
        call(srv, "reverse", "x" * 1000)  # the body was cut: a parse error comes back


def test_xmlrpc_under_a_reset() -> None:
    with xmlrpc_server(faults=[F.ResetAfter(100)], expect_errors=ConnectionResetError) as srv:
        with pytest.raises((ConnectionError, xmlrpc.client.ProtocolError, OSError)):
            call(srv, "reverse", "x" * 1000)  # (http.client tries twice)
        assert {type(f.exception) for f in srv.errors} == {ConnectionResetError}


def test_xmlrpc_times_out_a_slow_client() -> None:
    with xmlrpc_server(
        Slow, faults=[F.SlowClient(chunk=10, pause=60)], clock="virtual", logged=[]
    ) as srv:
        with pytest.raises((ConnectionError, xmlrpc.client.ProtocolError, OSError)):
            call(srv, "reverse", "slow")
        assert "Request timed out: TimeoutError('timed out')" in srv.server.logged


def test_xmlrpc_stopped_abruptly_mid_request() -> None:
    with xmlrpc_server(faults=[F.AbruptShutdown(after_bytes=20)]) as srv:
        srv.server.register_function(lambda text: text[::-1], "reverse")
        body = xmlrpc.client.dumps(("abc",), "reverse").encode()
        request = (
            b"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        ) + body
        assert b"<string>cba</string>" in abrupt_shutdown(srv, request, 30)


# -- wsgiref -------------------------------------------------------------------------


class QuietWSGI(WSGIRequestHandler):
    timeout = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        pass


def count_body(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"got %d of %d bytes" % (len(body), length)]


POST = b"POST / HTTP/1.0\r\nContent-Length: 10240\r\n\r\n" + b"x" * 10240


def wsgi(**kwargs: Any) -> Any:
    return sockshock.serving(
        make_server("127.0.0.1", 0, count_body, handler_class=QuietWSGI), seed=3, **kwargs
    )


def test_wsgiref_ready_made_server_under_partial_reads() -> None:
    with wsgi(faults=[F.PartialReads(7)]) as srv:
        assert exchange(srv, POST).endswith(b"got 10240 of 10240 bytes")


def test_wsgiref_hands_the_app_a_truncated_body_and_answers_200() -> None:
    # A real bug class: the client went away after 250 bytes, the app is given the
    # 208 bytes of body that came and answers 200 as if the request were whole.
    with wsgi(faults=[F.EOFAfter(250)]) as srv:
        reply = exchange(srv, POST)
    assert reply.startswith(b"HTTP/1.0 200 OK")
    assert reply.endswith(b"got 208 of 10240 bytes")


def test_wsgiref_under_a_reset() -> None:
    with wsgi(faults=[F.ResetAfter(20)], expect_errors=ConnectionResetError) as srv:
        assert exchange(srv, POST) == b""
        assert [type(f.exception) for f in srv.errors] == [ConnectionResetError]


def test_wsgiref_times_out_a_slow_client() -> None:
    with wsgi(
        faults=[F.SlowClient(chunk=100, pause=60)], clock="virtual", expect_errors=TimeoutError
    ) as srv:
        assert exchange(srv, POST) == b""
        assert [type(f.exception) for f in srv.errors] == [TimeoutError]


def test_wsgiref_stopped_abruptly_mid_request() -> None:
    with wsgi(faults=[F.AbruptShutdown(after_bytes=10)]) as srv:
        assert abrupt_shutdown(srv, POST, 12).endswith(b"got 10240 of 10240 bytes")


# -- logging.config.listen: built and served by library code --------------------------


CONFIG = json.dumps(
    {"version": 1, "incremental": True, "loggers": {"sockshock.demo": {"level": "DEBUG"}}}
).encode()


def configure_through_listen(faults: list[Any]) -> tuple[int, Any]:
    """Send CONFIG to logging.config.listen() under ``faults``; the level it set."""
    logger = logging.getLogger("sockshock.demo")
    logger.setLevel(logging.WARNING)
    with sockshock.inject(faults, seed=4, shutdown_timeout=2) as servers:
        listener = logging.config.listen(0)
        listener.start()
        try:
            (server,) = servers.wait(1)
            with socket.create_connection(server.address[:2], timeout=5) as client:
                client.sendall(struct.pack(">L", len(CONFIG)) + CONFIG)
                assert client.recv(1) == b""  # the handler is done and closed
        finally:
            logging.config.stopListening()
            listener.join(5)
        assert not listener.is_alive()
    return logger.level, server


def test_logging_config_listen_ignores_a_config_whose_length_prefix_arrives_split() -> None:
    # A real bug: the handler does `chunk = conn.recv(4); if len(chunk) == 4: ...`, so
    # a length prefix that arrives in two reads makes it drop the config silently.
    level, server = configure_through_listen([F.PartialReads(3, first_ops=1)])
    assert level == logging.WARNING  # not applied
    assert len(server.plan.log) == 1


def test_logging_config_listen_under_partial_reads_after_the_prefix() -> None:
    level, server = configure_through_listen([F.PartialReads(3, after_bytes=4)])
    assert level == logging.DEBUG
    assert len(server.plan.log) >= len(CONFIG) // 3


def test_logging_config_listen_spins_forever_when_the_peer_closes_mid_config() -> None:
    # A real bug (CPython 3.10-3.13): `while len(chunk) < slen: chunk += conn.recv(...)`
    # never ends once recv() returns b"". The spinning thread is abandoned (a daemon
    # thread under sockshock), so this runs in a subprocess that must end on its own.
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "logging_listen.py"), "eof"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ShutdownTimeout: ConfigSocketReceiver server_close() gave up" in proc.stdout
    assert "logging/config.py" in proc.stdout
    assert "in handle" in proc.stdout


def test_logging_config_listen_shrugs_off_a_reset() -> None:
    # Its handler catches ECONNRESET on purpose: nothing raised, nothing stuck.
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "logging_listen.py"), "reset"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "no error\n"


# -- packages built on socketserver: werkzeug and dnslib ------------------------------


def werkzeug_server(**kwargs: Any) -> Any:
    from werkzeug.serving import WSGIRequestHandler as WerkzeugHandler
    from werkzeug.serving import make_server as werkzeug_make_server
    from werkzeug.wrappers import Request, Response

    class Quiet(WerkzeugHandler):
        def log(self, type: str, message: str, *args: Any) -> None:
            pass

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        return Response(f"got {len(request.get_data())} bytes")

    return sockshock.serving(
        werkzeug_make_server("127.0.0.1", 0, app, request_handler=Quiet), seed=5, **kwargs
    )


def post(srv: Any, body: bytes) -> bytes:
    host, port = srv.address
    request = urllib.request.Request(f"http://{host}:{port}/", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()  # type: ignore[no-any-return]


def test_werkzeug_under_partial_reads_and_writes() -> None:
    with werkzeug_server(faults=[F.PartialReads(3), F.PartialWrites(5)]) as srv:
        assert post(srv, b"x" * 1000) == b"got 1000 bytes"


def test_werkzeug_refuses_a_truncated_body() -> None:
    with werkzeug_server(faults=[F.EOFAfter(150)]) as srv:
        reply = exchange(
            srv, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
        )
        assert b" 400 BAD REQUEST" in reply.split(b"\r\n")[0]  # werkzeug gets this right


def test_werkzeug_under_a_reset_and_an_abrupt_shutdown() -> None:
    with werkzeug_server(faults=[F.ResetAfter(10)], expect_errors=ConnectionResetError) as srv:
        assert exchange(srv, b"POST / HTTP/1.1\r\nHost: t\r\n\r\n") == b""
    with werkzeug_server(faults=[F.AbruptShutdown(after_bytes=5)]) as srv:
        request = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
        assert abrupt_shutdown(srv, request, 8).endswith(b"got 3 bytes")


def test_werkzeug_times_out_a_slow_client() -> None:
    with werkzeug_server(faults=[F.SlowClient(pause=60)], clock="virtual") as srv:
        srv.server.RequestHandlerClass.timeout = 5.0
        assert exchange(srv, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n") == b""


def dns_resolver() -> Any:
    from dnslib import QTYPE, RR, A
    from dnslib.server import BaseResolver

    class Fixed(BaseResolver):  # type: ignore[misc]
        def resolve(self, request: Any, handler: Any) -> Any:
            reply = request.reply()
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("10.0.0.1"), ttl=60))
            return reply

    return Fixed()


def dns_logger() -> Any:
    from dnslib.server import DNSLogger

    return DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


def test_dnslib_udp_with_state_on_the_server_under_lost_and_duplicated_datagrams() -> None:
    from dnslib import DNSRecord
    from dnslib.server import DNSHandler, UDPServer

    # resolver= and logger= are what dnslib's handler reads as self.server.<name>.
    with (
        sockshock.serving(
            UDPServer,
            DNSHandler,
            resolver=dns_resolver(),
            logger=dns_logger(),
            seed=6,
            faults=[F.DuplicateDatagrams(copies=1), F.DropDatagrams(connections=0, first_ops=1)],
        ) as srv,
        srv.connect(timeout=0.2) as client,
    ):
        question = DNSRecord.question("example.test")
        client.send(question.pack())  # lost
        with pytest.raises(TimeoutError):
            client.recv(4096)
        client.send(question.pack())  # answered twice
        first, second = DNSRecord.parse(client.recv(4096)), DNSRecord.parse(client.recv(4096))
        assert str(first.rr[0].rdata) == "10.0.0.1"
        assert first.header.id == second.header.id == question.header.id


def test_dnslib_tcp_drops_a_query_whose_length_prefix_arrives_split() -> None:
    from dnslib import DNSRecord
    from dnslib.server import DNSServer

    # A real bug: dnslib's TCP handler assumes one recv() holds the 2-byte length
    # prefix; when the first read returns 1 byte it logs "Request Truncated" and
    # never answers. Ready-made: DNSServer builds its socketserver itself.
    dns = DNSServer(dns_resolver(), port=0, address="127.0.0.1", logger=dns_logger(), tcp=True)
    with sockshock.serving(dns.server, faults=[F.PartialReads(1, first_ops=1)], seed=7) as srv:
        question = DNSRecord.question("example.test").pack()
        assert exchange(srv, struct.pack("!H", len(question)) + question) == b""
    dns = DNSServer(dns_resolver(), port=0, address="127.0.0.1", logger=dns_logger(), tcp=True)
    # The prefix whole (the window opens after it), the rest in reads of 1-2 bytes.
    with sockshock.serving(dns.server, faults=[F.PartialReads(2, after_bytes=2)], seed=7) as srv:
        reply = exchange(srv, struct.pack("!H", len(question)) + question)
        assert str(DNSRecord.parse(reply[2:]).rr[0].rdata) == "10.0.0.1"


def test_dnslib_tcp_under_a_reset_and_an_abrupt_shutdown() -> None:
    from dnslib import DNSRecord
    from dnslib.server import DNSServer

    question = DNSRecord.question("example.test").pack()
    request = struct.pack("!H", len(question)) + question
    dns = DNSServer(dns_resolver(), port=0, address="127.0.0.1", logger=dns_logger(), tcp=True)
    with sockshock.serving(
        dns.server, faults=[F.ResetAfter(4)], seed=8, expect_errors=ConnectionResetError
    ) as srv:
        assert exchange(srv, request) == b""
    dns = DNSServer(dns_resolver(), port=0, address="127.0.0.1", logger=dns_logger(), tcp=True)
    with sockshock.serving(dns.server, faults=[F.AbruptShutdown(after_bytes=2)], seed=8) as srv:
        reply = abrupt_shutdown(srv, request, 3)
        assert str(DNSRecord.parse(reply[2:]).rr[0].rdata) == "10.0.0.1"


# -- any class, under every concurrency ----------------------------------------------


@pytest.mark.parametrize(
    "kind", sockshock.server_kinds(base=http.server.ThreadingHTTPServer), ids=lambda k: k.name
)
def test_a_stdlib_class_under_each_concurrency(kind: Any) -> None:
    with sockshock.serving(
        kind.server_class,
        Hello,
        seed=9,
        paths=[],
        logged=[],
        faults=[F.PartialReads(2), F.PartialWrites(3)],
    ) as srv:
        assert exchange(srv, GET).endswith(b"hello")
    assert srv.wait_stopped(0)

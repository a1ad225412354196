"""TLS through serving(): every stream server kind, faults beneath and above TLS, the
handshake off the serving loop, the stdlib's servers unchanged, and the certificate
failures a TLS server's tests must cover -- each ending in the right ssl error on
the right side, without a hang or a leak."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
import urllib.request
import xmlrpc.client
import xmlrpc.server
from typing import Any

import pytest

import sockshock
from sockshock import faults as F
from sockshock import socketserver as ss
from sockshock import tls as T
from sockshock.handlers import LineEcho
from tests._support import read_line

STREAM_KINDS = [k.name for k in sockshock.server_kinds("stream")]
FAULTS = {
    "none": [],
    "records split into 1-byte reads and writes": [F.PartialReads(1), F.PartialWrites(1)],
    "plaintext in 2-byte reads": [F.PartialReads(2, layer="plaintext")],
}


@pytest.mark.parametrize("faults", list(FAULTS), ids=list(FAULTS))
@pytest.mark.parametrize("server_class", STREAM_KINDS)
def test_every_stream_server_under_tls(server_class: str, faults: str) -> None:
    with (
        sockshock.serving(server_class, LineEcho, tls=True, faults=FAULTS[faults], seed=1) as srv,
        srv.connect(tls=True) as client,
    ):
        assert isinstance(client, ssl.SSLSocket)
        client.sendall(b"hello over tls\n")
        assert read_line(client) == b"hello over tls\n"
        assert client.version() in ("TLSv1.2", "TLSv1.3")
    if faults != "none":
        assert srv.plan.log, "the faults never fired"


class Report(ss.StreamRequestHandler):
    """Writes back what the handler sees of its TLS connection."""

    def handle(self) -> None:
        tls = self.request
        self.rfile.readline()
        self.wfile.write(
            f"{tls.version()} {tls.cipher()[0]} "
            f"{tls.selected_alpn_protocol()} {tls.getpeercert()}\n".encode()
        )


def test_the_handler_sees_what_sslsocket_offers() -> None:
    context = T.server_context(alpn_protocols=["h2", "echo/1"])
    client_context = T.client_context(alpn_protocols=["echo/1"])
    with (
        sockshock.serving("ThreadingTCPServer", Report, tls=context) as srv,
        srv.connect(tls=client_context) as client,
    ):
        client.sendall(b"who am i\n")
        version, cipher, alpn, peer = read_line(client).decode().split(" ", 3)
        assert version == client.version()
    assert cipher
    assert alpn == "echo/1"
    assert peer.strip() == "None"  # no client certificate asked for


def test_a_stalled_handshake_does_not_delay_other_clients() -> None:
    with sockshock.serving(
        "ThreadingTCPServer", LineEcho, tls=True, expect_errors=ssl.SSLEOFError
    ) as srv:
        stalled = srv.connect()  # TCP only: the server waits for its ClientHello
        served = threading.Event()

        def second() -> None:
            with srv.connect(tls=True) as client:
                client.sendall(b"served\n")
                assert read_line(client) == b"served\n"
            served.set()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(5)
        assert served.is_set(), "a stalled handshake held up the next client"
        stalled.close()


def test_a_stalled_handshake_under_a_fault_times_out_in_the_handler() -> None:
    class Timed(ss.StreamRequestHandler):
        timeout = 5.0

        def handle(self) -> None:
            self.rfile.readline()

    with sockshock.serving(
        "ThreadingTCPServer",
        Timed,
        tls=True,
        clock="virtual",
        seed=2,
        faults=[F.Stall(0)],
        expect_errors=TimeoutError,
    ) as srv:
        with srv.connect() as raw:
            context = srv.client_context()
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                context.wrap_socket(raw, server_hostname="localhost")  # the server stalls
            assert srv.wait_stopped(0) is False
        errors = [type(f.exception) for f in srv.errors]
    assert errors == [TimeoutError]


def test_a_reset_mid_record_reaches_the_handler_as_a_reset() -> None:
    seen: list[Any] = []

    class Reader(ss.BaseRequestHandler):
        def handle(self) -> None:
            try:
                while self.request.recv(100):
                    pass
            except OSError as exc:
                seen.append(exc)

    # The client's handshake and a first record move a few hundred bytes; the reset
    # comes in the middle of the second record.
    with (
        sockshock.serving(
            "ThreadingTCPServer", Reader, tls=True, seed=3, faults=[F.ResetAfter(600)]
        ) as srv,
        srv.connect(tls=True) as client,
        contextlib.suppress(OSError),
    ):
        client.sendall(b"x" * 100)
        client.sendall(b"y" * 1000)  # the server resets meanwhile: this may fail
        while client.recv(100):
            pass
    assert [type(e) for e in seen] == [ConnectionResetError]


def test_truncation_without_close_notify_as_sslsocket_shows_it() -> None:
    seen: list[Any] = []

    class Reader(ss.BaseRequestHandler):
        def handle(self) -> None:
            try:
                data = b""
                while chunk := self.request.recv(100):
                    data += chunk
                seen.append(data)
            except OSError as exc:
                seen.append(exc)

    # After the handshake (cut mid-stream): recv() reads b"" -- SSLSocket's default
    # suppress_ragged_eofs, as a real server sees it.
    with (
        sockshock.serving(
            "ThreadingTCPServer", Reader, tls=True, seed=4, faults=[F.EOFAfter(700)]
        ) as srv,
        srv.connect(tls=True) as client,
    ):
        client.sendall(b"z" * 2000)
    assert len(seen) == 1
    assert isinstance(seen[0], bytes)
    assert len(seen[0]) < 2000
    # During the handshake: SSLEOFError, as a server that wraps accepted sockets
    # sees it -- before its handler runs.
    with sockshock.serving(
        "ThreadingTCPServer",
        Reader,
        tls=True,
        seed=4,
        faults=[F.EOFAfter(10)],
        expect_errors=ssl.SSLError,
    ) as srv:
        with srv.connect() as raw, contextlib.suppress(OSError):
            srv.client_context().wrap_socket(raw, server_hostname="localhost").close()
        assert srv.wait_stopped(0) is False
    assert [type(f.exception) for f in srv.errors] == [ssl.SSLEOFError]
    assert len(seen) == 1  # the handler of the first server only


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.request.version().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_http_server_runs_unchanged_over_tls_with_faults() -> None:
    with sockshock.serving(
        http.server.ThreadingHTTPServer,
        Hello,
        tls=True,
        seed=5,
        faults=[F.PartialReads(3), F.PartialWrites(7)],
    ) as srv:
        host, port = srv.address
        with urllib.request.urlopen(
            f"https://localhost:{port}/", context=srv.client_context(), timeout=5
        ) as response:
            assert response.read().startswith(b"TLSv1.")
        assert host == "127.0.0.1"


def test_xmlrpc_server_runs_unchanged_over_tls() -> None:
    with sockshock.serving(
        xmlrpc.server.SimpleXMLRPCServer,
        xmlrpc.server.SimpleXMLRPCRequestHandler,
        tls=True,
        server_kwargs={"logRequests": False},
        faults=[F.PartialReads(5, layer="plaintext")],
        seed=6,
    ) as srv:
        srv.server.register_function(lambda text: text.upper(), "shout")
        _, port = srv.address
        with xmlrpc.client.ServerProxy(
            f"https://localhost:{port}/", context=srv.client_context()
        ) as proxy:
            assert proxy.shout("tls") == "TLS"


FAILURES = [case for case in T.TLS_CASES if case not in ("valid", "client-cert")]


def test_mutual_tls_gives_the_handler_the_client_certificate() -> None:
    server_context, client_context = T.contexts("client-cert")
    with (
        sockshock.serving("ThreadingTCPServer", Report, tls=server_context) as srv,
        srv.connect(tls=client_context) as client,
    ):
        client.sendall(b"who am i\n")
        peer = read_line(client).decode().split(" ", 3)[3]
    assert "subject" in peer


@pytest.mark.parametrize("case", FAILURES)
def test_certificate_failures_end_in_the_right_ssl_error_on_each_side(case: str) -> None:
    server_context, client_context = T.contexts(case)

    class Handshake(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.do_handshake()
            self.request.recv(10)

    with (
        sockshock.audit(),
        sockshock.serving(
            "ThreadingTCPServer",
            Handshake,
            tls=server_context,
            expect_errors=(ssl.SSLError, OSError),
        ) as srv,
    ):
        with (
            srv.connect() as raw,
            pytest.raises((ssl.SSLError, BrokenPipeError, ConnectionResetError)) as client_side,
            client_context.wrap_socket(raw, server_hostname="localhost") as client,
        ):
            # A rejected client certificate shows at the first read -- or, in TLS 1.3,
            # where the client's handshake ends before the server has judged its
            # certificate, as a broken pipe or a reset if the server's alert and close
            # overtake the write (ssl.SSLSocket servers do the same).
            client.sendall(b"x")
            client.recv(10)
        client_error = client_side.value
        assert srv.wait_stopped(0) is False
    server_errors = [f.exception for f in srv.errors]
    assert server_errors, f"{case}: the server saw no error"
    assert all(isinstance(e, ssl.SSLError) for e in server_errors), server_errors
    if case in ("wrong-hostname", "untrusted-ca", "expired", "not-yet-valid"):
        assert isinstance(client_error, ssl.SSLCertVerificationError)
    else:
        assert not isinstance(client_error, ssl.SSLCertVerificationError)


def test_the_same_plan_gives_the_same_plaintext_decisions() -> None:
    def run() -> list[Any]:
        with (
            sockshock.serving(
                "ThreadingTCPServer",
                LineEcho,
                tls=True,
                seed=7,
                faults=[
                    F.PartialReads(4, layer="plaintext"),
                    F.PartialWrites(3, layer="plaintext"),
                ],
            ) as srv,
            srv.connect(tls=True) as client,
        ):
            client.sendall(b"the same plan, the same decisions\n")
            assert read_line(client) == b"the same plan, the same decisions\n"
        return [(e.kind, e.offset, e.decision) for e in srv.plan.log]

    assert run() == run()


def test_tls_arguments_are_checked() -> None:
    with (
        pytest.raises(sockshock.errors.InvalidArgument, match="datagram server"),
        sockshock.serving("UDPServer", sockshock.handlers.DatagramEcho, tls=True),
    ):
        pass
    with (
        pytest.raises(sockshock.errors.InvalidArgument, match="act above TLS"),
        sockshock.serving("TCPServer", LineEcho, faults=[F.PartialReads(1, layer="plaintext")]),
    ):
        pass
    with (
        pytest.raises(sockshock.errors.InvalidArgument, match="tls='yes'"),
        sockshock.serving("TCPServer", LineEcho, tls="yes"),
    ):
        pass
    with (
        pytest.raises(sockshock.errors.InvalidArgument, match="client context"),
        sockshock.serving("TCPServer", LineEcho, tls=T.client_context()),
    ):
        pass


def test_a_handler_that_does_tls_itself_takes_a_client_context_of_your_own() -> None:
    """connect(tls=<a client SSLContext>) on a server sockshock runs no TLS on: the
    handler wraps the connection itself (STARTTLS-style code does)."""
    server_context, client_context = T.contexts("valid")

    class OwnTLS(ss.BaseRequestHandler):
        def handle(self) -> None:
            with server_context.wrap_socket(self.request, server_side=True) as tls:
                tls.sendall(tls.recv(100).upper())

    with (
        sockshock.serving("ThreadingTCPServer", OwnTLS) as srv,
        srv.connect(tls=client_context) as client,
    ):
        client.sendall(b"hello")
        assert client.recv(100) == b"HELLO"
        assert client.version() is not None

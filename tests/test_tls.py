"""TLSSocket (TLS over any wire socket) and the test certificates.

``ssl.SSLSocket`` is the oracle: most tests run the same scenario with
``SSLContext.wrap_socket()`` ("ssl") and with ``TLSSocket`` ("sockshock") and
assert the same outcome. Peers run in threads; every socket has a timeout,
every wait is bounded, and every thread is joined before the test ends.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import http.server
import select
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import xmlrpc.client
import xmlrpc.server
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sockshock
from sockshock import _wire
from sockshock import faults as F
from sockshock._tls import SERVER_HOSTNAME, TLS_CASES, TLSSocket, TLSUnavailable, _certs
from sockshock._util import InvalidArgument, SockshockError
from tests._support import run_python

WAIT = 30.0  # the bound on every wait; tests take milliseconds (a loaded machine: more)
IMPLEMENTATIONS = ("ssl", "sockshock")


@pytest.fixture
def wrap() -> Iterator[Callable[..., Any]]:
    """``wrap(impl, sock, context, server_side=...)``: a TLS socket of either
    implementation over ``sock``, handshake not done; closed at teardown."""
    made: list[Any] = []

    def make(
        impl: str, sock: Any, context: ssl.SSLContext, *, server_side: bool, **kwargs: Any
    ) -> Any:
        hostname = None if server_side else SERVER_HOSTNAME
        tls: Any
        if impl == "ssl":
            tls = context.wrap_socket(
                sock,
                server_side=server_side,
                server_hostname=hostname,
                do_handshake_on_connect=False,
                **kwargs,
            )
        else:
            tls = TLSSocket(
                sock, context, server_side=server_side, server_hostname=hostname, **kwargs
            )
        made.append(tls)
        return tls

    yield make
    for tls in made:
        tls.close()


class Background:
    """Run ``fn`` in a thread; :meth:`result` waits (bounded) and re-raises."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._outcome: list[Any] = []

        def target() -> None:
            try:
                self._outcome.append(("ok", fn()))
            except BaseException as error:
                self._outcome.append(("error", error))

        self.thread = threading.Thread(target=target, daemon=True, name="tls test peer")
        self.thread.start()

    def result(self) -> Any:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the peer thread did not finish"
        kind, value = self._outcome[0]
        if kind == "error":
            raise value
        return value

    def outcome(self) -> Any:
        """The result, or the exception the peer ended with."""
        try:
            return self.result()
        except Exception as error:
            return error


@contextlib.contextmanager
def peer(fn: Callable[[], Any]) -> Iterator[Background]:
    background = Background(fn)
    try:
        yield background
    finally:
        background.thread.join(WAIT)
        assert not background.thread.is_alive(), "the peer thread did not finish"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair of stream sockets with timeouts (server end, client end)."""
    a, b = socket.socketpair()
    for sock in (a, b):
        sock.settimeout(WAIT)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair (server end, client end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=WAIT)
        server, _ = listener.accept()
    server.settimeout(WAIT)
    try:
        yield server, client
    finally:
        server.close()
        client.close()


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return _certs.contexts()


def handshake_both(server: Any, client: Any) -> None:
    with peer(server.do_handshake) as done:
        client.do_handshake()
        done.result()


class OneByteReads:
    """A wire whose recv() gives one byte per call: every TLS record is split.

    (Its writes are whole: on a socket pair, a byte per send() fills the peer's
    buffer after a few hundred calls, since each byte costs a whole buffer.)
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.calls = 0
        self.threads: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def _note(self) -> None:
        self.calls += 1
        self.threads.add(threading.get_ident())

    def recv(self, size: int, *flags: int) -> bytes:
        self._note()
        return self.sock.recv(min(size, 1), *flags)

    def send(self, data: Any, *flags: int) -> int:
        self._note()
        return self.sock.send(data, *flags)


class RecordingWire(OneByteReads):
    """A pass-through wire that notes which threads used it."""

    def recv(self, size: int, *flags: int) -> bytes:
        self._note()
        return self.sock.recv(size, *flags)


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_impl", "client_impl"),
    [("sockshock", "sockshock"), ("sockshock", "ssl"), ("ssl", "sockshock")],
)
@pytest.mark.parametrize("size", [1, 16384 + 1, 1 << 20])
def test_round_trip(
    wrap: Any, pair: Any, contexts: Any, server_impl: str, client_impl: str, size: int
) -> None:
    server_ctx, client_ctx = contexts
    server = wrap(server_impl, pair[0], server_ctx, server_side=True)
    client = wrap(client_impl, pair[1], client_ctx, server_side=False)
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    def echo() -> int:
        received = 0
        while received < size:
            data = server.recv(65536)
            assert data
            received += len(data)
            server.sendall(data)
        return received

    with peer(echo) as done:
        echoed = bytearray()
        for start in range(0, size, 65536):  # one thread: SSLSocket wants no more
            chunk = payload[start : start + 65536]
            client.sendall(chunk)
            end = len(echoed) + len(chunk)
            while len(echoed) < end:
                echoed += client.recv(65536)
        assert done.result() == size
    assert echoed == payload
    for sock in (server, client):
        assert sock.version() == "TLSv1.3"
        assert sock.cipher() is not None
        assert sock.pending() == 0
    assert client.getpeercert()["subjectAltName"] == (
        ("DNS", "localhost"),
        ("IP Address", "127.0.0.1"),
        ("IP Address", "0:0:0:0:0:0:0:1"),
    )
    assert server.getpeercert() is None  # no client certificate asked for
    assert isinstance(client.getpeercert(binary_form=True), bytes)


def test_attributes_before_and_after_the_handshake(pair: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts
    server_ctx = _certs.server_context(alpn_protocols=["h2", "http/1.1"])
    client_ctx = _certs.client_context(alpn_protocols=["http/1.1"])
    server = TLSSocket(pair[0], server_ctx, server_side=True)
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    assert (server.version(), server.cipher(), server.selected_alpn_protocol()) == (
        None,
        None,
        None,
    )
    with pytest.raises(ValueError, match="handshake not done yet"):
        client.getpeercert()
    assert (server.server_side, client.server_side) == (True, False)
    assert (server.server_hostname, client.server_hostname) == (None, SERVER_HOSTNAME)
    assert server.context is server_ctx
    assert (server.family, server.type, server.proto) == (
        pair[0].family,
        pair[0].type,
        pair[0].proto,
    )
    assert server.fileno() == pair[0].fileno()
    assert server.getsockname() == pair[0].getsockname()
    assert server.getpeername() == pair[0].getpeername()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    assert server.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    server.settimeout(1.5)
    assert (server.gettimeout(), pair[0].gettimeout(), server.getblocking()) == (1.5, 1.5, True)
    handshake_both(server, client)
    assert server.selected_alpn_protocol() == client.selected_alpn_protocol() == "http/1.1"
    assert isinstance(client.get_channel_binding(), bytes)
    assert "TLSSocket server version=TLSv1.3" in repr(server)


def test_versions_by_name_and_a_tuple_of_alpn_protocols(pair: Any) -> None:
    server_ctx = _certs.server_context(maximum_version="TLSv1.2", alpn_protocols=("h2",))
    client_ctx = _certs.client_context(minimum_version="TLSv1_2", alpn_protocols=["h2"])
    assert server_ctx.maximum_version is ssl.TLSVersion.TLSv1_2
    assert client_ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    server = TLSSocket(pair[0], server_ctx, server_side=True)
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    handshake_both(server, client)
    assert (server.version(), client.selected_alpn_protocol()) == ("TLSv1.2", "h2")


@pytest.mark.parametrize(
    "make", [_certs.client_context, _certs.server_context], ids=["client_context", "server_context"]
)
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"minimum_version": "TLSv9"},
            sockshock.errors.InvalidArgument,
            "minimum_version='TLSv9' is not a TLS version; give an ssl.TLSVersion or one of "
            "'MINIMUM_SUPPORTED', ",
        ),
        (
            {"maximum_version": 772},
            sockshock.errors.InvalidArgument,
            "expected an ssl.TLSVersion (or its name, such as 'TLSv1_3') but got maximum_version=772 "
            "(type=int)",
        ),
        (
            {"minimum_version": "TLSv1.3", "maximum_version": ssl.TLSVersion.TLSv1_2},
            sockshock.errors.InvalidArgument,
            "minimum_version=TLSv1_3 is above maximum_version=TLSv1_2: no TLS version is left",
        ),
        (
            {"alpn_protocols": "h2"},
            sockshock.errors.InvalidArgument,
            "expected a list of protocol names such as ['h2', 'http/1.1'] but got "
            "alpn_protocols='h2' (type=str); for this one alone, ['h2']",
        ),
        (
            {"alpn_protocols": [1]},
            sockshock.errors.InvalidArgument,
            "expected protocol names (str) in alpn_protocols but got 1 (type=int)",
        ),
        (
            {"alpn_protocols": ["x" * 256]},
            sockshock.errors.InvalidArgument,
            "a protocol name is 1 to 255 bytes",
        ),
    ],
)
def test_context_arguments_get_one_clear_error(
    make: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        make(**kwargs)
    assert message in str(raised.value)
    assert str(raised.value).endswith(f"(from {make.__name__}())")


def test_constructor_refuses_what_sslsocket_refuses(pair: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts
    with pytest.raises(ValueError, match="check_hostname requires server_hostname"):
        TLSSocket(pair[1], client_ctx, server_side=False)
    with pytest.raises(ValueError, match="only be specified in client mode"):
        TLSSocket(pair[0], server_ctx, server_side=True, server_hostname="localhost")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram,
        pytest.raises(NotImplementedError, match="only stream sockets"),
    ):
        TLSSocket(datagram, server_ctx, server_side=True)


# -- what handlers use -------------------------------------------------------------


class LineEcho(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)
            self.wfile.flush()


@pytest.mark.parametrize("wbufsize", [0, -1])
def test_stream_request_handler_over_tls(pair: Any, contexts: Any, wbufsize: int) -> None:
    server_ctx, client_ctx = contexts
    request = TLSSocket(pair[0], server_ctx, server_side=True)
    client = client_ctx.wrap_socket(
        pair[1].dup(), server_hostname=SERVER_HOSTNAME, do_handshake_on_connect=False
    )

    class Handler(LineEcho):
        timeout = WAIT

    Handler.wbufsize = wbufsize

    def serve() -> None:
        # TCPServer's own request cycle: handler, then shutdown(SHUT_WR) and close().
        with socketserver.TCPServer(("127.0.0.1", 0), Handler, bind_and_activate=False) as server:
            server.finish_request(request, "peer")  # type: ignore[arg-type]
            server.shutdown_request(request)  # type: ignore[arg-type]

    with client, peer(serve) as done:
        reader = client.makefile("rb")
        for line in (b"hello\n", b"a longer line " * 1000 + b"\n", b"\n"):
            client.sendall(line)
            assert reader.readline() == line
        reader.close()
        pair[1].shutdown(socket.SHUT_WR)  # the client is done (a FIN, as most clients)
        done.result()  # the handler's rfile ended
    assert request.fileno() == -1  # the handler's files closed, then close(): wire closed


def test_close_waits_for_makefile_objects(pair: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts
    server = TLSSocket(pair[0], server_ctx, server_side=True)
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    handshake_both(server, client)
    reader = server.makefile("rb")
    writer = server.makefile("wb", buffering=0)
    server.close()
    assert server.fileno() == pair[0].fileno() != -1  # the files keep it open
    client.sendall(b"still open\n")
    assert reader.readline() == b"still open\n"
    writer.write(b"back\n")
    assert client.recv(100) == b"back\n"
    reader.close()
    assert pair[0].fileno() != -1
    writer.close()
    assert pair[0].fileno() == -1


def test_http_server_over_tls(contexts: Any) -> None:
    server_ctx, client_ctx = contexts

    class Hello(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = f"hello {self.path} over {self.connection.version()}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(WAIT)

        def serve() -> None:
            conn, address = listener.accept()
            conn.settimeout(WAIT)
            request = TLSSocket(conn, server_ctx, server_side=True)
            with socketserver.TCPServer(("127.0.0.1", 0), Hello, bind_and_activate=False) as server:
                server.finish_request(request, address)  # type: ignore[arg-type]
                server.shutdown_request(request)  # type: ignore[arg-type]

        with peer(serve) as done:
            connection = http.client.HTTPSConnection(
                SERVER_HOSTNAME, listener.getsockname()[1], timeout=WAIT, context=client_ctx
            )
            try:
                for path in ("/a", "/b"):  # keep-alive: two requests, one connection
                    connection.request("GET", path)
                    response = connection.getresponse()
                    assert response.status == 200
                    assert response.read() == f"hello {path} over TLSv1.3".encode()
            finally:
                connection.close()
            done.result()


def test_xmlrpc_server_over_tls(contexts: Any) -> None:
    server_ctx, client_ctx = contexts
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(WAIT)

        def serve() -> None:
            with xmlrpc.server.SimpleXMLRPCServer(
                ("127.0.0.1", 0), logRequests=False, bind_and_activate=False
            ) as server:
                server.register_function(lambda a, b: a + b, "add")
                conn, address = listener.accept()
                conn.settimeout(WAIT)
                request = TLSSocket(conn, server_ctx, server_side=True)
                server.finish_request(request, address)  # type: ignore[arg-type]
                server.shutdown_request(request)  # type: ignore[arg-type]

        with peer(serve) as done:
            url = f"https://{SERVER_HOSTNAME}:{listener.getsockname()[1]}/RPC2"
            with xmlrpc.client.ServerProxy(url, context=client_ctx) as proxy:
                assert proxy.add(2, 3) == 5
            done.result()


def test_handshake_runs_in_the_thread_that_first_uses_the_socket(pair: Any) -> None:
    sni_threads: list[int] = []
    server_ctx = _certs.server_context()
    server_ctx.sni_callback = lambda *args: sni_threads.append(threading.get_ident())
    client_ctx = _certs.client_context()
    wire = RecordingWire(pair[0])
    server = TLSSocket(wire, server_ctx, server_side=True)  # as a serving loop would
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    assert wire.calls == 0  # no I/O, no handshake on construction

    def handler() -> int:
        data = server.recv(100)  # the first use: the handshake happens here
        server.sendall(data)
        return threading.get_ident()

    with peer(handler) as done:
        client.sendall(b"ping")
        assert client.recv(100) == b"ping"
        handler_thread = done.result()
    assert handler_thread != threading.get_ident()
    assert sni_threads == [handler_thread]
    assert wire.threads == {handler_thread}
    assert wire.calls >= 4  # ClientHello in, server flight out, Finished in, data


def test_one_byte_wire_reads(pair: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts
    server_wire, client_wire = OneByteReads(pair[0]), OneByteReads(pair[1])
    server = TLSSocket(server_wire, server_ctx, server_side=True)
    client = TLSSocket(client_wire, client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    messages = [b"a", bytes(range(256)) * 6, b"c" * 3000]  # one record each
    total = sum(map(len, messages))

    def echo() -> None:
        received = 0
        while received < total:
            data = server.recv(65536)
            received += len(data)
            server.sendall(data)

    with peer(echo) as done:
        for message in messages:
            client.sendall(message)
        echoed = b""
        while len(echoed) < total:
            echoed += client.recv(65536)
        done.result()
    assert echoed == b"".join(messages)
    assert server_wire.calls > total  # really one byte per recv, handshake included
    assert client_wire.calls > total


def test_over_a_faulty_socket() -> None:
    """sockshock's own fault layer as the wire: partial reads and writes under TLS."""
    server_ctx, client_ctx = _certs.contexts()
    plan = F.FaultPlan(F.PartialReads(max_chunk=3), F.PartialWrites(max_chunk=2), seed=7)
    with sockshock.layer.FaultLayer(plan) as layer, layer.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname(), timeout=WAIT) as raw_client:
            conn, _ = listener.accept()
            assert isinstance(conn, _wire.FaultySocket)
            conn.settimeout(WAIT)
            with TLSSocket(conn, server_ctx, server_side=True) as server:
                client = client_ctx.wrap_socket(
                    raw_client.dup(), server_hostname=SERVER_HOSTNAME, do_handshake_on_connect=False
                )

                def echo() -> None:
                    with server.makefile("rb") as reader:
                        server.sendall(reader.readline())

                with client, peer(echo) as done, client.makefile("rb") as reader:
                    client.sendall(b"through the faults " * 100 + b"\n")
                    reply = reader.readline()
                    done.result()
    assert reply == b"through the faults " * 100 + b"\n"
    assert "PartialReads" in plan.describe()
    assert "PartialWrites" in plan.describe()


def test_full_duplex_from_two_threads(pair: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts
    server = TLSSocket(pair[0], server_ctx, server_side=True)
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    lines = [b"line %d " % i + b"x" * (i * 37 % 3000) + b"\n" for i in range(300)]

    def echo() -> None:
        with server.makefile("rb") as reader:
            for line in reader:
                server.sendall(line)
        server.unwrap()  # answer the client's close_notify

    def write_all() -> None:
        for line in lines:  # the handshake may happen here or in the reader below
            client.sendall(line)

    with peer(echo) as echoed, peer(write_all) as written:
        with client.makefile("rb") as reader:
            received = [reader.readline() for _ in lines]
        written.result()
        client.unwrap()
        echoed.result()
    assert received == lines


class Limits:
    """A plaintext hook: reads of at most 3 bytes, writes of at most 2."""

    def __init__(self) -> None:
        self.reads: list[int] = []
        self.writes: list[int] = []
        self.eof = False

    def before_read(self, size: int) -> int | None:
        self.reads.append(size)
        return 0 if self.eof else 3

    def before_write(self, size: int) -> int | None:
        self.writes.append(size)
        return 2


def test_plaintext_hook(pair: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts
    hook = Limits()
    server = TLSSocket(pair[0], server_ctx, server_side=True, plaintext_hook=hook)
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    with peer(lambda: client.sendall(b"hello world")) as done:
        assert server.recv(100) == b"hel"
        done.result()
    assert server.recv(100) == b"lo "
    assert server.send(b"abcdef") == 2
    server.sendall(b"ghij")  # short writes, all delivered
    received = b""
    while len(received) < 6:
        received += client.recv(100)
    assert received == b"abghij"
    hook.eof = True
    assert server.recv(100) == b""  # end of file above TLS
    assert hook.reads == [100, 100, 100]
    assert hook.writes == [6, 4, 2]


def test_plaintext_hook_exceptions_reach_the_caller(pair: Any, contexts: Any) -> None:
    class Reset:
        def before_read(self, size: int) -> int | None:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

        def before_write(self, size: int) -> int | None:
            return None

    server = TLSSocket(pair[0], contexts[0], server_side=True, plaintext_hook=Reset())
    with pytest.raises(ConnectionResetError):
        server.recv(10)


# -- how connections end: SSLSocket is the oracle -------------------------------------


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("where", ["between records", "mid-record"])
def test_truncation_without_close_notify(
    wrap: Any, pair: Any, contexts: Any, impl: str, where: str
) -> None:
    server_ctx, client_ctx = contexts
    raw = pair[1].dup()  # SSLSocket takes its socket's descriptor over
    reader = wrap(impl, pair[0], server_ctx, server_side=True)
    writer = wrap(impl, pair[1], client_ctx, server_side=False)
    with raw:
        handshake_both(reader, writer)
        writer.sendall(b"complete")
        if where == "mid-record":  # a record whose second half never comes
            raw.sendall(struct.pack("!BHH", 23, 0x0303, 100) + b"\x00" * 50)
        raw.shutdown(socket.SHUT_WR)  # FIN, no close_notify
    assert reader.recv(100) == b"complete"
    assert reader.recv(100) == b""  # suppress_ragged_eofs=True, SSLSocket's default
    assert reader.recv(100) == b""
    reader.suppress_ragged_eofs = False
    with pytest.raises(ssl.SSLEOFError):
        reader.recv(100)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_truncated_handshake(wrap: Any, pair: Any, contexts: Any, impl: str) -> None:
    server = wrap(impl, pair[0], contexts[0], server_side=True)
    pair[1].sendall(struct.pack("!BHH", 22, 0x0301, 200) + b"\x01" * 10)  # part of a hello
    pair[1].shutdown(socket.SHUT_WR)
    with pytest.raises(ssl.SSLEOFError):
        server.do_handshake()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_close_notify_and_unwrap(wrap: Any, pair: Any, contexts: Any, impl: str) -> None:
    server_ctx, client_ctx = contexts
    server = wrap(impl, pair[0], server_ctx, server_side=True)
    client = wrap(impl, pair[1], client_ctx, server_side=False)
    handshake_both(server, client)

    def close_then_plaintext() -> bytes:
        plain = client.unwrap()  # waits for the server's close_notify
        plain.sendall(b"after TLS")  # STARTTLS in reverse: plaintext follows
        return plain.recv(100)  # type: ignore[no-any-return]

    with peer(close_then_plaintext) as done:
        assert server.recv(100) == b""  # the peer's close_notify
        assert server.recv(100) == b""
        assert server.read(100) == b""
        plain = server.unwrap()  # our close_notify: the peer's unwrap() returns
        assert plain.recv(100) == b"after TLS"  # nothing beyond close_notify was taken
        plain.sendall(b"plain reply")
        assert done.result() == b"plain reply"
    with pytest.raises(ValueError, match="No SSL wrapper"):
        server.unwrap()
    with pytest.raises(ValueError, match="Read on closed or unwrapped SSL socket"):
        server.read(10)


@pytest.mark.parametrize("peer_does", ["a bare FIN", "more data"])
def test_unwrap_meets_a_peer_that_does_not_close_notify(
    wrap: Any, contexts: Any, peer_does: str
) -> None:
    server_ctx, client_ctx = contexts
    outcomes = []
    for impl in IMPLEMENTATIONS:
        a, b = socket.socketpair()
        with a, b, b.dup() as raw:
            for sock in (a, b, raw):
                sock.settimeout(WAIT)
            server = wrap(impl, a, server_ctx, server_side=True)
            client = wrap("ssl", b, client_ctx, server_side=False)
            handshake_both(server, client)
            if peer_does == "a bare FIN":
                raw.shutdown(socket.SHUT_WR)
            else:
                client.sendall(b"more data")
            with pytest.raises(ssl.SSLError) as caught:
                server.unwrap()
            outcomes.append((type(caught.value), caught.value.reason))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] is (ssl.SSLEOFError if peer_does == "a bare FIN" else ssl.SSLError)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_zero_return_after_an_unwrap_that_timed_out(
    wrap: Any, pair: Any, contexts: Any, impl: str
) -> None:
    server_ctx, client_ctx = contexts
    server = wrap(impl, pair[0], server_ctx, server_side=True)
    client = wrap(impl, pair[1], client_ctx, server_side=False)
    handshake_both(server, client)
    server.settimeout(0.1)
    with pytest.raises(TimeoutError, match=r"^The read operation timed out$"):
        server.unwrap()  # close_notify sent, the peer's does not come in time
    assert client.recv(100) == b""  # it was sent
    client.sendall(b"late")
    assert server.recv(100) == b"late"
    client.unwrap()
    with pytest.raises(ssl.SSLZeroReturnError):
        server.recv(100)  # both close_notify done: SSLSocket raises here


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_reset_mid_record(wrap: Any, tcp_pair: Any, contexts: Any, impl: str) -> None:
    server_ctx, client_ctx = contexts
    raw = tcp_pair[1].dup()
    reader = wrap(impl, tcp_pair[0], server_ctx, server_side=True)
    writer = wrap(impl, tcp_pair[1], client_ctx, server_side=False)
    with raw:
        handshake_both(reader, writer)
        raw.sendall(struct.pack("!BHH", 23, 0x0303, 1000) + b"\x00" * 500)  # half a record
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
    # The last descriptor closed with SO_LINGER 0: an RST.
    try:
        outcome = reader.recv(100)
    except ConnectionResetError as error:
        outcome = error.errno
    if impl == "ssl" and sys.version_info < (3, 13):
        # CPython 3.10-3.12 lose the errno and report a ragged EOF (gh-115627):
        # b"" with suppress_ragged_eofs. TLSSocket passes the reset through.
        assert outcome in (b"", errno.ECONNRESET)
    else:
        assert outcome == errno.ECONNRESET


def test_end_of_file_without_close_notify_alerts_the_peer(wrap: Any, contexts: Any) -> None:
    """The reader that meets a bare FIN sends the alert OpenSSL queues (OpenSSL 3:
    decode_error) -- TLSSocket as SSLSocket."""
    server_ctx, client_ctx = contexts
    outcomes = []
    for impl in IMPLEMENTATIONS:
        a, b = socket.socketpair()
        with a, b, b.dup() as raw:
            for sock in (a, b, raw):
                sock.settimeout(WAIT)
            reader = wrap(impl, a, server_ctx, server_side=True)
            writer = wrap("ssl", b, client_ctx, server_side=False)
            handshake_both(reader, writer)
            raw.shutdown(socket.SHUT_WR)
            assert reader.recv(10) == b""
            try:
                outcomes.append(writer.recv(10))
            except ssl.SSLError as error:
                outcomes.append((type(error), error.reason))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_plaintext_to_a_tls_server(wrap: Any, pair: Any, contexts: Any, impl: str) -> None:
    server = wrap(impl, pair[0], contexts[0], server_side=True)
    pair[1].sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with pytest.raises(ssl.SSLError) as caught:
        server.recv(100)
    assert caught.value.reason == "HTTP_REQUEST"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_shutdown_and_close_send_no_close_notify(
    wrap: Any, pair: Any, contexts: Any, impl: str
) -> None:
    server_ctx, client_ctx = contexts
    server = wrap(impl, pair[0], server_ctx, server_side=True)
    client = wrap(impl, pair[1], client_ctx, server_side=False, suppress_ragged_eofs=False)
    handshake_both(server, client)
    server.sendall(b"bye")
    server.shutdown(socket.SHUT_WR)
    assert client.recv(100) == b"bye"
    with pytest.raises(ssl.SSLEOFError):
        client.recv(100)  # a plain FIN: ragged
    server.close()
    assert server.fileno() == -1
    with pytest.raises(OSError, match="Bad file descriptor") as caught:
        server.recv(10)
    assert caught.value.errno == errno.EBADF


# -- timeouts and non-blocking mode ----------------------------------------------------


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("how", ["do_handshake", "recv"])
def test_stalled_handshake_times_out(
    wrap: Any, pair: Any, contexts: Any, impl: str, how: str
) -> None:
    server = wrap(impl, pair[0], contexts[0], server_side=True)
    server.settimeout(0.1)
    start = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        server.do_handshake() if how == "do_handshake" else server.recv(10)
    assert 0.09 < time.monotonic() - start < 2
    operation = "handshake" if how == "do_handshake" else "read"
    assert str(caught.value).endswith(f"The {operation} operation timed out")
    # (SSLSocket prefixes the handshake's message with "_ssl.c:<line>: ".)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_timeout_bounds_the_whole_read(wrap: Any, pair: Any, contexts: Any, impl: str) -> None:
    """A record trickling in, a byte per 20 ms: SSLSocket's timeout bounds the
    whole recv(), not each wait for a byte."""
    server_ctx, client_ctx = contexts
    raw = pair[1].dup()
    reader = wrap(impl, pair[0], server_ctx, server_side=True)
    writer = wrap(impl, pair[1], client_ctx, server_side=False)
    handshake_both(reader, writer)
    stop = threading.Event()

    def trickle() -> None:
        with raw:
            for byte in struct.pack("!BHH", 23, 0x0303, 200) + b"\x00" * 200:
                if stop.wait(0.02):
                    return
                raw.sendall(bytes([byte]))

    reader.settimeout(0.25)
    with peer(trickle):
        start = time.monotonic()
        try:
            with pytest.raises(TimeoutError, match=r"^The read operation timed out$"):
                reader.recv(100)
            elapsed = time.monotonic() - start
        finally:
            stop.set()
    assert 0.24 < elapsed < 0.5
    assert reader.gettimeout() == 0.25  # the shortened wire timeout was put back


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_write_timeout(wrap: Any, pair: Any, contexts: Any, impl: str) -> None:
    server_ctx, client_ctx = contexts
    server = wrap(impl, pair[0], server_ctx, server_side=True)
    client = wrap(impl, pair[1], client_ctx, server_side=False)
    handshake_both(server, client)
    server.settimeout(0.1)
    with pytest.raises(TimeoutError, match=r"^The write operation timed out$"):
        server.sendall(b"x" * 10_000_000)  # nobody reads


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_non_blocking(wrap: Any, pair: Any, contexts: Any, impl: str) -> None:
    server_ctx, client_ctx = contexts
    server = wrap(impl, pair[0], server_ctx, server_side=True)
    client = wrap(impl, pair[1], client_ctx, server_side=False)
    server.setblocking(False)
    assert server.getblocking() is False
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()  # no ClientHello yet
    with peer(client.do_handshake) as done:
        server.do_handshake(block=True)
        done.result()
    assert server.gettimeout() == 0.0
    with pytest.raises(ssl.SSLWantReadError):
        server.recv(10)
    client.sendall(b"now")
    assert select.select([server], [], [], WAIT)[0] == [server]
    assert server.recv(10) == b"now"


def test_non_blocking_write_is_retried_like_openssl(pair: Any, contexts: Any) -> None:
    """A write whose records the wire cannot take raises SSLWantWriteError; the
    retry with the same data sends them and returns the count, nothing doubled."""
    server_ctx, client_ctx = contexts
    server = TLSSocket(pair[0], server_ctx, server_side=True)
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    handshake_both(server, client)
    server.setblocking(False)
    chunk = b"y" * 65536
    sent = 0
    with pytest.raises(ssl.SSLWantWriteError):
        for _ in range(1000):  # until the socket buffer is full
            sent += server.send(chunk)
    received = 0

    def drain() -> int:
        total = 0
        while total < sent + len(chunk):
            total += len(client.recv(65536))
        return total

    with peer(drain) as done:
        while True:
            assert select.select([], [server], [], WAIT)[1] == [server]
            with contextlib.suppress(ssl.SSLWantWriteError):
                assert server.send(chunk) == len(chunk)  # the retry
                break
        received = done.result()
    assert received == sent + len(chunk)


# -- certificate failures: who sees what --------------------------------------------------

# case: (client sees, server sees), each (where, exception, reason). With TLS 1.3
# the client's handshake is over before the server checks its certificate, so a
# rejected client certificate reaches the client at its first read.
VERIFY, ERROR = ssl.SSLCertVerificationError, ssl.SSLError
FAILURES: dict[str, tuple[tuple[str, type[Exception], str], tuple[str, type[Exception], str]]] = {
    "wrong-hostname": (
        ("handshake", VERIFY, "Hostname mismatch"),
        ("handshake", ERROR, "SSLV3_ALERT_BAD_CERTIFICATE"),
    ),
    "untrusted-ca": (
        ("handshake", VERIFY, "unable to get local issuer certificate"),
        ("handshake", ERROR, "TLSV1_ALERT_UNKNOWN_CA"),
    ),
    "expired": (
        ("handshake", VERIFY, "certificate has expired"),
        ("handshake", ERROR, "SSLV3_ALERT_CERTIFICATE_EXPIRED"),
    ),
    "not-yet-valid": (
        ("handshake", VERIFY, "certificate is not yet valid"),
        ("handshake", ERROR, "SSLV3_ALERT_BAD_CERTIFICATE"),
    ),
    "client-cert-missing": (
        ("read", ERROR, "TLSV13_ALERT_CERTIFICATE_REQUIRED"),
        ("handshake", ERROR, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
    ),
    "client-cert-untrusted": (
        ("read", ERROR, "TLSV1_ALERT_UNKNOWN_CA"),
        ("handshake", VERIFY, "unable to get local issuer certificate"),
    ),
    "client-cert-expired": (
        ("read", ERROR, "SSLV3_ALERT_CERTIFICATE_EXPIRED"),
        ("handshake", VERIFY, "certificate has expired"),
    ),
    "version-mismatch": (
        ("handshake", ERROR, "TLSV1_ALERT_PROTOCOL_VERSION"),
        ("handshake", ERROR, "UNSUPPORTED_PROTOCOL"),
    ),
}


def _describe(error: BaseException | None) -> str:
    return getattr(error, "verify_message", None) or getattr(error, "reason", None) or ""


def _attempt(sock: Any) -> tuple[str, BaseException | None]:
    """Handshake, then read: where it failed and how."""
    try:
        sock.do_handshake()
    except ssl.SSLError as error:
        return "handshake", error
    try:
        sock.sendall(b"ping")
        sock.recv(10)
    except ssl.SSLError as error:
        return "read", error
    return "done", None


@pytest.mark.parametrize("case", sorted(FAILURES))
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_certificate_failures(wrap: Any, pair: Any, case: str, impl: str) -> None:
    server_ctx, client_ctx = _certs.contexts(case)
    server = wrap(impl, pair[0], server_ctx, server_side=True)
    client = wrap(impl, pair[1], client_ctx, server_side=False)
    with peer(lambda: _attempt(server)) as server_side:
        client_outcome = _attempt(client)
        server_outcome = server_side.result()
    for (where, error), (expected_where, kind, reason) in (
        (client_outcome, FAILURES[case][0]),
        (server_outcome, FAILURES[case][1]),
    ):
        assert (where, type(error)) == (expected_where, kind), (case, error)
        assert reason in _describe(error), (case, error)


@pytest.mark.parametrize("case", ["valid", "client-cert"])
def test_cases_that_succeed(pair: Any, case: str) -> None:
    server_ctx, client_ctx = _certs.contexts(case)
    server = TLSSocket(pair[0], server_ctx, server_side=True)
    client = TLSSocket(pair[1], client_ctx, server_side=False, server_hostname=SERVER_HOSTNAME)
    with peer(lambda: server.sendall(server.recv(10))) as done:
        client.sendall(b"ping")
        assert client.recv(10) == b"ping"
        done.result()
    peer_cert = server.getpeercert()
    if case == "client-cert":
        assert ("DNS", "client.sockshock.invalid") in peer_cert["subjectAltName"]
    else:
        assert peer_cert is None


def test_tls_cases_are_all_covered() -> None:
    assert set(TLS_CASES) == set(FAILURES) | {"valid", "client-cert"}


# -- the certificates module ----------------------------------------------------------


def test_leaves_are_cached_and_contexts_are_new() -> None:
    first, second = _certs.server_context(), _certs.server_context()
    assert first is not second
    assert _certs._leaf("valid", "server") is _certs._leaf("valid", "server")
    assert _certs.certificate_authority() is _certs.certificate_authority()
    client = _certs.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    assert client.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname
    assert client.maximum_version == ssl.TLSVersion.TLSv1_2
    start = time.perf_counter()
    for _ in range(10):
        _certs.contexts("client-cert")
    assert time.perf_counter() - start < 1.0  # cached: milliseconds each, no issuing


def test_bad_names_are_refused() -> None:
    with pytest.raises(
        InvalidArgument,
        match=r"certificate='self-signed' must be one of "
        r"'valid', .* \(from server_context\(\)\)",
    ):
        _certs.server_context(certificate="self-signed")
    with pytest.raises(InvalidArgument, match=r"client_certificate='none' must be one of"):
        _certs.client_context(client_certificate="none")
    with pytest.raises(InvalidArgument, match=r"case='expred' must be one of"):
        _certs.contexts("expred")


def test_importing_tls_loads_no_certificate_machinery() -> None:
    result = run_python(
        "import sys\n"
        "import sockshock._tls._socket, sockshock._tls._certs\n"
        "print(sorted(m for m in ('trustme', 'cryptography') if m in sys.modules))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_trustme_says_what_to_install() -> None:
    result = run_python(
        "import sys\n"
        "sys.modules['trustme'] = None  # as if it were not installed\n"
        "from sockshock._tls import _certs\n"
        "try:\n"
        "    _certs.server_context()\n"
        "except _certs.TLSUnavailable as error:\n"
        "    import sockshock\n"
        "    assert isinstance(error, ImportError)\n"
        "    assert isinstance(error, sockshock.errors.SockshockError)\n"
        "    print(error)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "TLS certificates need trustme, which is not installed: pip install 'sockshock[tls]'"
    )
    assert issubclass(TLSUnavailable, SockshockError)

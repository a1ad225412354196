"""The socket layer seam and its conformance kit."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock.layer import SYSTEM_LAYER, SocketLayer, check_socket_layer


class RecordingSocket(socket.socket):
    """A socket.socket subclass whose accepted sockets are RecordingSockets too."""

    layer: RecordingLayer

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = type(self)(self.family, self.type, self.proto, fileno=fd)
        conn.layer = self.layer
        self.layer.sockets.append(conn)
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        return conn, address

    def listen(self, backlog: int = 0) -> None:
        self.layer.backlogs.append(backlog)
        super().listen(backlog)


class RecordingLayer:
    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.backlogs: list[int] = []

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        sock = RecordingSocket(family, type, proto)
        sock.layer = self
        self.sockets.append(sock)
        return sock


def test_the_system_layer_conforms() -> None:
    check_socket_layer(SYSTEM_LAYER)
    assert isinstance(SYSTEM_LAYER, SocketLayer)


def test_a_recording_layer_conforms() -> None:
    check_socket_layer(RecordingLayer())


def test_servers_take_every_socket_from_the_keyword_layer() -> None:
    layer = RecordingLayer()
    with (
        ss.TCPServer(("127.0.0.1", 0), ss.BaseRequestHandler, socket_layer=layer) as server,
        socket.create_connection(server.server_address, timeout=5),
    ):
        server.handle_request()
    assert [type(s) for s in layer.sockets] == [RecordingSocket, RecordingSocket]
    assert layer.sockets[0] is server.socket
    assert layer.backlogs == [ss.TCPServer.request_queue_size]


def test_servers_take_the_class_attribute_layer_and_handlers_see_its_sockets() -> None:
    layer = RecordingLayer()
    seen = []

    class Handler(ss.StreamRequestHandler):
        def handle(self) -> None:
            seen.append(type(self.connection))
            self.wfile.write(self.rfile.readline())

    class Server(ss.ThreadingTCPServer):
        socket_layer = layer

    with sockshock.serving(Server, Handler) as srv, srv.connect() as client:
        client.sendall(b"via layer\n")
        assert client.recv(100) == b"via layer\n"
    assert seen == [RecordingSocket]


def test_datagram_handlers_get_the_layer_socket() -> None:
    layer = RecordingLayer()
    seen = []

    class Echo(ss.DatagramRequestHandler):
        def handle(self) -> None:
            seen.append(type(self.socket))
            self.wfile.write(self.rfile.read())

    with sockshock.serving("UDPServer", Echo, socket_layer=layer) as srv, srv.connect() as client:
        client.send(b"d")
        assert client.recv(10) == b"d"
    assert seen == [RecordingSocket]


def test_a_bad_layer_is_refused_with_a_clear_error() -> None:
    with pytest.raises(sockshock.errors.InvalidArgument) as info:
        ss.TCPServer(("127.0.0.1", 0), ss.BaseRequestHandler, socket_layer="tcp")
    assert str(info.value).startswith(
        "socket_layer='tcp' (type=str) from TCPServer(socket_layer=...) has no callable "
        "socket(family, type, proto) method"
    )
    assert isinstance(info.value, TypeError)


def test_positional_arguments_are_unchanged() -> None:
    server = ss.TCPServer(("127.0.0.1", 0), ss.BaseRequestHandler, False)
    try:
        assert server.socket.getsockname()[1] == 0  # bind_and_activate=False: not bound
    finally:
        server.server_close()
    with pytest.raises(TypeError):
        ss.TCPServer(("127.0.0.1", 0), ss.BaseRequestHandler, True, SYSTEM_LAYER)  # type: ignore[misc]


class ForeignAcceptLayer(RecordingLayer):
    """Broken: accept() hands out plain sockets, escaping the layer."""

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        sock = super().socket(family, type, proto)
        sock.accept = lambda: socket.socket.accept(sock)  # type: ignore[method-assign]
        return sock


class LossyRecvSocket(RecordingSocket):
    def recv(self, n: int, flags: int = 0) -> bytes:
        data = super().recv(n, flags)
        return data[:-1] if len(data) > 1 else data


class LossyLayer(RecordingLayer):
    """Broken: loses the last byte of every receive."""

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        sock = LossyRecvSocket(family, type, proto)
        sock.layer = self
        return sock


class BlockingDontwaitLayer(RecordingLayer):
    """Broken: ignores MSG_DONTWAIT, so a spurious wake-up would block."""

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        sock = super().socket(family, type, proto)
        real = sock.recvfrom

        def recvfrom(n: int, flags: int = 0) -> Any:
            sock.settimeout(0.05)
            return real(n)

        sock.recvfrom = recvfrom  # type: ignore[method-assign]
        return sock


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (ForeignAcceptLayer(), "AF_INET accept() stays in the layer: accept() returned socket"),
        (LossyLayer(), "AF_INET recv(): got 16383 of 16384 bytes intact"),
        (BlockingDontwaitLayer(), "AF_INET recvfrom(MSG_DONTWAIT)"),
        (object(), None),
    ],
    ids=["foreign-accept", "lossy", "blocking-dontwait", "not-a-layer"],
)
def test_the_kit_names_what_a_broken_layer_gets_wrong(layer: Any, message: str | None) -> None:
    if message is None:
        with pytest.raises(sockshock.errors.InvalidArgument):
            check_socket_layer(layer)
        return
    with pytest.raises(AssertionError) as info:
        check_socket_layer(layer, unix=False, timeout=0.2)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, AssertionError)

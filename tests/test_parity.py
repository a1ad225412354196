"""Behaviour the standard library's socketserver and ours share, run against both."""

from __future__ import annotations

import os
import socket
import socketserver as stdlib_socketserver
import threading
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ours
from sockshock import server_kinds
from tests.conftest import within

FAST_POLL = 0.01  # only matters for the stdlib, whose shutdown() waits for it


def module_and_class(kind: str) -> Any:
    """(module, server class) for every class of ``kind`` that the module has;
    the thread pools are sockshock's, ForkingUnix* are 3.12+ in the stdlib."""
    params = []
    for server in server_kinds(transport=kind):
        for module in (stdlib_socketserver, ours):
            cls = getattr(module, server.name, None)
            if cls is not None:
                module_id = "stdlib" if module is stdlib_socketserver else "sockshock"
                params.append(pytest.param(module, cls, id=f"{module_id}-{server.name}"))
    return pytest.mark.parametrize(("ssmod", "server_class"), params)


@module_and_class("stream")
def test_stream_echo(ssmod: Any, server_class: Any) -> None:
    class Echo(ssmod.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line.upper())

    with sockshock.serving(server_class, Echo, poll_interval=FAST_POLL) as srv:
        for _ in range(2):
            with srv.connect() as client:
                client.sendall(b"one\ntwo\n")
                client.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := client.recv(100):
                    reply += chunk
                assert reply == b"ONE\nTWO\n"


@module_and_class("datagram")
def test_datagram_echo(ssmod: Any, server_class: Any) -> None:
    class Echo(ssmod.DatagramRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.read()[::-1])

    with (
        sockshock.serving(server_class, Echo, poll_interval=FAST_POLL) as srv,
        srv.connect() as client,
    ):
        for payload in (b"abc", b"hello"):
            client.send(payload)
            assert client.recv(100) == payload[::-1]


def test_handle_request_times_out(ssmod: Any) -> None:
    calls = []

    class Server(ssmod.TCPServer):
        timeout = 0.01

        def handle_timeout(self) -> None:
            calls.append("timeout")

    with Server(("127.0.0.1", 0), ssmod.BaseRequestHandler) as server:
        server.handle_request()
    assert calls == ["timeout"]


def test_handle_request_serves_one_client(ssmod: Any) -> None:
    seen = []

    class Handler(ssmod.BaseRequestHandler):
        def handle(self) -> None:
            seen.append(self.request.recv(10))

    with (
        ssmod.TCPServer(("127.0.0.1", 0), Handler) as server,
        socket.create_connection(server.server_address, timeout=5) as client,
    ):
        client.sendall(b"hi")
        server.handle_request()
    assert seen == [b"hi"]


def test_verify_request_false_shuts_the_request_down(ssmod: Any) -> None:
    handled = []

    class Server(ssmod.TCPServer):
        def verify_request(self, request: Any, client_address: Any) -> bool:
            return False

    class Handler(ssmod.BaseRequestHandler):
        def handle(self) -> None:
            handled.append(True)

    with (
        Server(("127.0.0.1", 0), Handler) as server,
        socket.create_connection(server.server_address, timeout=5) as client,
    ):
        server.handle_request()
        assert client.recv(10) == b""  # closed without being handled
    assert handled == []


def test_handle_error_gets_handler_exceptions(ssmod: Any) -> None:
    errors = []

    class Server(ssmod.TCPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            import sys

            errors.append(sys.exc_info()[0])

    class Handler(ssmod.BaseRequestHandler):
        def handle(self) -> None:
            raise KeyError("x")

    with (
        Server(("127.0.0.1", 0), Handler) as server,
        socket.create_connection(server.server_address, timeout=5),
    ):
        server.handle_request()
    assert errors == [KeyError]


def test_bind_failure_closes_the_socket(ssmod: Any) -> None:
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for _ in range(50):
        with pytest.raises(OverflowError):
            ssmod.TCPServer(("127.0.0.1", -1), ssmod.BaseRequestHandler)
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) <= before


def test_with_statement_closes(ssmod: Any) -> None:
    with ssmod.UDPServer(("127.0.0.1", 0), ssmod.BaseRequestHandler) as server:
        assert server.fileno() >= 0
    assert server.socket.fileno() == -1


def test_shutdown_called_before_serve_forever_starts(ssmod: Any) -> None:
    server = ssmod.TCPServer(("127.0.0.1", 0), ssmod.BaseRequestHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": FAST_POLL}, daemon=True
    )
    try:
        thread.start()
        # May run before serve_forever() is entered: must still return.
        within(5, server.shutdown)
        thread.join(5)
        assert not thread.is_alive()
    finally:
        server.server_close()


def test_serve_forever_can_run_again_after_shutdown(ssmod: Any) -> None:
    class Echo(ssmod.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    with ssmod.TCPServer(("127.0.0.1", 0), Echo) as server:
        for _ in range(2):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": FAST_POLL}, daemon=True
            )
            thread.start()
            try:
                with socket.create_connection(server.server_address, timeout=5) as client:
                    client.sendall(b"again\n")
                    assert client.recv(100) == b"again\n"
            finally:
                within(5, server.shutdown)
                thread.join(5)
            assert not thread.is_alive()


def test_service_actions_runs_in_the_loop(ssmod: Any) -> None:
    ran = threading.Event()

    class Server(ssmod.TCPServer):
        def service_actions(self) -> None:
            ran.set()

    with sockshock.serving(Server, ssmod.BaseRequestHandler, poll_interval=FAST_POLL):
        assert ran.wait(5)


def test_threading_server_threads_are_joined_on_close(ssmod: Any) -> None:
    release = threading.Event()
    started = threading.Event()
    finished = []

    class Slow(ssmod.BaseRequestHandler):
        def handle(self) -> None:
            started.set()
            release.wait(5)
            finished.append(True)

    server = ssmod.ThreadingTCPServer(("127.0.0.1", 0), Slow)
    with socket.create_connection(server.server_address, timeout=5):
        server.handle_request()
        assert started.wait(5)
        closer = threading.Thread(target=server.server_close, daemon=True)
        closer.start()
        closer.join(0.05)
        assert closer.is_alive(), "server_close() must wait for the handler thread"
        release.set()
        closer.join(5)
    assert finished == [True]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forking_server_reaps_its_children(ssmod: Any) -> None:
    class Echo(ssmod.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    with sockshock.serving(ssmod.ForkingTCPServer, Echo, poll_interval=FAST_POLL) as srv:
        for _ in range(3):
            with srv.connect() as client:
                client.sendall(b"x\n")
                assert client.recv(10) == b"x\n"
    assert not srv.server.active_children

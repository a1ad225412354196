"""The drop-in's public surface matches CPython 3.13's socketserver, on every Python."""

from __future__ import annotations

import inspect
import os
import socket
import socketserver as stdlib
import sys
from typing import Any

import pytest

import sockshock.socketserver as ours

# socketserver.__all__ of CPython 3.13, with its platform conditions.
NAMES_313 = [
    "BaseServer",
    "TCPServer",
    "UDPServer",
    "ThreadingUDPServer",
    "ThreadingTCPServer",
    "BaseRequestHandler",
    "StreamRequestHandler",
    "DatagramRequestHandler",
    "ThreadingMixIn",
]
if hasattr(os, "fork"):
    NAMES_313 += ["ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"]
if hasattr(socket, "AF_UNIX"):
    NAMES_313 += [
        "UnixStreamServer",
        "UnixDatagramServer",
        "ThreadingUnixStreamServer",
        "ThreadingUnixDatagramServer",
    ]
    if hasattr(os, "fork"):
        NAMES_313 += ["ForkingUnixStreamServer", "ForkingUnixDatagramServer"]

POOL_NAMES = ["ThreadPoolMixIn", "ThreadPoolTCPServer", "ThreadPoolUDPServer"]
if hasattr(socket, "AF_UNIX"):
    POOL_NAMES += ["ThreadPoolUnixStreamServer", "ThreadPoolUnixDatagramServer"]

SHARED = [name for name in NAMES_313 if hasattr(stdlib, name)]


def test_all_is_the_313_list_plus_the_pool() -> None:
    assert sorted(ours.__all__) == sorted(NAMES_313 + POOL_NAMES)
    for name in ours.__all__:
        assert isinstance(getattr(ours, name), type), name


def test_every_public_class_is_in_all() -> None:
    defined_here = [
        name
        for name, value in vars(ours).items()
        if not name.startswith("_")
        and isinstance(value, type)
        and value.__module__ == ours.__name__
    ]
    assert sorted(defined_here) == sorted(ours.__all__)


@pytest.mark.parametrize("name", NAMES_313)
def test_class_hierarchy_matches_the_stdlib(name: str) -> None:
    mro = [c.__name__ for c in getattr(ours, name).__mro__]
    if hasattr(stdlib, name):
        assert mro == [c.__name__ for c in getattr(stdlib, name).__mro__]
    else:  # ForkingUnix*Server on 3.10 and 3.11: as 3.13 defines them
        assert mro[:2] == [name, "ForkingMixIn"]


@pytest.mark.parametrize("name", SHARED)
def test_methods_and_signatures_match_the_stdlib(name: str) -> None:
    theirs, mine = getattr(stdlib, name), getattr(ours, name)
    for attr, value in vars(theirs).items():
        if not callable(value) or attr in ("__init_subclass__",):
            continue
        assert hasattr(mine, attr), f"{name}.{attr} is missing"
        if attr == "__init__":
            # Ours adds one keyword-only parameter; the positional ones are the same.
            their_params = list(inspect.signature(value).parameters.values())
            my_params = [
                p
                for p in inspect.signature(getattr(mine, attr)).parameters.values()
                if p.kind is not p.KEYWORD_ONLY
            ]
            assert [(p.name, p.default) for p in my_params] == [
                (p.name, p.default) for p in their_params
            ]
        elif inspect.isfunction(value):
            assert list(inspect.signature(getattr(mine, attr)).parameters) == list(
                inspect.signature(value).parameters
            ), f"{name}.{attr}"


CLASS_ATTRIBUTES = [
    "address_family",
    "socket_type",
    "allow_reuse_address",
    "allow_reuse_port",
    "max_packet_size",
    "timeout",
    "daemon_threads",
    "block_on_close",
    "max_children",
    "rbufsize",
    "wbufsize",
    "disable_nagle_algorithm",
]


@pytest.mark.parametrize("name", SHARED)
def test_class_attributes_match_the_stdlib(name: str) -> None:
    theirs, mine = getattr(stdlib, name), getattr(ours, name)
    for attr in CLASS_ATTRIBUTES:
        if hasattr(theirs, attr):
            assert getattr(mine, attr) == getattr(theirs, attr), f"{name}.{attr}"
    if hasattr(theirs, "request_queue_size"):
        # Deliberately larger (see test_stdlib_defects); still an int class attribute.
        assert mine.request_queue_size >= 1024
    if sys.version_info < (3, 11) and issubclass(mine, ours.TCPServer):
        assert mine.allow_reuse_port is False  # 3.11+ attribute, present on 3.10 too


def test_the_default_socket_layer_adds_no_wrapper() -> None:
    with ours.TCPServer(("127.0.0.1", 0), ours.BaseRequestHandler) as server:
        assert type(server.socket) is socket.socket


def test_private_hooks_that_subclasses_use_exist() -> None:
    server = ours.TCPServer(("127.0.0.1", 0), ours.BaseRequestHandler)
    try:
        # Code in the wild flips this name-mangled flag to stop serve_forever().
        assert server._BaseServer__shutdown_request is False  # type: ignore[attr-defined]
        assert callable(server._handle_request_noblock)
        assert isinstance(ours._ServerSelector, type)
        assert issubclass(ours._SocketWriter, __import__("io").BufferedIOBase)
    finally:
        server.server_close()


def test_stdlib_consumers_run_on_ours(ours_as_socketserver: Any) -> None:
    import http.server
    import logging.config
    import wsgiref.simple_server
    import xmlrpc.server

    assert issubclass(http.server.HTTPServer, ours.TCPServer)
    assert issubclass(http.server.ThreadingHTTPServer, ours.ThreadingMixIn)
    assert issubclass(xmlrpc.server.SimpleXMLRPCServer, ours.TCPServer)
    assert issubclass(wsgiref.simple_server.WSGIServer, ours.TCPServer)
    assert logging.config.ThreadingTCPServer is ours.ThreadingTCPServer


def test_stdlib_consumers_serve_real_requests_on_ours(ours_as_socketserver: Any) -> None:
    import http.client
    import http.server
    import xmlrpc.client
    import xmlrpc.server

    import sockshock

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from " + self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with sockshock.serving(http.server.ThreadingHTTPServer, Hello) as srv:
        conn = http.client.HTTPConnection(*srv.address, timeout=5)
        try:
            conn.request("GET", "/x")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"hello from /x")
        finally:
            conn.close()

    class RPC(xmlrpc.server.SimpleXMLRPCServer):
        def __init__(self, addr: Any, handler: Any) -> None:
            super().__init__(addr, handler, logRequests=False)
            self.register_function(lambda a, b: a + b, "add")

    with sockshock.serving(RPC, xmlrpc.server.SimpleXMLRPCRequestHandler) as srv:
        host, port = srv.address
        with xmlrpc.client.ServerProxy(f"http://{host}:{port}/") as proxy:
            assert proxy.add(2, 3) == 5


def test_wsgiref_serves_on_ours(ours_as_socketserver: Any) -> None:
    import http.client
    import wsgiref.simple_server

    import sockshock

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi on ", environ["PATH_INFO"].encode()]

    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    class Server(wsgiref.simple_server.WSGIServer):
        def server_bind(self) -> None:
            super().server_bind()
            self.set_app(app)

    assert issubclass(Server, ours.TCPServer)
    with sockshock.serving(Server, Quiet) as srv:
        conn = http.client.HTTPConnection(*srv.address, timeout=5)
        try:
            conn.request("GET", "/path")
            assert conn.getresponse().read() == b"wsgi on /path"
        finally:
            conn.close()

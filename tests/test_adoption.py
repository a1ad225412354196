"""One adoption path: every route in resolves a server through one resolver, starts
and stops it through one runner and hands back one handle type.

The servers here are shaped like real ones: a class with its own select loop and
stop event behind an overriding ``shutdown()``, a ``serve_forever()`` without
``poll_interval``, a constructor whose second parameter is not the handler and
whose handler has a default. Each test failed before the one runner (see the
commit that added this file)."""

from __future__ import annotations

import select
import socketserver as stdlib_socketserver
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from sockshock.errors import InvalidArgument, ShutdownTimeout
from sockshock.handlers import LineEcho
from sockshock.scripts import ClientScript
from tests._support import read_line

MODULES = pytest.mark.parametrize("module", [ss, stdlib_socketserver], ids=["sockshock", "stdlib"])


def own_loop_server(module: ModuleType) -> type[Any]:
    """A server that runs its own select loop until its own stop event is set, and
    whose ``shutdown()`` sets that event and waits for the loop to end -- the shape
    of servers that never heard of ``BaseServer.__shutdown_request``."""

    class OwnLoop(module.ThreadingTCPServer):  # type: ignore[name-defined,misc]
        daemon_threads = True
        shutdowns: ClassVar[list[float]] = []  # (a list: the harness runs a subclass)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._stop = threading.Event()
            self._loop_ended = threading.Event()

        def serve_forever(self, poll_interval: float = 0.5) -> None:
            self._loop_ended.clear()
            try:
                while not self._stop.is_set():
                    readable, _, _ = select.select([self], [], [], 0.01)
                    if readable:
                        self._handle_request_noblock()
            finally:
                self._loop_ended.set()

        def shutdown(self) -> None:
            self.shutdowns.append(time.monotonic())
            self._stop.set()
            self._loop_ended.wait(5)

    return OwnLoop


@MODULES
def test_a_class_with_its_own_loop_is_stopped_through_its_own_shutdown(
    module: ModuleType,
) -> None:
    cls = own_loop_server(module)
    # Before: stopped through a private flag its loop never reads -> ShutdownTimeout.
    with sockshock.serving(cls, LineEcho, shutdown_timeout=2) as srv, srv.connect() as client:
        client.sendall(b"hi\n")
        assert read_line(client) == b"hi\n"
    assert len(cls.shutdowns) == 1
    assert srv.wait_stopped(0)
    assert srv.server.socket.fileno() == -1  # server_close() ran after the loop ended


@MODULES
def test_an_abrupt_shutdown_goes_through_the_classs_own_shutdown_too(module: ModuleType) -> None:
    cls = own_loop_server(module)
    with sockshock.serving(cls, LineEcho, faults=[F.AbruptShutdown()], shutdown_timeout=2) as srv:
        with srv.connect() as client:
            client.sendall(b"hi\n")
            read_line(client)  # answered or cut off: never hung
        assert srv.wait_stopped(2)
        assert len(cls.shutdowns) == 1
    assert len(cls.shutdowns) == 1  # asked once: the block's end found it stopped


class OwnShutdownThenSuper(stdlib_socketserver.ThreadingTCPServer):
    """A standard-library server whose ``shutdown()`` does its own cleanup, then
    calls the standard library's -- which raises the loop's flag without waking
    sockshock's loop (it polls every 0.5 s by default)."""

    daemon_threads = True
    cleaned: ClassVar[list[float]] = []

    def shutdown(self) -> None:
        self.cleaned.append(time.monotonic())
        super().shutdown()


def test_an_overriding_shutdown_that_calls_the_standard_librarys_wakes_the_loop() -> None:
    before = len(OwnShutdownThenSuper.cleaned)
    # Without a poll interval the loop only wakes when it is woken: a stop that did not
    # wake it would end in ShutdownTimeout.
    with sockshock.serving(
        OwnShutdownThenSuper, LineEcho, poll_interval=None, shutdown_timeout=2
    ) as srv:
        assert exchange(srv, b"hi\n") == b"hi\n"
    assert len(OwnShutdownThenSuper.cleaned) == before + 1


class NoPollInterval(ss.ThreadingTCPServer):
    """``serve_forever()`` overridden without ``poll_interval``: it picks its own."""

    daemon_threads = True

    def serve_forever(self) -> None:  # type: ignore[override]
        super().serve_forever(poll_interval=0.05)


def test_a_serve_forever_without_poll_interval_serves_in_the_block() -> None:
    with sockshock.serving(NoPollInterval, LineEcho) as srv, srv.connect() as client:
        client.sendall(b"served\n")
        assert read_line(client) == b"served\n"  # not refused: the loop runs
    assert srv.wait_stopped(0)


def test_a_serve_forever_that_cannot_take_what_it_is_given_is_refused_up_front() -> None:
    with (
        pytest.raises(InvalidArgument, match=r"poll_interval=0\.1 \(from serving\(\)\): "),
        sockshock.serving(NoPollInterval, LineEcho, poll_interval=0.1),
    ):
        pass

    class NeedsAnArgument(ss.TCPServer):
        def serve_forever(self, stop_event: threading.Event) -> None:  # type: ignore[override]
            raise AssertionError("never called")

    with (
        pytest.raises(InvalidArgument, match=r"requires 'stop_event', which sockshock cannot"),
        sockshock.serving(NeedsAnArgument, LineEcho),
    ):
        pass


class Greeting(ss.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()
        self.wfile.write(b"hello from the default handler\n")


class Shout(ss.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline().upper())


class HandlerLast(ss.ThreadingTCPServer):
    """A constructor whose second parameter is not the handler, and whose handler
    has a default (the shape of servers that pick their handler themselves)."""

    daemon_threads = True

    def __init__(
        self,
        server_address: Any,
        bind_and_activate: bool = True,
        handler: type[ss.BaseRequestHandler] = Greeting,
    ) -> None:
        super().__init__(server_address, handler, bind_and_activate)


def exchange(srv: Any, line: bytes) -> bytes:
    with srv.connect() as client:
        client.sendall(line)
        return read_line(client)


def test_constructor_arguments_are_passed_by_name() -> None:
    with sockshock.serving(HandlerLast, Shout) as srv:  # not bind_and_activate=Shout
        assert srv.server.RequestHandlerClass is Shout
        assert exchange(srv, b"quiet\n") == b"QUIET\n"


def test_the_constructors_default_handler_is_taken_when_none_is_given() -> None:
    with sockshock.serving(HandlerLast) as srv:
        assert exchange(srv, b"hi\n") == b"hello from the default handler\n"


def test_the_fixture_passes_constructor_arguments_by_name(sockshock: Any) -> None:
    assert exchange(sockshock.serve(HandlerLast, Shout), b"x\n") == b"X\n"
    assert exchange(sockshock.serve(HandlerLast), b"x\n") == b"hello from the default handler\n"


class PicksItsOwn(ss.ThreadingTCPServer):
    """A constructor that takes no handler class at all."""

    daemon_threads = True

    def __init__(self, server_address: Any, bind_and_activate: bool = True) -> None:
        super().__init__(server_address, Greeting, bind_and_activate)


def test_a_class_that_picks_its_own_handler_needs_none_and_refuses_one() -> None:
    with sockshock.serving(PicksItsOwn) as srv:
        assert exchange(srv, b"hi\n") == b"hello from the default handler\n"
    with (
        pytest.raises(InvalidArgument, match=r"PicksItsOwn\(\) takes no request handler class"),
        sockshock.serving(PicksItsOwn, Shout),
    ):
        pass


def test_one_resolver_says_which_handler_each_route_runs() -> None:
    from sockshock._harness import resolve_server

    given = resolve_server(HandlerLast, Shout, demo=True)
    assert (given.handler_class, given.origin) == (Shout, "given")
    default = resolve_server(HandlerLast, None, demo=True)
    assert (default.handler_class, default.origin) == (None, "default")
    assert default.describe_handler() == "Greeting (HandlerLast's default)"
    own = resolve_server(PicksItsOwn, None, demo=True)
    assert (own.handler_class, own.origin) == (None, "own")
    demo = resolve_server("ThreadingUDPServer", None, demo=True)
    assert demo.origin == "demo"
    assert demo.describe_handler() == "DatagramEcho (sockshock's demo echo handler)"
    with pytest.raises(InvalidArgument, match="whose constructor has no default one"):
        resolve_server("ThreadingUDPServer")


def test_a_handler_may_be_named_as_module_attr() -> None:
    with sockshock.serving("ThreadingTCPServer", "sockshock.handlers:LineEcho") as srv:
        assert exchange(srv, b"named\n") == b"named\n"
    with (
        pytest.raises(
            InvalidArgument,
            match=r"expected a request handler class or its 'module:attr' but got "
            r"handler_class='LineEcho' \(from serving\(\)\)",
        ),
        sockshock.serving("ThreadingTCPServer", "LineEcho"),
    ):
        pass


# -- inject(): the same handle, the same stop -------------------------------------


def test_inject_yields_server_handles_and_an_abrupt_shutdown_stops_the_server() -> None:
    with sockshock.inject([F.AbruptShutdown()]) as servers:
        server = ss.ThreadingTCPServer(("127.0.0.1", 0), LineEcho)  # "library code"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            (handle,) = servers.wait(1)
            assert type(handle) is sockshock.ServerHandle
            with handle.connect() as client:
                client.sendall(b"hi\n")
                read_line(client)  # answered or cut off: never hung
            assert handle.wait_stopped(2)  # the loop ended and server_close() ran
            thread.join(2)
            assert not thread.is_alive()
            assert handle.thread is thread
            assert server.socket.fileno() == -1
        finally:
            if thread.is_alive():
                server.shutdown()
                server.server_close()
                thread.join(2)


@MODULES
def test_an_abrupt_shutdown_under_inject_uses_the_classs_own_shutdown(module: ModuleType) -> None:
    cls = own_loop_server(module)
    with sockshock.inject([F.AbruptShutdown()]) as servers:
        server = cls(("127.0.0.1", 0), LineEcho)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            (handle,) = servers.wait(1)
            with handle.connect() as client:
                client.sendall(b"hi\n")
                read_line(client)
            assert handle.wait_stopped(2)
            assert len(cls.shutdowns) == 1
            thread.join(2)
            assert not thread.is_alive()
        finally:
            server._stop.set()
            thread.join(2)
            server.server_close()


def test_an_injected_servers_stop_can_be_timed_as_a_served_ones() -> None:
    with sockshock.inject() as servers:
        server = ss.ThreadingTCPServer(("127.0.0.1", 0), LineEcho)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            (handle,) = servers.wait(1)
            assert exchange(handle, b"before\n") == b"before\n"
            assert handle.assert_stops_within(0.2) < 0.3
            assert handle.wait_stopped(0)
            thread.join(2)
            assert not thread.is_alive()
        finally:
            if thread.is_alive():
                server.shutdown()
                thread.join(2)
            server.server_close()


def test_an_injected_stop_that_never_ends_is_a_shutdown_timeout() -> None:
    release = threading.Event()

    class Stubborn(ss.ThreadingTCPServer):
        def shutdown(self) -> None:
            release.wait(5)  # "its own shutdown()" that hangs

    started: list[tuple[Any, threading.Thread]] = []
    try:
        with (
            pytest.raises(ShutdownTimeout, match=r"Stubborn: the stop the harness began"),
            sockshock.inject([F.AbruptShutdown()], shutdown_timeout=0.2) as servers,
        ):
            server = Stubborn(("127.0.0.1", 0), LineEcho)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            started.append((server, thread))
            (handle,) = servers.wait(1)
            with handle.connect() as client:
                client.sendall(b"hi\n")
                read_line(client)
            assert handle._run.stop_requested.wait(2)
    finally:
        release.set()
        for server, thread in started:
            server._BaseServer__shutdown_request = True
            server._wake()
            thread.join(2)
            server.server_close()


# -- sockshock run --server: the same resolver ---------------------------------------

SERVERS_MODULE = """
import sockshock.socketserver as ss


class Greeting(ss.StreamRequestHandler):
    def handle(self):
        self.rfile.readline()
        self.wfile.write(b"hello from the default handler\\n")


class Defaulted(ss.ThreadingTCPServer):  # SimpleXMLRPCServer's shape
    daemon_threads = True

    def __init__(self, server_address, requestHandler=Greeting, bind_and_activate=True):
        super().__init__(server_address, requestHandler, bind_and_activate)
"""


def test_sockshock_run_serves_a_class_with_its_own_default_handler(tmp_path: Path) -> None:
    (tmp_path / "adopted_servers.py").write_text(textwrap.dedent(SERVERS_MODULE))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sockshock",
            "run",
            "--server",
            "adopted_servers:Defaulted",
            "--expect",
            "hello from the default handler\\n",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Before: the demo echo handler answered "ping\n" in its place.
    assert result.returncode == 0, result.stdout + result.stderr


def test_sockshock_run_judges_a_servers_own_handler_by_its_own_reply(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sockshock", "run", "--server", "xmlrpc.server:SimpleXMLRPCServer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Its own handler answers "ping\n" with an HTTP error page, under faults as
    # without them: not the demo handler's echo that was expected of it.
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_error_in_a_stop_begun_under_inject_is_raised_after_the_block() -> None:
    class Refuses(ss.ThreadingTCPServer):
        daemon_threads = True

        def shutdown(self) -> None:
            raise RuntimeError("this server will not stop")

    with (
        pytest.raises(RuntimeError, match="will not stop"),
        sockshock.inject([F.AbruptShutdown()]) as servers,
    ):
        server = Refuses(("127.0.0.1", 0), LineEcho)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            (handle,) = servers.wait(1)
            with handle.connect() as client:
                client.sendall(b"hi\n")
                read_line(client)
            assert handle._run.stop_requested.wait(2)
            assert handle._run.stopper is not None
            handle._run.stopper.join(2)
            assert not handle.wait_stopped(0)  # its shutdown() failed: it still serves
            assert exchange(handle, b"still\n") == b"still\n"
        finally:
            ss.ThreadingTCPServer.shutdown(server)
            thread.join(2)
            server.server_close()


# -- scenarios: the same resolver -----------------------------------------------------


class Grumpy(ss.StreamRequestHandler):
    def handle(self) -> None:
        raise LookupError("the class's own handler ran")


class GrumpyByDefault(ss.ThreadingTCPServer):
    daemon_threads = True

    def __init__(
        self,
        server_address: Any,
        RequestHandlerClass: Any = Grumpy,
        bind_and_activate: bool = True,
    ) -> None:
        super().__init__(server_address, RequestHandlerClass, bind_and_activate)


def test_a_scenario_serves_a_class_with_its_own_default_handler(tmp_path: Path) -> None:
    from sockshock import scenarios

    path = tmp_path / "own-handler.toml"
    path.write_text(
        textwrap.dedent("""
            description = "A server class with its own default handler, no handler key."
            duration = 0.01

            [server]
            class = "tests.test_adoption:GrumpyByDefault"

            [load]
            clients = 1

            [expect]
            answered = 0
            handler_errors = "none"
        """)
    )
    result = scenarios.run(scenarios.load(str(path)))
    # Before: the demo echo handler ran in its place, and nothing was raised.
    (errors,) = [check for check in result.checks if check.name == "handler errors"]
    assert (errors.passed, errors.detail) == (False, "1: LookupError")


# -- types: no Any in the signatures users call -----------------------------------------


def _signatures(path: Path, name: str) -> list[Any]:
    """The definitions of ``name`` in ``path`` that users see: its overloads, or the
    function itself when it has none."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == name
    ]
    overloads = [
        node
        for node in found
        if any(isinstance(d, ast.Name) and d.id == "overload" for d in node.decorator_list)
    ]
    return overloads or found


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("_harness/_serving.py", "serving"),
        ("_harness/_install.py", "inject"),
        ("_pytest/_fixture.py", "serve"),
        ("_pytest/_fixture.py", "inject"),
    ],
)
def test_the_signatures_users_call_have_real_types(module: str, name: str) -> None:
    import ast

    path = Path(sockshock.__file__).parent / module
    definitions = _signatures(path, name)
    assert definitions, f"no {name}() in {module}"
    for node in definitions:
        annotations = [
            a.annotation
            for a in (
                *node.args.posonlyargs,
                *node.args.args,
                *node.args.kwonlyargs,
                *(x for x in (node.args.vararg, node.args.kwarg) if x is not None),
            )
            if a.annotation is not None
        ] + ([node.returns] if node.returns is not None else [])
        text = [ast.unparse(a) for a in annotations]
        assert not [t for t in text if "Any" in t], f"{module}:{node.lineno} {name}(): {text}"


# -- ServerMachine: the same resolver and runner ---------------------------------------


def test_a_server_machine_runs_a_class_with_its_own_loop_and_default_handler() -> None:
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import strategies as st

    from sockshock.scripts import HalfClose, Read, Send
    from sockshock.strategies import ServerMachine

    built: list[object] = []

    class OwnLoopDefaultHandler(own_loop_server(ss)):  # type: ignore[misc]
        def __init__(self, server_address: Any, handler: Any = Shout) -> None:
            super().__init__(server_address, handler)
            built.append(self)

    class Machine(ServerMachine):
        server_class = OwnLoopDefaultHandler  # no handler_class: its default, Shout
        max_clients = 2
        scripts = st.just(ClientScript((Send(b"quiet\n"), HalfClose(), Read()), timeout=1.0))

        def expected_reply(self, request: bytes) -> bytes:
            return request.upper()

    run = Machine.TestCase("runTest")
    run.settings = settings(
        max_examples=3,
        stateful_step_count=4,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    run.runTest()  # before: no default handler taken, and a stop that never came
    assert built  # every server the machine started was stopped its own way
    assert len(OwnLoopDefaultHandler.shutdowns) == len(built)


def test_assert_stops_within_lets_the_server_take_its_clients_before_timing() -> None:
    # A stop timed before the server accepted its busy clients measured no busy
    # handler at all (a flaky ShutdownTooSlow test under load): they are taken first.
    with sockshock.serving("ThreadingTCPServer", LineEcho, daemon_threads=True) as srv:
        before = srv._run.connections
        srv.assert_stops_within(1, busy=3, stalled=1)
        assert srv._run.connections - before == 4

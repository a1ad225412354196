"""sockshock.serving(): run any server for a with-block; never hang; lose no error."""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from sockshock.handlers import DatagramEcho, LineEcho


def test_unix_servers_live_in_a_private_directory_that_is_removed() -> None:
    with sockshock.serving("ThreadingUnixStreamServer", LineEcho) as srv:
        path = srv.address
        assert os.path.exists(path)
        with srv.connect() as client:
            client.sendall(b"unix\n")
            assert client.recv(10) == b"unix\n"
    assert not os.path.exists(os.path.dirname(path))


def test_unix_datagram_clients_get_a_path_to_be_answered_on() -> None:
    with sockshock.serving("UnixDatagramServer", DatagramEcho) as srv, srv.connect() as client:
        assert client.getsockname()
        client.send(b"dgram")
        assert client.recv(10) == b"dgram"


def test_handler_exceptions_are_reraised_after_the_server_stopped() -> None:
    class Broken(ss.BaseRequestHandler):
        def handle(self) -> None:
            raise LookupError("the handler's own error")

    with (
        pytest.raises(LookupError, match="the handler's own error"),
        sockshock.serving("ThreadingTCPServer", Broken) as srv,
        srv.connect() as client,
    ):
        assert client.recv(10) == b""
    assert not srv.thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_children_report_their_handler_exceptions() -> None:
    class Broken(ss.BaseRequestHandler):
        def handle(self) -> None:
            raise KeyError("in the child")

    with (
        pytest.raises(KeyError) as info,
        sockshock.serving("ForkingTCPServer", Broken) as srv,
        srv.connect() as client,
    ):
        assert client.recv(10) == b""
    notes = getattr(info.value, "__notes__", [])
    assert any("raised in forked child pid" in note for note in notes)


def test_acknowledged_errors_are_not_reraised() -> None:
    class Broken(ss.BaseRequestHandler):
        def handle(self) -> None:
            raise ValueError("expected")

    with sockshock.serving("TCPServer", Broken) as srv:
        with srv.connect() as client:
            assert client.recv(10) == b""
        (failure,) = srv.errors
        assert isinstance(failure.exception, ValueError)
        assert "raise ValueError" in failure.traceback
        srv.errors.clear()


def test_a_server_that_will_not_stop_is_reported_and_unstuck() -> None:
    entered = threading.Event()

    class Stuck(ss.StreamRequestHandler):
        def handle(self) -> None:
            entered.set()
            self.rfile.read()  # until end of file, which the client never sends

    # A client of the test's own (the harness ends the ones connect() made).
    with (
        socket.socket() as client,
        pytest.raises(sockshock.errors.ShutdownTimeout) as info,
        sockshock.serving("TCPServer", Stuck, shutdown_timeout=0.1) as srv,
    ):
        client.connect(srv.address)
        client.sendall(b"x")
        assert entered.wait(5)
    message = str(info.value)
    assert message.startswith("TCPServer shutdown() did not finish within 0.1 s")
    assert "in handle" in message
    assert "self.rfile.read()" in message
    assert not srv.thread.is_alive(), "the harness must unstick the serving thread"


def test_the_body_error_wins_and_handler_errors_become_notes() -> None:
    class Broken(ss.BaseRequestHandler):
        def handle(self) -> None:
            raise ValueError("handler")

    with (
        pytest.raises(AssertionError) as info,
        sockshock.serving("TCPServer", Broken) as srv,
        srv.connect() as client,
    ):
        client.recv(10)
        srv.errors  # collected before the body fails  # noqa: B018
        raise AssertionError("the test's own failure")
    assert any("ValueError('handler')" in note for note in info.value.__notes__)


def test_server_attrs_become_class_attributes() -> None:
    with sockshock.serving(
        "ThreadPoolTCPServer", LineEcho, max_workers=3, request_queue_size=7
    ) as srv:
        assert srv.server.max_workers == 3
        assert srv.server.request_queue_size == 7
        assert type(srv.server).__name__ == "ThreadPoolTCPServer"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"server_class": "ThreadingTCPServr"},
            sockshock.errors.InvalidArgument,
            "server_class='ThreadingTCPServr' is not a server class of sockshock.socketserver; "
            "did you mean 'ThreadingTCPServer'?",
        ),
        (
            {"server_class": 42},
            sockshock.errors.InvalidArgument,
            "expected a server class or its name but got server_class=42 (type=int)",
        ),
        (
            {"server_class": "os:path"},
            sockshock.errors.InvalidArgument,
            "server_class='os:path' is <module",
        ),
        (
            {"server_class": "no_such_module:X"},
            sockshock.errors.InvalidArgument,
            "server_class='no_such_module:X': cannot import 'X' from 'no_such_module'",
        ),
        (
            {"server_class": "ThreadingTCPServer", "request_queue": 4},
            sockshock.errors.InvalidArgument,
            "ThreadingTCPServer has no setting 'request_queue' (server attribute request_queue=4 "
            "from serving()); did you mean 'request_queue_size'?",
        ),
        (
            {"server_class": "TCPServer", "address": ("0.0.0.0", 0)},
            sockshock.errors.InvalidArgument,
            "address=('0.0.0.0', 0): sockshock serves on loopback addresses only",
        ),
    ],
)
def test_bad_arguments_get_one_clear_error(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    cls = kwargs.pop("server_class")
    with pytest.raises(error) as info, sockshock.serving(cls, LineEcho, **kwargs):
        pass
    assert str(info.value).startswith(message)


def test_stdlib_and_subclassed_servers_run_too() -> None:
    import socketserver

    with (
        sockshock.serving(socketserver.ThreadingTCPServer, LineEcho, poll_interval=0.01) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"stdlib\n")
        assert client.recv(10) == b"stdlib\n"


def test_a_name_like_module_attr_is_imported() -> None:
    with (
        sockshock.serving("sockshock.socketserver:UDPServer", DatagramEcho) as srv,
        srv.connect() as client,
    ):
        client.send(b"x")
        assert client.recv(10) == b"x"
        assert srv.type == socket.SOCK_DGRAM


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_many_forked_failures_are_all_collected() -> None:
    # More than net.unix.max_dgram_qlen (often 10): reporting must never block a child.
    class Broken(ss.BaseRequestHandler):
        def handle(self) -> None:
            raise KeyError(self.request.recv(10).decode())

    with (
        pytest.raises(KeyError) as info,
        sockshock.serving("ForkingTCPServer", Broken, shutdown_timeout=2) as srv,
    ):
        for i in range(15):
            with srv.connect() as client:
                client.sendall(b"%d" % i)
                assert client.recv(10) == b""
    notes = info.value.__notes__
    assert sum("also, a request handler raised KeyError" in note for note in notes) == 14


class _Replies(ss.StreamRequestHandler):
    """Answers each line, and notes how the conversation ended."""

    ended: ClassVar[list[str]] = []

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(b"got " + line)
        _Replies.ended.append("end of file")


@pytest.mark.parametrize(
    ("server_class", "tls"),
    [
        ("TCPServer", False),
        ("ThreadingTCPServer", False),
        ("ThreadPoolTCPServer", False),
        ("ThreadingUnixStreamServer", False),
        ("ThreadingTCPServer", True),
        pytest.param(
            "ForkingTCPServer",
            False,
            marks=pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
        ),
    ],
)
def test_clients_left_open_end_the_conversation_instead_of_the_stop_timing_out(
    server_class: str, tls: bool
) -> None:
    """A client from connect() left open when the block ends (by mistake, or because
    the block raised) gets end of file after what it sent: the handler answers it,
    ends normally and the server stops at once -- no ShutdownTimeout."""
    if tls:
        pytest.importorskip("trustme")
    _Replies.ended.clear()
    with sockshock.serving(server_class, _Replies, tls=tls, shutdown_timeout=3) as srv:
        answered = srv.connect(tls=tls)
        answered.sendall(b"one\n")
        assert answered.recv(100) == b"got one\n"
        unread = srv.connect(tls=tls)
        unread.sendall(b"two\n")  # its answer is never read: the block ends first
    assert srv.wait_stopped(0)
    if server_class != "ForkingTCPServer":  # (a forked child's list is its own)
        assert sorted(_Replies.ended) == ["end of file", "end of file"]
    assert answered.fileno() == -1  # and closed after the stop
    assert unread.fileno() == -1


def test_a_block_that_raises_with_a_client_open_stops_at_once() -> None:
    with (
        pytest.raises(KeyError, match="boom"),
        sockshock.serving("ThreadingTCPServer", LineEcho, shutdown_timeout=3) as srv,
    ):
        client = srv.connect()
        client.sendall(b"x\n")
        assert client.recv(10) == b"x\n"
        raise KeyError("boom")
    assert srv.wait_stopped(0)


def test_stdlib_threading_datagram_handlers_still_reply_while_the_server_closes() -> None:
    """The standard library's ThreadingUDPServer.server_close() closes the socket,
    then joins the handlers (their replies fail with EBADF). Run by the harness, its
    handlers are joined first. The handler here replies only once the serving loop
    has returned -- exactly when the stdlib would close the socket under it."""
    import socketserver as stdlib

    class LateReply(stdlib.DatagramRequestHandler):
        def handle(self) -> None:
            run = self.server._sockshock_test_run
            deadline = time.monotonic() + 5
            while run.phase == "serving" and time.monotonic() < deadline:
                time.sleep(0.001)
            self.wfile.write(b"late " + self.packet)

    with sockshock.serving(stdlib.ThreadingUDPServer, LateReply) as srv:
        srv.server._sockshock_test_run = srv._run
        client = srv.connect()
        client.send(b"x")
    assert srv.errors == []  # before: OSError(EBADF) from the reply
    assert client.fileno() == -1


def test_an_instance_something_already_serves_is_refused_up_front() -> None:
    """Library code often starts the loop itself (dnslib's start_thread(), a
    werkzeug server run in a thread): two loops on one server cannot be stopped
    properly, so adopting it is refused, naming the thread -- nothing is left."""
    server = ss.ThreadingTCPServer(("127.0.0.1", 0), LineEcho)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.01,), daemon=True, name="library loop"
    )
    thread.start()
    try:
        # One round trip: the loop is running (its wake-up pair made) before the audit.
        with socket.create_connection(server.server_address, timeout=5) as client:
            client.sendall(b"x\n")
            assert client.recv(10) == b"x\n"
        with (
            sockshock.audit(),
            pytest.raises(
                sockshock.errors.InvalidArgument, match="'library loop' is already running"
            ),
            sockshock.serving(server),
        ):
            raise AssertionError("adopted anyway")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    with (
        sockshock.serving(server_copy := ss.ThreadingTCPServer(("127.0.0.1", 0), LineEcho)) as srv,
        srv.connect() as client,
    ):  # a server nothing serves yet: adopted
        client.sendall(b"x\n")
        assert client.recv(10) == b"x\n"
    assert server_copy.socket.fileno() == -1


class _ReadsALine(ss.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()


@pytest.mark.parametrize("attrs", [{"daemon_threads": True}, {"block_on_close": False}])
def test_stopping_is_timed_as_the_server_closes(attrs: dict[str, Any]) -> None:
    """assert_stops_within() times shutdown() + server_close(): a server that does
    not join its handler threads (daemon_threads, block_on_close=False -- werkzeug's
    threaded server) stops at once with busy and stalled clients; those handlers end
    when the block does (the harness ends its clients), and nothing is left."""
    with sockshock.audit(), sockshock.serving("ThreadingTCPServer", _ReadsALine, **attrs) as srv:
        srv.assert_stops_within(0.2, busy=3, stalled=1)  # before: the handlers' 0.5 s
    with (
        pytest.raises(sockshock.errors.ShutdownTooSlow, match="3 busy and 1 stalled"),
        sockshock.serving("ThreadingTCPServer", _ReadsALine, shutdown_timeout=0.5) as srv,
    ):
        srv.assert_stops_within(0.05, busy=3, stalled=1, tolerance=1, slack=0)


def test_a_unix_path_may_be_a_pathlib_path(tmp_path: Path) -> None:
    path = tmp_path / "p.sock"
    with (
        sockshock.serving("UnixStreamServer", LineEcho, address=path) as srv,
        srv.connect() as client,
    ):
        assert srv.address == str(path)
        client.sendall(b"path\n")
        assert client.recv(10) == b"path\n"
    assert not path.exists()  # the harness removes the socket file it bound


def test_valid_standard_settings_are_accepted() -> None:
    with (
        sockshock.serving(
            "ThreadingTCPServer",
            LineEcho,
            timeout=None,
            daemon_threads=True,
            block_on_close=False,
            allow_reuse_address=True,
            request_queue_size=0,
        ) as srv,
        srv.connect() as client,
    ):
        assert srv.server.daemon_threads is True
        client.sendall(b"ok\n")
        assert client.recv(10) == b"ok\n"


def test_a_near_miss_can_be_set_through_a_subclass_as_the_error_says() -> None:
    class MyThreadingTCPServer(ss.ThreadingTCPServer):
        timed_out = True

    with sockshock.serving(MyThreadingTCPServer, LineEcho, timed_out=False) as srv:
        assert srv.server.timed_out is False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_serving_loop_stuck_in_collect_children_is_ended_not_abandoned() -> None:
    class NoChildren(ss.ForkingTCPServer):
        max_children = 0  # collect_children() loops on waitpid() for good

    with (
        sockshock.audit(),
        pytest.raises(sockshock.errors.ShutdownTimeout) as info,
        sockshock.serving(NoChildren, LineEcho, shutdown_timeout=0.3) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"x\n")
        assert client.recv(10) == b"x\n"
    assert "in collect_children" in str(info.value)
    assert "the harness ended it" in str(info.value)
    assert not srv.thread.is_alive()  # and audit(): no descriptor left behind


def test_connect_checks_its_arguments_before_connecting() -> None:
    accepted: list[Any] = []

    class Notes(ss.BaseRequestHandler):
        def handle(self) -> None:
            accepted.append(self.client_address)

    with sockshock.serving("TCPServer", Notes) as srv:
        for bad in ({"tls": "yes"}, {"tls": True}, {"timeout": -1}):
            with pytest.raises(sockshock.errors.InvalidArgument):
                srv.connect(**bad)
        assert srv._clients == []
        with srv.connect() as client:  # the one connection the server ever saw
            assert client.recv(1) == b""
    assert len(accepted) == 1


def test_temporary_paths_stay_in_the_private_directory() -> None:
    with sockshock.serving("TCPServer", LineEcho) as srv:
        path = srv.temporary_path("data.sock")
        assert os.path.dirname(path) == srv._directory
    assert not os.path.exists(os.path.dirname(path))


def test_the_fixture_takes_server_and_handler_class_as_keywords(sockshock: Any) -> None:
    """As the README documents: serve(server="ThreadingTCPServer", handler_class=None,
    *, faults=None, **options) -- by keyword too, not as server attributes."""
    for srv in (
        sockshock.serve(server="ThreadPoolTCPServer", handler_class=LineEcho),
        sockshock.serve("ThreadPoolTCPServer", handler_class=LineEcho),
    ):
        assert isinstance(srv.server, ss.ThreadPoolTCPServer)
        assert not hasattr(srv.server, "server")
    srv = sockshock.serve(handler_class=LineEcho)
    assert isinstance(srv.server, ss.ThreadingTCPServer)
    with srv.connect() as client:
        client.sendall(b"kw\n")
        assert client.recv(10) == b"kw\n"


def test_the_fixture_takes_one_spelling_of_its_arguments(sockshock: Any) -> None:
    """serving()'s order only: a handler first (sockshock 0.1's order, never released)
    is a server class that is not one, and a server given twice is Python's own error."""
    from sockshock.errors import InvalidArgument

    with pytest.raises(TypeError, match="multiple values for argument 'server'"):
        sockshock.serve("TCPServer", LineEcho, server="ThreadingTCPServer")
    with pytest.raises(TypeError, match="multiple values for argument 'handler_class'"):
        sockshock.serve("TCPServer", LineEcho, handler_class=LineEcho)
    with pytest.raises(InvalidArgument, match="LineEcho"):
        sockshock.serve(LineEcho, "ThreadingTCPServer")
    assert sockshock.handles == []


def _echo_through(srv: sockshock.ServerHandle, payload: bytes) -> None:
    with srv.connect() as client:
        if srv.type == socket.SOCK_DGRAM:
            client.send(payload)
            assert client.recv(100) == payload
        else:
            client.sendall(payload + b"\n")
            assert client.recv(100) == payload + b"\n"


@pytest.mark.parametrize(
    ("server_class", "handler", "model"),
    [
        ("ThreadingTCPServer", LineEcho, F.PartialReads(2, probability=1e-9)),
        ("UDPServer", DatagramEcho, F.DropDatagrams(1e-9)),
        pytest.param(
            "ForkingTCPServer",
            LineEcho,
            F.PartialReads(2, probability=1e-9),
            marks=pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
        ),
    ],
)
def test_a_model_reached_but_not_drawn_is_no_warning(
    server_class: str, handler: Any, model: Any
) -> None:
    """Whether a probabilistic model fires is the draw's business: its silence is
    never a warning (under filterwarnings = error it would fail tests at random)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sockshock.serving(server_class, handler, faults=[model]) as srv:
            _echo_through(srv, b"drawn")
        assert srv.plan is not None
        assert srv.plan.log == []
    assert [w for w in caught if issubclass(w.category, sockshock.errors.FaultNeverFired)] == []


@pytest.mark.parametrize(
    "server_class",
    [
        "ThreadingTCPServer",
        pytest.param(
            "ForkingTCPServer",
            marks=pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
        ),
    ],
)
def test_a_model_whose_scope_missed_everything_warns_at_the_users_with(server_class: str) -> None:
    with (
        pytest.warns(sockshock.errors.FaultNeverFired) as caught,
        sockshock.serving(
            server_class, LineEcho, faults=[F.PartialReads(2, connections=[5])], seed=7
        ) as srv,
    ):
        _echo_through(srv, b"missed")
    # (3.12+ also warns that ForkingTCPServer forks a multi-threaded process)
    (warning,) = [w for w in caught if issubclass(w.category, sockshock.errors.FaultNeverFired)]
    assert str(warning.message) == (
        f"PartialReads(connections=(5,), max_chunk=2) never fired while {server_class} ran "
        "(plan seed 7): its scope took in no operation, so it could not have fired "
        "whatever the seed"
    )
    assert warning.filename == __file__

"""Nothing left behind, no false verdicts (issue 19): forked children that keep the
test's clients open, socket files, stray threads, signals, bounded waits, frames the
harness kept alive, failed TLS handshakes, descriptors made non-blocking with fcntl,
plugins that import ``http.server`` before ``--sockshock-install``."""

from __future__ import annotations

import gc
import inspect
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import sockshock
from sockshock import clients, scenarios
from sockshock import faults as F
from sockshock import socketserver as ss
from sockshock.errors import InvalidArgument
from sockshock.handlers import DatagramEcho, LineEcho

HAS_UNIX = hasattr(socket, "AF_UNIX")


# -- item 2: an explicit Unix address= leaves no socket file behind -----------------


@pytest.mark.skipif(not HAS_UNIX, reason="needs Unix sockets")
@pytest.mark.parametrize(
    ("server_class", "handler"),
    [("UnixStreamServer", LineEcho), ("ThreadingUnixDatagramServer", DatagramEcho)],
)
def test_an_explicit_unix_address_is_removed_at_stop(
    tmp_path: Path, server_class: str, handler: type[Any]
) -> None:
    path = str(tmp_path / "server.sock")
    for _ in range(2):  # the second run finds the path free again
        with sockshock.audit(), sockshock.serving(server_class, handler, address=path) as srv:
            assert os.path.exists(path)
            assert srv.address == path
        assert not os.path.exists(path)


@pytest.mark.skipif(not HAS_UNIX, reason="needs Unix sockets")
def test_a_file_that_replaced_the_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "server.sock"
    with sockshock.serving("UnixStreamServer", LineEcho, address=str(path)):
        path.unlink()
        path.write_text("not a socket: someone else's")
    assert path.read_text() == "not a socket: someone else's"


# -- item 7: wait_stopped() has a bounded default ----------------------------------


def test_wait_stopped_has_a_bounded_default() -> None:
    default = inspect.signature(sockshock.ServerHandle.wait_stopped).parameters["timeout"].default
    assert isinstance(default, float)
    assert 0 < default <= 60
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        assert srv.wait_stopped(0.01) is False  # nothing stops it
    assert srv.wait_stopped() is True


def test_wait_stopped_refuses_no_bound() -> None:
    with sockshock.serving("TCPServer", LineEcho) as srv, pytest.raises(InvalidArgument) as info:
        srv.wait_stopped(None)  # type: ignore[arg-type]
    assert "timeout=None" in str(info.value)


# -- item 8: a kept handler error holds no frames (and so no sockets) ----------------


class _FinishFails(ss.StreamRequestHandler):
    """finish() raises before closing its files, as xmlrpc's on EPIPE can."""

    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())

    def finish(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("server_class", ["TCPServer", "ThreadingTCPServer"])
def test_an_expected_error_keeps_no_sockets_alive(server_class: str) -> None:
    gc.collect()
    with (
        sockshock.audit(),
        sockshock.serving(server_class, _FinishFails, expect_errors=BrokenPipeError) as srv,
    ):
        with srv.connect() as client:
            client.sendall(b"x\n")
            assert client.recv(10) == b"x\n"
            assert client.recv(10) == b""  # the server closed its end
        kept = srv.errors
    # What users need is still there: type, message, where, the formatted traceback.
    (failure,) = kept
    assert isinstance(failure.exception, BrokenPipeError)
    assert "in finish" in failure.traceback
    assert failure.exception.__traceback__ is not None  # re-raisable with its frames' lines
    frames = []
    tb = failure.exception.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    assert not any(
        isinstance(value, socket.socket) and value.fileno() != -1
        for frame in frames
        for value in frame.f_locals.values()
    )


# -- item 1: a forked child keeps none of the test's client sockets open ------------

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


class _MarksEOF(ss.BaseRequestHandler):
    """Reads until end of file, then leaves a file named after what it read."""

    def handle(self) -> None:
        data = b""
        while chunk := self.request.recv(100):
            data += chunk
        Path(self.server.marks, data.decode() or "nothing").touch()


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.005)
    return False


@needs_fork
@pytest.mark.parametrize("make", ["plain", "connect", "clients"])
def test_closing_a_client_reaches_a_forked_handler(tmp_path: Path, make: str) -> None:
    """Client A connects, then B (whose child inherits A's socket): closing A must
    reach A's handler as end of file while B is still connected."""
    with sockshock.serving("ForkingTCPServer", _MarksEOF, marks=str(tmp_path)) as srv:
        a: Any
        if make == "plain":
            a = socket.create_connection(srv.address, timeout=5)
        elif make == "connect":
            a = srv.connect()
        else:  # a sockshock client: connects, sends nothing, stays until stopped
            a = clients.connect_and_idle(srv.address, duration=30).start()
            assert a.wait_connected(5)
        b = socket.create_connection(srv.address, timeout=5)
        try:
            b.sendall(b"b")
            if make == "clients":
                a.stop()
                mark = tmp_path / "nothing"
            else:
                a.sendall(b"a")
                a.close()
                mark = tmp_path / "a"
            assert _wait_for(mark, 5), "A's handler never saw end of file"
            assert not (tmp_path / "b").exists()
        finally:
            b.close()
        assert _wait_for(tmp_path / "b", 5)


@needs_fork
def test_a_flood_against_a_forking_server_stops_in_time() -> None:
    with sockshock.serving("ForkingTCPServer", LineEcho, shutdown_timeout=5) as srv:
        result = clients.connection_flood(
            srv.address, count=40, concurrency=8, request=b"x\n", until=b"\n", timeout=5
        ).result()
        assert result.established == 40
        # Every child ends as its client leaves: none waits for the stop.
        deadline = time.monotonic() + 5
        while srv.server.active_children and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not srv.server.active_children


@needs_fork
@pytest.mark.parametrize(
    ("scenario", "server_class"),
    [("partial-io", "ForkingTCPServer"), ("slowloris", "ForkingUnixStreamServer")],
)
def test_scenarios_against_forking_servers_stop_within_their_bound(
    scenario: str, server_class: str
) -> None:
    result = scenarios.run(scenarios.load(scenario), server_class=server_class)
    assert next(c for c in result.checks if c.name == "stops within").passed, result.checks


# -- item 9: a failed TLS handshake is dropped and recorded, not a handler error ----


def _reject_certificate(srv: Any) -> None:
    """A client that does not trust sockshock's CA: it rejects the certificate."""
    with srv.connect() as raw, pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def _leave_before_hello(srv: Any) -> None:
    srv.connect().close()


@pytest.mark.parametrize("client", [_reject_certificate, _leave_before_hello])
@pytest.mark.parametrize(
    "server_class",
    ["ThreadingTCPServer", pytest.param("ForkingTCPServer", marks=needs_fork)],
)
def test_a_failed_handshake_does_not_fail_the_block(client: Any, server_class: str) -> None:
    pytest.importorskip("trustme")
    with sockshock.serving(server_class, LineEcho, tls=True) as srv:
        client(srv)
        with srv.connect(tls=True) as good:  # the next client is served
            good.sendall(b"fine\n")
            assert good.recv(10) == b"fine\n"
        deadline = time.monotonic() + 5
        while not srv.failed_handshakes and time.monotonic() < deadline:
            time.sleep(0.005)  # (a forked child reports when its handshake ends)
    (failed,) = srv.failed_handshakes
    assert isinstance(failed.exception, (ssl.SSLError, ConnectionError))
    assert type(failed.exception).__name__ in failed.traceback  # one line, for reports
    assert srv.errors == []
    from sockshock._pytest._fixture import failed_handshake_lines

    assert "1 failed TLS handshake(s), dropped" in failed_handshake_lines(srv)[0]


def test_tls_strict_makes_a_failed_handshake_a_handler_error() -> None:
    pytest.importorskip("trustme")
    with (
        pytest.raises(ssl.SSLError),
        sockshock.serving("ThreadingTCPServer", LineEcho, tls=True, tls_strict=True) as srv,
    ):
        _reject_certificate(srv)
    assert len(srv.failed_handshakes) == 1


def test_tls_strict_is_checked() -> None:
    with pytest.raises(InvalidArgument, match=r"tls_strict=True .* only applies with tls="):
        sockshock.serving("TCPServer", LineEcho, tls_strict=True).__enter__()
    with pytest.raises(InvalidArgument, match="tls_strict='yes'"):
        sockshock.serving("TCPServer", LineEcho, tls=True, tls_strict="yes").__enter__()  # type: ignore[arg-type]


# -- item 10a: a descriptor made non-blocking with fcntl is non-blocking to the layer --


@pytest.mark.skipif(not hasattr(os, "O_NONBLOCK"), reason="needs fcntl")
@pytest.mark.parametrize(
    "faults",
    [[], [F.Stall(0)], [F.Latency(30, direction="both")]],
    ids=["no faults", "stall", "latency"],
)
def test_o_nonblock_set_with_fcntl_gets_eagain_as_from_the_kernel(faults: Any) -> None:
    import fcntl

    seen: list[Any] = []
    done = threading.Event()

    class NonBlocking(ss.BaseRequestHandler):  # as a Redis fake does
        def handle(self) -> None:
            fd = self.request.fileno()
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
            assert self.request.gettimeout() is None  # Python does not know
            for operation in (lambda: self.request.recv(10), lambda: self.request.send(b"x")):
                try:
                    seen.append(operation())
                except OSError as exc:
                    seen.append(type(exc))
            done.set()

    with (
        sockshock.serving("ThreadingTCPServer", NonBlocking, faults=faults, seed=1) as srv,
        srv.connect(),
    ):
        assert done.wait(5), "the handler blocked where the kernel answers EAGAIN"
    # Nothing to read yet: EAGAIN; a send goes out (the kernel's buffer has room)
    # -- or, delayed by Latency, EAGAIN as a non-blocking send that cannot go yet.
    assert seen[0] is BlockingIOError
    assert seen[1] == (BlockingIOError if "Latency" in repr(faults) else 1)

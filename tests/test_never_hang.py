"""Never hang: one bound for the whole stop, nothing left to keep a process alive,
nothing left behind whatever the outcome, and arguments checked before anything
starts. Handlers that are stuck for good run in a subprocess (with a bound): they
must not keep that process alive."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from sockshock._harness import MARGIN, _audit
from sockshock.handlers import DatagramEcho, LineEcho
from tests._support import SUBPROCESS_TIMEOUT, run_pytest

pytest_plugins = ["pytester"]

SCRIPTS = Path(__file__).with_name("scripts")
# A loaded CI machine may take this much longer than the documented bound
# (shutdown_timeout + MARGIN); the bug this guards against overran it by 2-3 s.
# (0.5 s was overrun on a machine with load average 15: issue 19's stress runs.)
SLACK = 1.5


def run_stuck(server_class: str, how: str, *extra: str) -> dict[str, Any]:
    """The stuck-handler script in a subprocess; it must exit on its own."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "stuck_handler.py"), server_class, how, *extra],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize(
    ("server_class", "how"),
    [
        ("TCPServer", "sleep"),
        ("ThreadingTCPServer", "sleep"),
        ("ThreadingTCPServer", "swallow"),
        ("ThreadPoolTCPServer", "sleep"),
        pytest.param(
            "ForkingTCPServer",
            "sleep",
            marks=pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
        ),
    ],
)
def test_a_stuck_handler_cannot_keep_the_process_alive(server_class: str, how: str) -> None:
    result = run_stuck(server_class, how)  # returned: the process exited by itself
    error = result["error"]
    assert error.startswith(f"{server_class} ")
    assert "did not finish within 0.1 s" in error
    assert result["stop"] < 0.1 + MARGIN + SLACK, "the stop overran its bound"
    if server_class.startswith("Forking"):
        # The child is named, with what it was doing, and killed.
        assert "killed (SIGKILL); it was in:" in error
        assert "in handle" in error
    else:
        assert "in handle" in error  # the stuck thread's stack
        assert "abandoned (daemon threads: they cannot keep the process alive)" in error


def test_a_stuck_daemon_handler_is_reported_too() -> None:
    result = run_stuck("ThreadingTCPServer", "sleep", "daemon")
    assert result["error"] is not None, "a sleeping daemon handler passed silently"
    assert "the handler threads did not finish within 0.1 s" in result["error"]


def test_a_stuck_handler_under_pytest_ends_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stuck="""
import threading, time
from sockshock import socketserver as ss

entered = threading.Event()

class Stuck(ss.BaseRequestHandler):
    def handle(self):
        entered.set()
        time.sleep(10**6)

def test_stuck(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", Stuck, shutdown_timeout=0.1)
    srv.connect().sendall(b"x")
    assert entered.wait(30)  # (on a loaded machine the stop could come first)
    assert srv.server.RequestHandlerClass is Stuck
"""
    )
    result = run_pytest(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ShutdownTimeout: ThreadingTCPServer *did not finish*"])


class Waiting(ss.BaseRequestHandler):
    """Waits for ``release`` with no timeout: only the test can end it."""

    release = threading.Event()
    entered = threading.Event()

    def handle(self) -> None:
        Waiting.entered.set()
        Waiting.release.wait()


@pytest.fixture
def waiting() -> Any:
    Waiting.release.clear()
    Waiting.entered.clear()
    yield Waiting
    Waiting.release.set()  # whatever happened, the handler ends


@pytest.mark.parametrize(
    "server_class",
    [
        "TCPServer",
        "ThreadingTCPServer",
        "ThreadPoolTCPServer",
        "ThreadingUDPServer",
        "ThreadPoolUnixDatagramServer",
    ],
)
def test_the_whole_stop_shares_one_bound(server_class: str, waiting: Any) -> None:
    with (
        pytest.raises(sockshock.errors.ShutdownTimeout) as info,
        sockshock.serving(server_class, waiting, shutdown_timeout=0.2) as srv,
    ):
        client = srv.connect()
        client.send(b"x")
        assert waiting.entered.wait(5)
        started = time.monotonic()
    elapsed = time.monotonic() - started
    assert elapsed < 0.2 + MARGIN + SLACK, f"stopping took {elapsed:.3f} s"
    assert "did not finish within 0.2 s" in str(info.value)
    assert "Waiting.release.wait()" in str(info.value)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_that_never_exits_is_named_and_killed() -> None:
    class Forever(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"in the child\n")
            time.sleep(10**6)

    with (
        pytest.raises(sockshock.errors.ShutdownTimeout) as info,
        sockshock.serving("ForkingTCPServer", Forever, shutdown_timeout=0.2) as srv,
        srv.connect() as client,
    ):
        assert client.recv(100) == b"in the child\n"
        # The child can answer before the parent's fork() returned and noted it.
        deadline = time.monotonic() + 5
        while not srv.server.active_children and time.monotonic() < deadline:
            time.sleep(0.001)
        (pid,) = srv.server.active_children
    message = str(info.value)
    assert f"pid {pid} killed (SIGKILL); it was in:" in message
    assert "time.sleep(10**6)" in message or "in handle" in message
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped, not a zombie


def test_a_bad_argument_starts_nothing() -> None:
    with sockshock.audit():
        with (
            pytest.raises(sockshock.errors.InvalidArgument, match="shutdown_timeout='5'"),
            sockshock.serving("ThreadingTCPServer", LineEcho, shutdown_timeout="5"),
        ):
            pass
        with (
            pytest.raises(sockshock.errors.InvalidArgument, match="cannot fire on UDPServer"),
            sockshock.serving("UDPServer", DatagramEcho, faults=[F.PartialReads(3)]),
        ):
            pass


def test_a_failure_after_start_still_cleans_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    class FailsToActivate(ss.UnixStreamServer):
        def server_activate(self) -> None:
            raise OSError("activation failed")

    with (
        sockshock.audit(),
        pytest.raises(OSError, match="activation failed"),
        sockshock.serving(FailsToActivate, LineEcho),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def _outcomes() -> list[Any]:
    class Broken(ss.BaseRequestHandler):
        def handle(self) -> None:
            raise KeyError("broken")

    def ok() -> None:
        with (
            sockshock.serving("ThreadingUnixStreamServer", LineEcho) as srv,
            srv.connect() as client,
        ):
            client.sendall(b"x\n")
            assert client.recv(10) == b"x\n"

    def handler_error(server_class: str = "ThreadingUnixStreamServer") -> None:
        with (
            pytest.raises(KeyError),
            sockshock.serving(server_class, Broken) as srv,
            srv.connect() as client,
        ):
            client.recv(10)

    def body_error() -> None:
        with (
            pytest.raises(ZeroDivisionError),
            sockshock.serving("UnixDatagramServer", DatagramEcho) as srv,
        ):
            srv.connect().send(b"x")
            1 / 0  # noqa: B018

    def bad_argument() -> None:
        with (
            pytest.raises(sockshock.errors.InvalidArgument),
            sockshock.serving("UnixStreamServer", LineEcho, poll_interval=-1),
        ):
            pass

    outcomes = [ok, handler_error, body_error, bad_argument]
    if hasattr(os, "fork"):
        outcomes.append(lambda: handler_error("ForkingUnixStreamServer"))
    return outcomes


def test_nothing_is_left_behind_whatever_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    registered = len(_audit._UNIX_PATHS)
    with sockshock.audit():
        for _ in range(3):
            for outcome in _outcomes():
                outcome()
    assert list(tmp_path.iterdir()) == [], "temporary files were left behind"
    assert len(_audit._UNIX_PATHS) == registered, "the audit's registry grows per cycle"


def test_a_closed_faulty_socket_fails_like_a_closed_socket() -> None:
    layer = sockshock.layer.FaultLayer([F.EOFAfter(10**6)])
    with layer, socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server_side = layer.wrap(listener)
        with socket.create_connection(server_side.getsockname(), timeout=5):
            conn, _ = server_side.accept()
            conn.close()
            with pytest.raises(OSError, match="Bad file descriptor") as info:
                conn.recv(10)
            assert info.value.errno == errno.EBADF  # as a closed socket.socket says
        server_side.close()

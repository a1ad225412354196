"""Nothing left behind, no false verdicts (issue 19): forked children that keep the
test's clients open, socket files, stray threads, signals, bounded waits, frames the
harness kept alive, failed TLS handshakes, descriptors made non-blocking with fcntl,
plugins that import ``http.server`` before ``--sockshock-install``."""

from __future__ import annotations

import contextlib
import gc
import inspect
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sockshock
from sockshock import clients, scenarios
from sockshock import faults as F
from sockshock import socketserver as ss
from sockshock._wire import forks, wait_for_fork
from sockshock.errors import InvalidArgument
from sockshock.handlers import DatagramEcho, LineEcho
from tests._support import SUBPROCESS_TIMEOUT, run_pytest

pytest_plugins = ["pytester"]

HAS_UNIX = hasattr(socket, "AF_UNIX")
#: The bound on waits for what takes milliseconds on a quiet machine (a loaded one
#: may be a hundred times slower; a hang still ends the test).
WAIT = 30.0


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
            a = socket.create_connection(srv.address, timeout=WAIT)
        elif make == "connect":
            a = srv.connect()
        else:  # a sockshock client: connects, sends nothing, stays until stopped
            a = clients.connect_and_idle(srv.address, duration=30).start()
            assert a.wait_connected(WAIT)
        b = socket.create_connection(srv.address, timeout=WAIT)
        try:
            b.sendall(b"b")
            if make == "clients":
                a.stop()
                mark = tmp_path / "nothing"
            else:
                a.sendall(b"a")
                a.close()
                mark = tmp_path / "a"
            assert _wait_for(mark, WAIT), "A's handler never saw end of file"
            assert not (tmp_path / "b").exists()
        finally:
            b.close()
        assert _wait_for(tmp_path / "b", WAIT)


@needs_fork
def test_a_flood_against_a_forking_server_stops_in_time() -> None:
    with sockshock.serving("ForkingTCPServer", LineEcho, shutdown_timeout=30) as srv:
        result = clients.connection_flood(
            srv.address,
            count=40,
            concurrency=8,
            request=b"x\n",
            until=b"\n",
            timeout=WAIT,
            duration=300,
        ).result()
        assert result.established == 40
        # Every child ends as its client leaves: none waits for the stop.
        deadline = time.monotonic() + WAIT
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
    before = forks()
    with srv.connect() as raw, pytest.raises(ssl.SSLCertVerificationError):
        if hasattr(srv.server, "active_children"):  # (no handshake while it forks:
            wait_for_fork(before, WAIT)  # see _wire._forks.wait_for_fork)
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
        deadline = time.monotonic() + WAIT
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
    [[], [F.Stall(0)], [F.Latency(600)]],
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
        assert done.wait(WAIT), "the handler blocked where the kernel answers EAGAIN"
    # Nothing to read yet (or, under Latency, not yet): EAGAIN; a send goes out
    # (the kernel's buffer has room).
    assert seen == [BlockingIOError, 1]


# -- item 12: --sockshock-install with pytest-httpserver installed -------------------


HTTPSERVER_TEST = """
import http.server
import socketserver
import sys

import sockshock.socketserver as ours

def test_built_on_ours(sockshock, httpserver):
    assert socketserver is ours
    assert issubclass(http.server.ThreadingHTTPServer, ours.TCPServer)
    # pytest-httpserver's own server keeps the standard library's, and works.
    assert "pytest_httpserver" in sys.modules
    httpserver.expect_request("/").respond_with_data("plugin ok")
    import urllib.request
    with urllib.request.urlopen(httpserver.url_for("/"), timeout=30) as reply:
        assert reply.read() == b"plugin ok"
    # A server of the test's own, on http.server built on ours, under sockshock.
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    srv = sockshock.serve(http.server.ThreadingHTTPServer, Hello)
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.address[1]}/", timeout=30) as reply:
        assert reply.read() == b"ok"
"""


def test_install_works_with_pytest_httpserver_loaded(pytester: pytest.Pytester) -> None:
    """pytest-httpserver imports werkzeug, so http.server, when pytest loads it --
    before sockshock can install: the install used to be refused."""
    pytest.importorskip("pytest_httpserver")
    pytester.makepyfile(test_http=HTTPSERVER_TEST)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--sockshock-install=on",
        timeout=SUBPROCESS_TIMEOUT,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "sockshock: installed; http.server, werkzeug.serving had been imported by "
            "plugin(s) pytest_httpserver before --sockshock-install*"
        ]
    )
    assert result.ret == 0


# -- items 4 and 5: stray threads and signals cannot keep anything alive or behind ----

SCRIPTS = Path(__file__).with_name("scripts")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie of another parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@contextlib.contextmanager
def _ending_script(how: str) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """``scripts/ending.py HOW`` running, once it printed its forked child's pid and
    its directories; killed (and the child too) whatever happens."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "ending.py"), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child = 0
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, f"ending.py {how} never said it was ready"
        state = json.loads(proc.stdout.readline())
        child = state["child"]
        yield proc, child, state["directories"]
    finally:
        proc.kill()
        proc.wait(timeout=SUBPROCESS_TIMEOUT)
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")


@needs_fork
@needs_proc
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_leaves_no_forked_child_and_no_directory(signame: str) -> None:
    with _ending_script("forking") as (proc, child, directories):
        assert _alive(child)
        assert all(os.path.isdir(d) for d in directories)
        proc.send_signal(getattr(signal, signame))
        status = proc.wait(timeout=SUBPROCESS_TIMEOUT)
        if signame != "SIGINT":  # ended by the signal itself, as without sockshock
            assert status == -getattr(signal, signame)
        assert _gone_within(child, WAIT), f"the forked child outlived the run ({signame})"
        assert not [d for d in directories if os.path.exists(d)]


@needs_fork
@needs_proc
def test_sigkill_leaves_no_forked_child_sleeping() -> None:
    """Nothing can clean up after SIGKILL; a forking server's child still dies with
    the process that forked it (PR_SET_PDEATHSIG) instead of sleeping on."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    with _ending_script("forking") as (proc, child, _):
        proc.kill()
        proc.wait(timeout=SUBPROCESS_TIMEOUT)
        assert _gone_within(child, WAIT), "the forked child outlived its parent"


@needs_fork
@needs_proc
def test_sigterm_ends_a_child_a_handler_forked() -> None:
    with _ending_script("handler-fork") as (proc, child, _):
        proc.terminate()
        assert proc.wait(timeout=SUBPROCESS_TIMEOUT) == -signal.SIGTERM
        assert _gone_within(child, WAIT), "the handler's child outlived the run"


def test_a_stray_non_daemon_thread_cannot_keep_a_script_alive() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "ending.py"), "stray-thread"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 1, proc.stderr  # the uncaught LeakError's status
    assert "LeakError" in proc.stderr
    assert "'stray worker'" in proc.stderr
    assert "non-daemon thread(s) started by request handlers were still running" in proc.stderr


STRAY_THREAD_TEST = """
import threading, time
import sockshock._util._ending as ending
from sockshock import socketserver as ss

ending.EXIT_GRACE = 0.5

class StartsAThread(ss.BaseRequestHandler):
    def handle(self):
        threading.Thread(target=time.sleep, args=(10**6,), name="stray worker", daemon=False).start()
        self.request.sendall(b"started")

def test_stray(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", StartsAThread)
    with srv.connect() as client:
        assert client.recv(10) == b"started"
    assert {MODE}
"""


@pytest.mark.parametrize("mode", ["passes", "fails"])
@pytest.mark.parametrize("workers", [None, "1"])
def test_a_stray_non_daemon_thread_cannot_keep_pytest_alive(
    pytester: pytest.Pytester, mode: str, workers: str | None
) -> None:
    """Passing (the audit fails it at teardown) or failing (the audit does not run),
    in the main process or in an xdist worker: the run ends, with pytest's status."""
    pytester.makepyfile(test_stray=STRAY_THREAD_TEST.replace("{MODE}", str(mode == "passes")))
    result = run_pytest(pytester, *(["-n", workers] if workers else []))
    assert result.ret == 1  # a failure (the test's, or the audit's): status 1
    if workers is None:
        result.stderr.fnmatch_lines(["*non-daemon thread(s) started by request handlers*"])


TIMED_OUT_TEST = """
import json, os, time
from sockshock import socketserver as ss

class SleepsInChild(ss.BaseRequestHandler):
    def handle(self):
        with open("child.pid", "w") as f:
            f.write(str(os.getpid()))
        time.sleep(10**6)

def test_times_out(sockshock):
    srv = sockshock.serve("ForkingTCPServer", SleepsInChild)
    unix = sockshock.serve("ThreadingUnixStreamServer", SleepsInChild)
    with open("directories.json", "w") as f:
        json.dump([srv._run.reporter.directory, os.path.dirname(unix.address)], f)
    srv.connect().sendall(b"x")
    deadline = time.monotonic() + 30
    while not os.path.exists("child.pid") and time.monotonic() < deadline:
        time.sleep(0.01)  # (the child runs before pytest-timeout fires, at 10 s)
    time.sleep(60)
"""


@needs_fork
@needs_proc
def test_pytest_timeouts_thread_method_leaves_nothing_behind(pytester: pytest.Pytester) -> None:
    """pytest-timeout's thread method ends the process with os._exit(1): no teardown
    runs. sockshock's cleanup runs first."""
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(test_timeout=TIMED_OUT_TEST)
    result = run_pytest(pytester, "--timeout=10", "--timeout-method=thread")
    child = int((pytester.path / "child.pid").read_text())
    try:
        assert result.ret == 1
        result.stdout.fnmatch_lines(["*Timeout*"])
        assert _gone_within(child, WAIT), "the forked child outlived the run"
        directories = json.loads((pytester.path / "directories.json").read_text())
        assert not [d for d in directories if os.path.exists(d)]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)

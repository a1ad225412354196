"""The pytest plugin, driven through pytester in subprocesses."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests._support import run_pytest

pytest_plugins = ["pytester"]

ECHO_TESTS = """
import threading
import pytest
from sockshock import faults as F
from sockshock import socketserver
from sockshock.handlers import LineEcho

def read_line(client):
    data = b""
    while not data.endswith(b"\\n"):
        data += client.recv(100)
    return data

def test_echo(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", LineEcho)
    with srv.connect() as client:
        client.sendall(b"hi\\n")
        assert read_line(client) == b"hi\\n"

@pytest.mark.faults(F.PartialReads(1), F.PartialWrites(2))
@pytest.mark.sockshock_servers(transport="stream", family="unix")
def test_matrix(sockshock, server_class):
    srv = sockshock.serve(server_class, LineEcho)
    with srv.connect() as client:
        client.sendall(b"hello\\n")
        assert read_line(client) == b"hello\\n"
    print("SEED", sockshock.seed, len(srv.plan.log))
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_pytest(pytester, "--strict-markers", "-W", "error", *args)


def test_fixture_matrix_and_readable_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_echo=ECHO_TESTS)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "*test_echo.py::test_matrix[[]UnixStreamServer[]] PASSED*",
            "*test_echo.py::test_matrix[[]ForkingUnixStreamServer[]] PASSED*",
            "*test_echo.py::test_matrix[[]ThreadPoolUnixStreamServer[]] PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(["sockshock: session seed *"])


def test_a_failing_test_reports_its_seed_rerun_command_and_fault_log(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_fail="""
import pytest
from sockshock import faults as F
from sockshock.handlers import LineEcho

@pytest.mark.faults(F.PartialWrites(1))
def test_fails(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", LineEcho)
    with srv.connect() as client:
        client.sendall(b"abc\\n")
        data = b""
        while not data.endswith(b"\\n"):
            data += client.recv(100)
    assert data == b"something else"
"""
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- sockshock (call) -*",
            "fault seed: * (session seed *)",
            "re-run this test with the same faults:",
            "  pytest test_fail.py::test_fails --sockshock-seed=*",
            "ThreadingTCPServer at *",
            "FaultPlan(seed=*): * fault(s) injected",
            "*send #0 @0 (4 bytes): PartialWrites(max_chunk=1) -> limit=1*",
        ]
    )
    seed = re.search(r"--sockshock-seed=(\d+)", result.stdout.str()).group(1)  # type: ignore[union-attr]
    log = [line for line in result.stdout.lines if "PartialWrites(max_chunk=1) ->" in line]
    again = run(pytester, f"--sockshock-seed={seed}")
    again.assert_outcomes(failed=1)
    assert [line for line in again.stdout.lines if "PartialWrites(max_chunk=1) ->" in line] == log


SEED_RECORDER = """
import os, pathlib, pytest
from sockshock.pytest_plugin import SESSION_SEED

@pytest.mark.parametrize("n", range(6))
def test_records_its_seed(sockshock, request, n):
    out = pathlib.Path(os.environ["SEED_DIR"])
    out.joinpath(f"{n}.seed").write_text(
        f"{sockshock.seed} {request.config.stash[SESSION_SEED]}")
"""


def _seeds(directory: Any) -> dict[str, tuple[str, str]]:
    return {p.name: tuple(p.read_text().split()) for p in directory.iterdir()}  # type: ignore[misc]


def test_seeds_are_the_same_whichever_xdist_worker_runs_a_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_seeds=SEED_RECORDER)
    serial_dir, parallel_dir, free_dir = (
        pytester.mkdir(name) for name in ("serial", "parallel", "free")
    )
    monkeypatch.setenv("SEED_DIR", str(serial_dir))
    run(pytester, "-p", "no:xdist", "--sockshock-session-seed=4242").assert_outcomes(passed=6)
    monkeypatch.setenv("SEED_DIR", str(parallel_dir))
    run(pytester, "-n", "2", "--sockshock-session-seed=4242").assert_outcomes(passed=6)
    assert _seeds(serial_dir) == _seeds(parallel_dir)
    assert len({seed for seed, _ in _seeds(serial_dir).values()}) == 6  # one per test
    # Without a fixed session seed, the controller's reaches every worker.
    monkeypatch.setenv("SEED_DIR", str(free_dir))
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=6)
    session_seeds = {session for _, session in _seeds(free_dir).values()}
    assert len(session_seeds) == 1
    result.stdout.fnmatch_lines([f"sockshock: session seed {session_seeds.pop()} *"])


def test_a_leak_is_reported_and_can_be_switched_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leak="""
import threading, pytest

stop = threading.Event()

def test_leaks_a_thread(sockshock):
    threading.Thread(target=stop.wait, args=(30,), name="the-leaky-one").start()

@pytest.mark.sockshock(audit=False)
def test_leaks_but_audit_is_off(sockshock):
    threading.Thread(target=stop.wait, args=(30,), name="tolerated").start()

def teardown_module():
    stop.set()
"""
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_thread*",
            "*LeakError: leaked:",
            "*1 threads:",
            "*'the-leaky-one' (daemon=False, started by this block):",
        ]
    )
    assert "tolerated" not in result.stdout.str()
    run(pytester, "--sockshock-audit=off").assert_outcomes(passed=2)


def test_handler_errors_fail_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_handler="""
from sockshock import socketserver

class Broken(socketserver.BaseRequestHandler):
    def handle(self):
        raise KeyError("inside the handler")

def test_uses_a_broken_handler(sockshock):
    srv = sockshock.serve("TCPServer", Broken)
    with srv.connect() as client:
        client.recv(10)
"""
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*KeyError: 'inside the handler'*"])


def test_shutdown_regression_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shutdown="""
import pytest
from sockshock import socketserver

class Patient(socketserver.StreamRequestHandler):
    timeout = 0.05    # gives up on silent clients quickly
    def handle(self):
        try:
            self.rfile.readline()
        except TimeoutError:
            pass

class Forever(socketserver.StreamRequestHandler):
    def handle(self):
        self.rfile.readline()

@pytest.mark.shutdown_within(0.5, busy=5, stalled=1)
def test_patient_server(sockshock):
    sockshock.serve("ThreadingTCPServer", Patient)

@pytest.mark.shutdown_within(0.1, busy=2, stalled=1)
def test_server_that_waits_forever(sockshock):
    sockshock.serve("ThreadingTCPServer", Forever)
"""
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ShutdownTooSlow: ThreadingTCPServer took * s to shut down and close with 2 busy "
            "and 1 stalled clients; the bound is 0.1 s*",
        ]
    )


def test_markers_options_and_ini_are_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.sockshock_servers(transport="streem")
def test_matrix(sockshock, server_class):
    pass
"""
    )
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*transport='streem' must be one of 'stream', 'datagram' "
            "(from @pytest.mark.sockshock_servers on test_bad.py::test_matrix)*"
        ]
    )
    pytester.makepyfile(test_bad="def test_nothing(sockshock): pass\n")
    pytester.makeini("[pytest]\nsockshock_audit = maybe\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: sockshock: audit='maybe' from ini setting sockshock_audit: expected on or off"]
    )


def test_marker_beats_command_line_beats_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsockshock_seed = 11\n")
    pytester.makepyfile(
        test_precedence="""
import pytest

def test_ini(sockshock):
    print("SEED", sockshock.seed)

@pytest.mark.sockshock(seed=33)
def test_marker(sockshock):
    print("SEED", sockshock.seed)
"""
    )
    assert re.findall(r"SEED (\d+)", run(pytester, "-s").stdout.str()) == ["11", "33"]
    assert re.findall(r"SEED (\d+)", run(pytester, "-s", "--sockshock-seed=22").stdout.str()) == [
        "22",
        "33",
    ]


def test_the_plugin_does_not_import_hypothesis_or_trustme(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_imports="""
import sys

def test_lazy():
    assert "hypothesis" not in sys.modules
    assert "trustme" not in sys.modules
"""
    )
    run(pytester, "-p", "no:hypothesispytest").assert_outcomes(passed=1)

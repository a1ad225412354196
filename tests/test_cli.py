"""`sockshock run`: the main job, through the real command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def sockshock(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sockshock", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_prints_progress_and_a_matrix_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = sockshock("run", "--server", "ThreadPoolUDPServer", "--json", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[  1/3] ThreadPoolUDPServer" in result.stderr  # progress
    header, row = result.stdout.strip().splitlines()[:2]
    assert header.split() == [
        "server",
        "class",
        "echo",
        "lost",
        "datagrams",
        "abrupt",
        "shutdown",
        "leak",
        "audit",
    ]
    assert row.startswith("ThreadPoolUDPServer")
    data = json.loads(out.read_text())
    assert data["passed"] is True
    assert {(r["check"], r["outcome"]) for r in data["results"]} == {
        ("echo", "pass"),
        ("lost datagrams", "pass"),
        ("abrupt shutdown", "pass"),
    }
    assert data["leak_audit"] == {"ThreadPoolUDPServer": "pass"}


def test_run_finds_a_broken_handler_and_exits_non_zero(tmp_path: Path) -> None:
    result = sockshock(
        "run",
        "--handler",
        "sockshock.handlers:NaiveRecvEcho",
        "--server",
        "ThreadingTCPServer",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert (
        "FAIL ThreadingTCPServer x partial reads: ValueError: incomplete message b'p': "
        "expected a whole line"
    ) in result.stdout
    assert "5 checks in" in result.stdout
    # A check its progress line called "expected" that failed at teardown says so
    # there too: the progress and the summary never disagree.
    for line in result.stderr.splitlines():
        if " slow client " in line and line.startswith("[") and " expected " in line:
            assert (
                "slow client      FAIL     (was expected: at teardown, ValueError" in result.stderr
            )
    seed = int(
        re.search(
            r"\(fault seed (\d+): add --seed \1 to re-run it with the same "
            r"faults\)",
            result.stdout,
        ).group(1)
    )  # type: ignore[union-attr]
    again = sockshock(
        "run",
        "--handler",
        "sockshock.handlers:NaiveRecvEcho",
        "--server",
        "ThreadingTCPServer",
        "--seed",
        str(seed),
        cwd=tmp_path,
    )
    assert again.returncode == 1
    assert f"(fault seed {seed}: add --seed {seed}" in again.stdout


def test_a_synchronous_server_is_expected_to_starve(tmp_path: Path) -> None:
    result = sockshock("run", "--server", "TCPServer", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    row = result.stdout.strip().splitlines()[1]
    assert "expected" in row  # the slow-client column


def test_bad_arguments_get_one_clear_error(tmp_path: Path) -> None:
    result = sockshock("run", "--server", "ThreadingTCPServr", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "sockshock run: --server='ThreadingTCPServr' is not a server class of "
        "sockshock.socketserver; did you mean 'ThreadingTCPServer'?"
    )


HTTP_HANDLER = '''
import http.server

class Hello(http.server.BaseHTTPRequestHandler):
    """Answers with a Date header: volatile bytes that change every second."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass
'''


def test_a_handler_in_the_current_directory_on_a_stdlib_server(tmp_path: Path) -> None:
    (tmp_path / "myservers.py").write_text(HTTP_HANDLER)
    result = sockshock(
        "run",
        "--handler",
        "myservers:Hello",
        "--server",
        "http.server:ThreadingHTTPServer",
        "--request",
        "GET / HTTP/1.0\\r\\n\\r\\n",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr  # Date headers may differ
    assert result.stdout.strip().splitlines()[1].startswith("ThreadingHTTPServer")


def test_a_mismatch_says_where_the_replies_differ(tmp_path: Path) -> None:
    (tmp_path / "myservers.py").write_text(HTTP_HANDLER)
    result = sockshock(
        "run",
        "--handler",
        "myservers:Hello",
        "--server",
        "ThreadingTCPServer",
        "--request",
        "GET / HTTP/1.0\\r\\n\\r\\n",
        "--expect-prefix",
        "HTTP/1.0 404",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert (
        "FAIL ThreadingTCPServer x echo: AssertionError: the reply's start differs at byte "
        "9 of 12 (expected 12 bytes): got ...b'HTTP/1.0 200'..., expected "
        "...b'HTTP/1.0 404'..."
    ) in result.stdout


def test_servers_a_handler_does_not_support_are_skipped_with_one_line_per_cause(
    tmp_path: Path,
) -> None:
    result = sockshock(
        "run",
        "--handler",
        "http.server:SimpleHTTPRequestHandler",
        "--request",
        "HEAD / HTTP/1.0\\r\\n\\r\\n",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("skipped on")]
    assert line.startswith(
        "skipped on UnixStreamServer, ThreadingUnixStreamServer, "
        "ForkingUnixStreamServer, ThreadPoolUnixStreamServer: unsupported: "
        "the handler fails even without faults (IndexError"
    )

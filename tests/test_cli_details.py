"""`sockshock run`'s failure details in full, in text and in --json: a handler
error's type, message and where it was raised; leaked sockets with their local and
peer addresses; what a scenario's failed expectation was made of."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

# Line 11 raises under partial reads (one recv is not the whole request); line 17
# keeps a duplicate of every connection (a descriptor leak); line 23 always fails.
HANDLERS = """\
import json
from sockshock import socketserver

KEPT = []


class ParsesOneRecv(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request.recv(1024)
        if data:
            self.request.sendall(json.dumps(json.loads(data)).encode())


class Leaky(socketserver.StreamRequestHandler):
    def handle(self):
        KEPT.append(self.request.dup())
        for line in self.rfile:
            self.wfile.write(line)


class Broken(socketserver.StreamRequestHandler):
    def handle(self):
        raise KeyError("no such thing")
"""
REQUEST = '{"a": 1}\\n'


def sockshock(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "myhandlers.py").write_text(HANDLERS)
    return subprocess.run(
        [sys.executable, "-m", "sockshock", "run", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _results(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["results"]  # type: ignore[no-any-return]


def test_a_handler_error_says_where_it_was_raised_and_which_line_of_yours_called(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    result = sockshock(
        tmp_path,
        "--handler",
        "myhandlers:ParsesOneRecv",
        "--server",
        "ThreadingTCPServer",
        "--request",
        REQUEST,
        "--json",
        str(out),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "x partial reads: JSONDecodeError" in line)
    assert lines[at].startswith("FAIL ThreadingTCPServer x partial reads: JSONDecodeError: ")
    assert re.fullmatch(
        r"    raised at \S*json\S*decoder\.py:\d+, in raw_decode\(\)", lines[at + 1]
    )
    assert lines[at + 2] == "    called from myhandlers.py:11, in handle()"
    # The faults it ran under, connection by connection.
    log = lines[lines.index("    faults injected:", at) :]
    assert log[1].startswith("      ThreadingTCPServer at 127.0.0.1:")
    assert any("PartialReads(max_chunk=1) -> limit=1" in line for line in log[:14])
    (failed,) = [r for r in _results(out) if r["check"] == "partial reads"]
    assert "recv #0 @0" in failed["fault_log"]
    error = failed["error"]
    assert error["type"] == "JSONDecodeError"
    assert error["message"].startswith("Expecting")
    assert error["where"]["function"] == "raw_decode"
    assert error["caller"] == {
        "file": str(tmp_path / "myhandlers.py"),
        "line": 11,
        "function": "handle",
    }
    assert 'myhandlers.py", line 11, in handle' in error["traceback"]
    assert failed["reason"] == f"JSONDecodeError: {error['message']}"


def test_a_forked_childs_error_is_located_too(tmp_path: Path) -> None:
    result = sockshock(
        tmp_path,
        "--handler",
        "myhandlers:ParsesOneRecv",
        "--server",
        "ForkingTCPServer",
        "--request",
        REQUEST,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "x partial reads: JSONDecodeError" in line)
    assert lines[at + 2] == "    called from myhandlers.py:11, in handle()"
    assert lines[at + 3].startswith("    raised in forked child pid ")


def test_leaked_sockets_show_their_local_and_peer_addresses(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = sockshock(
        tmp_path,
        "--handler",
        "myhandlers:Leaky",
        "--server",
        "ThreadingTCPServer",
        "--json",
        str(out),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    tcp = r"TCP 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:\d+ \([^()]+\)"
    headline = re.search(
        rf"^FAIL ThreadingTCPServer x leak audit: echo left 1 descriptor \(fd \d+: {tcp}\) behind$",
        result.stdout,
        re.M,
    )
    assert headline, result.stdout
    assert re.search(rf"^    1 descriptors:\n      fd \d+: {tcp}$", result.stdout, re.M)
    assert "socket:[" not in result.stdout
    data = json.loads(out.read_text())
    (echo,) = [r for r in data["results"] if r["check"] == "echo"]
    (descriptor,) = echo["leaks"]["descriptors"]
    assert re.fullmatch(rf"fd \d+: {tcp}", descriptor)
    assert data["leak_audit"]["ThreadingTCPServer"].startswith("echo left 1 descriptor (fd ")
    assert data["passed"] is False
    # The matrix's audit column says so, and the summary counts the server once.
    assert re.search(r"^ThreadingTCPServer .* FAIL\s*$", result.stdout, re.M)
    assert result.stdout.rstrip().endswith("1 failed")


def test_a_scenarios_handler_errors_and_leaks_in_full(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = sockshock(tmp_path, "partial-io", "--handler", "myhandlers:Broken", "--json", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "partial-io x handler errors:" in line)
    assert re.fullmatch(
        r"    \d+ x KeyError: 'no such thing'|    KeyError: 'no such thing'", lines[at + 1]
    )
    assert lines[at + 2] == "      raised at myhandlers.py:23, in handle()"
    (scenario,) = json.loads(out.read_text())["scenarios"]
    (errors,) = [c for c in scenario["checks"] if c["name"] == "handler errors"]
    assert errors["passed"] is False
    assert errors["errors"][0]["type"] == "KeyError"
    assert errors["errors"][0]["where"]["line"] == 23

    leaky = sockshock(tmp_path, "reset-storm", "--handler", "myhandlers:Leaky", "--json", str(out))
    assert leaky.returncode == 1, leaky.stdout + leaky.stderr
    # Not "no leaks: 1 descriptors": which descriptors, with both ends -- the peer's
    # address is the harness's note once the connection is over.
    assert re.search(
        r"^FAIL reset-storm x no leaks: \d+ descriptors? \(fd \d+: TCP 127\.0\.0\.1:\d+ -> "
        r"127\.0\.0\.1:\d+ ",
        leaky.stdout,
        re.M,
    ), leaky.stdout
    assert re.search(
        r"^      fd \d+: TCP 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ ", leaky.stdout, re.M
    )
    (scenario,) = json.loads(out.read_text())["scenarios"]
    (leaks,) = [c for c in scenario["checks"] if c["name"] == "no leaks"]
    assert leaks["leaks"]["descriptors"]
    assert all(" -> 127.0.0.1:" in d for d in leaks["leaks"]["descriptors"])


def test_a_server_class_with_a_default_handler_is_checked_with_it(tmp_path: Path) -> None:
    # SimpleXMLRPCServer's constructor defaults to SimpleXMLRPCRequestHandler: that
    # handler answers "ping\n" with an HTTP error page; the demo echo handler, which
    # sockshock run used to swap in, would have echoed it.
    out = tmp_path / "out.json"
    result = sockshock(
        tmp_path,
        "--server",
        "xmlrpc.server:SimpleXMLRPCServer",
        "--expect-regex",
        "Bad request syntax",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = {r["check"]: r["outcome"] for r in _results(out)}
    assert outcomes == {
        "echo": "pass",
        "partial reads": "pass",
        "partial writes": "pass",
        "slow client": "expected",  # a synchronous server
        "abrupt shutdown": "pass",
    }

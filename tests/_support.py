"""Small helpers shared by the tests."""

from __future__ import annotations

import functools
import http.server
import socket
import subprocess
import sys
import textwrap
from typing import Any

#: The bound on a subprocess or a pytester run: it only guards against a hang. Runs
#: take seconds on a quiet machine and ten times as long on a loaded one (a busy
#: loop on each core); no test may depend on a quiet machine (issue 19).
SUBPROCESS_TIMEOUT = 600.0
#: The bound on an in-process wait for what takes milliseconds on a quiet machine
#: (a handler starting, a reply, a stop that is already under way).
WAIT = 30.0
#: What a pytester run leaves out: random order, the cache and hypothesis' plugin,
#: so that its outcome and output do not depend on what else is installed.
ISOLATED = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def run_pytest(pytester: Any, *args: str) -> Any:
    """pytest in a subprocess on ``pytester``'s files, :data:`ISOLATED`, bounded by
    :data:`SUBPROCESS_TIMEOUT` (a ``pytest.RunResult``)."""
    return pytester.runpytest_subprocess(*ISOLATED, *args, timeout=SUBPROCESS_TIMEOUT)


@functools.cache
def ipv6_loopback() -> bool:
    """Whether ``::1`` can be bound here (containers often have IPv6 switched off)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def read_line(client: socket.socket) -> bytes:
    """Read up to and including a newline, or to the end of the stream."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = client.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class HelloHTTP(http.server.BaseHTTPRequestHandler):
    """An HTTP handler answering every GET with ``hi`` (and logging nothing)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, *args: Any) -> None:
        pass


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """End ``proc`` if it still runs: SIGTERM, then SIGKILL after :data:`WAIT`;
    reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(WAIT)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` (dedented) in a fresh interpreter, its output captured as text,
    bounded by :data:`SUBPROCESS_TIMEOUT`; the caller judges the exit status."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )

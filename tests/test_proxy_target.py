"""``sockshock run SCENARIO --target HOST:PORT``: the replies through the fault proxy
are judged as the built-in checks judge them -- against the target's own reply
without faults by default, or ``--expect``/``--expect-prefix``/``--expect-regex``
-- instead of counting any reply line as answered."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock._cli import main


class AlwaysError(ss.StreamRequestHandler):
    """A server that answers every request with an error line (redis, asked
    something it does not know)."""

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            for _ in self.rfile:
                self.wfile.write(b"-ERR unknown command\r\n")


class FirstRecvEcho(ss.BaseRequestHandler):
    """Reads the whole line but echoes only what its first recv() returned: right
    only when a request arrives whole."""

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            first = data = self.request.recv(4096)
            while data and not data.endswith(b"\n"):
                data = self.request.recv(4096)
            self.request.sendall(first.rstrip(b"\n") + b"\n")


@contextlib.contextmanager
def target(handler: type[Any]) -> Iterator[str]:
    with sockshock.serving("ThreadingTCPServer", handler) as srv:
        yield f"{srv.address[0]}:{srv.address[1]}"


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out + err


PIECES = """
description = "The request in pieces 30 ms apart (so that they cannot merge)."
duration = 0.05

[[faults]]
model = "PartialReads"
max_chunk = 2

[[faults]]
model = "Latency"
seconds = 0.03

[load]
clients = 3
request = "abcdef\\n"
"""


def test_a_reply_that_differs_under_faults_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scenario = tmp_path / "pieces.toml"
    scenario.write_text(PIECES)
    with target(FirstRecvEcho) as address:
        code, out = run(str(scenario), "--target", address, "--seed", "1", capsys=capsys)
    assert code == 1, out  # before: any reply line counted as answered
    assert "first wrong reply: the reply differs at byte" in out
    assert "the reply without faults: b'abcdef\\n'" in out


def test_the_expected_reply_is_what_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with target(AlwaysError) as address:
        code, out = run(
            "partial-io",
            "--target",
            address,
            "--request",
            "PING\\r\\n",
            "--expect",
            "+PONG\\r\\n",
            capsys=capsys,
        )
        assert code == 1, out
        assert "0 of 10 requests answered" in out
        assert "the reply without faults: b'-ERR unknown command\\r\\n'" in out
        code, out = run("partial-io", "--target", address, "--expect-prefix=-ERR", capsys=capsys)
        assert code == 0, out


def test_expectations_without_target_are_still_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run("partial-io", "--expect", "x", capsys=capsys)
    assert code == 2
    assert "--expect='x' applies to the built-in checks and to scenarios run with --target" in out

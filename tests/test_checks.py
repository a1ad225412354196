"""The built-in checks as plain functions (``_checks``) and ``sockshock.checks``."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from sockshock import socketserver
from sockshock._checks import Expectation, Target, describe_error
from sockshock._checks._checks import (
    Verdict,
    check_echo,
    check_partial_reads,
    check_slow_client,
)
from sockshock.checks import check_server
from sockshock.errors import InvalidArgument
from sockshock.handlers import LineEcho, NaiveRecvEcho

PING = Expectation("exact", b"ping\n")


def test_a_check_that_holds_returns_none() -> None:
    target = Target(socketserver.ThreadingTCPServer, LineEcho, b"ping\n", PING)
    assert check_partial_reads(target, seed=3) is None
    assert check_echo(target) is None


def test_a_check_raises_the_handlers_own_error_with_the_verdict_as_a_note() -> None:
    target = Target(socketserver.ThreadingTCPServer, NaiveRecvEcho, b"ping\n", PING)
    with pytest.raises(ValueError, match=r"incomplete message b'p'") as info:
        check_partial_reads(target, seed=3)
    detail = describe_error(info.value)
    assert detail.where is not None
    assert detail.where.file.endswith("_handlers.py")
    assert detail.where.function == "handle"
    assert any(note.startswith("also, the check saw: the reply") for note in detail.notes)


def test_a_synchronous_server_fails_the_slow_client_check_with_a_verdict() -> None:
    # As a plain function the check says what it saw; `sockshock run` calls it
    # "expected" for a synchronous server.
    target = Target(socketserver.TCPServer, LineEcho, b"ping\n", PING)
    with pytest.raises(Verdict, match="one slow client kept the others waiting") as info:
        check_slow_client(target, seed=3)
    assert isinstance(info.value, AssertionError)


def test_the_checks_and_sockshock_run_need_no_pytest() -> None:
    code = (
        "import sys\n"
        "sys.modules['pytest'] = None  # importing it fails\n"
        "from sockshock._cli import main\n"
        "code = main(['run', '--server', 'ThreadPoolUDPServer'])\n"
        "assert not any(m == '_pytest' or m.startswith('_pytest.') for m in sys.modules)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 checks in" in proc.stdout
    assert "all passed" in proc.stdout


def test_check_server_returns_every_result() -> None:
    results = check_server("ThreadingTCPServer", LineEcho, expect=b"ping\n", seed=5)
    assert [(r.check, r.outcome) for r in results] == [
        ("echo", "pass"),
        ("partial reads", "pass"),
        ("partial writes", "pass"),
        ("slow client", "pass"),
        ("abrupt shutdown", "pass"),
    ]
    assert [r.seed for r in results] == [None, 5, 5, 5, 5]  # the echo check has no faults
    assert all(r.leaks is not None and not r.leaks for r in results)  # audited, clean


def test_check_server_names_every_failure_with_where_and_its_seed() -> None:
    with pytest.raises(AssertionError) as info:
        check_server(socketserver.ThreadingTCPServer, NaiveRecvEcho, seed=11)
    message = str(info.value)
    assert message.startswith("2 of 5 checks failed:")
    assert (
        "FAIL ThreadingTCPServer x partial reads: ValueError: incomplete message b'p': "
        "expected a whole line (fault seed 11: seed=11 re-runs it)"
    ) in message
    assert re.search(r"raised at \S*_handlers\.py:\d+, in handle\(\)", message)


def test_check_server_judges_by_a_pattern_with_its_flags() -> None:
    results = check_server("ThreadingTCPServer", LineEcho, expect=re.compile(rb"^PING$", re.I))
    assert {r.outcome for r in results} == {"pass"}
    with pytest.raises(AssertionError, match=r"x echo: AssertionError: the reply b'ping\\n'"):
        check_server("ThreadingTCPServer", LineEcho, expect=re.compile(rb"^pong"))


class Refuses(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        raise RuntimeError("never serves")


def test_a_handler_that_fails_without_faults_is_a_failure_for_check_server() -> None:
    with pytest.raises(AssertionError) as info:
        check_server("ThreadingTCPServer", Refuses)
    assert (
        "ThreadingTCPServer x echo: unsupported: the handler fails even without faults "
        "(RuntimeError: never serves, at "
    ) in str(info.value)
    assert re.search(r"test_checks\.py:\d+, in handle\(\)\)", str(info.value))


def test_a_verdict_is_not_located_in_the_checks_own_code() -> None:
    with pytest.raises(AssertionError) as info:
        check_server("ThreadingTCPServer", LineEcho, expect=b"pong\n")
    assert "x echo: AssertionError: the reply differs at byte 1" in str(info.value)
    assert "raised at" not in str(info.value)  # the check's own line says nothing


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"request": "ping"},
            "expected bytes or bytearray but got request='ping' (type=str) (from check_server())",
        ),
        ({"request": b""}, "request=b'' must be a non-empty request (from check_server())"),
        ({"expect": b""}, "expect=b'' must be a non-empty reply (from check_server())"),
        (
            {"expect": re.compile("x")},
            "expected None, bytes or a compiled bytes pattern but got expect=re.compile('x')",
        ),
        ({"seed": -1}, "seed=-1 must be in [0, 18446744073709551615] (from check_server())"),
    ],
)
def test_check_server_checks_its_arguments_before_anything_runs(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_server("ThreadingTCPServer", LineEcho, **kwargs)
    assert message in str(info.value)


def test_check_server_without_a_handler_takes_the_constructors_default() -> None:
    class Greeter(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()
            self.wfile.write(b"hello\n")

    class WithDefault(socketserver.ThreadingTCPServer):
        def __init__(self, address: Any, handler: Any = Greeter) -> None:
            super().__init__(address, handler)

    results = check_server(WithDefault, expect=b"hello\n")
    assert {r.outcome for r in results} == {"pass"}
    with pytest.raises(InvalidArgument, match="whose constructor has no default one"):
        check_server("ThreadingTCPServer")

"""The scenario library: every shipped scenario runs green against a correct
reference server and red against a known-bad handler or server it is meant to
catch; broken scenario files each get one clear error with file:line, the key, the
value and what is allowed; `sockshock check` validates a folder."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sockshock
from sockshock import scenarios as S
from sockshock.handlers import NaiveRecvEcho
from tests import scenario_culprits as culprits
from tests._support import SUBPROCESS_TIMEOUT, run_pytest

SHIPPED = S.names()

# scenario -> (server class override, handler override) that it must catch
CULPRITS: dict[str, tuple[Any, Any]] = {
    "slow-clients": ("TCPServer", None),  # one slow client starves a synchronous server
    "slowloris": ("TCPServer", None),
    "non-reading-clients": ("TCPServer", None),
    "partial-io": (None, NaiveRecvEcho),  # one recv() is not one line
    "reset-storm": (None, culprits.ShutsDownOnReset),
    "early-eof": (None, NaiveRecvEcho),
    "lossy-udp": (None, culprits.StrictDatagrams),
    "udp-duplicates-reorder": (None, culprits.StrictDatagrams),
    "udp-burst-loss": (None, culprits.StrictDatagrams),
    "abrupt-shutdown": (None, culprits.HoldsOnShutdown),
    "accept-exhaustion": (culprits.StopsOnAcceptError, None),
    "tls-handshake-stall": ("TCPServer", None),  # a stalled handshake blocks everyone
    "mixed": (None, NaiveRecvEcho),
}


@pytest.fixture
def released() -> Iterator[None]:
    culprits.RELEASE.clear()
    yield
    culprits.RELEASE.set()


def test_the_library_ships_at_least_a_dozen_scenarios_each_with_a_culprit() -> None:
    assert len(SHIPPED) >= 12
    assert set(SHIPPED) == set(CULPRITS)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_scenario_passes_against_its_reference_server(name: str) -> None:
    result = S.run(S.load(name))
    assert result.passed, [f"{c.name}: {c.detail}" for c in result.failures()]
    assert {c.name for c in result.checks} >= {
        "answered",
        "stops within",
        "handler errors",
        "no leaks",
    }


@pytest.mark.usefixtures("released")
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_scenario_catches_the_bug_it_is_meant_to_catch(name: str) -> None:
    server_class, handler = CULPRITS[name]
    result = S.run(S.load(name), server_class=server_class, handler=handler)
    culprits.RELEASE.set()
    assert not result.passed, f"{name} did not catch {server_class or handler}"


# -- broken scenario files: (content, expected message) --------------------------------

BROKEN = [
    ("duration = 0\n", "broken.toml:1: duration=0.0 must be in (0, 60]"),
    (
        "durations = 1\n",
        "broken.toml:1: unknown key 'durations' in the scenario (value 1); "
        "did you mean 'duration'? allowed: name, description, duration, seed",
    ),
    ("duration = nan\n", "broken.toml:1: duration=nan must be a finite number in (0, 60]"),
    ("seed = -1\n", "broken.toml:1: seed=-1 must be in [0, 18446744073709551615]"),
    ('name = ""\n', "broken.toml:1: name='' is empty"),
    ('duration = "long"\n', "broken.toml:1: duration='long' in the scenario must be a number"),
    ("[load]\nclients = 5000\n", "broken.toml:2: clients=5000 must be in [0, 1000]"),
    ('[load]\nrequest = "\\\\x"\n', "broken.toml:2: request='\\\\x' is not a valid escaped"),
    (
        '[[faults]]\nmodel = "PartialRead"\n',
        "broken.toml:2: [[faults]] model: 'PartialRead' is not a fault model; did you mean "
        "'PartialReads'? allowed: AbruptShutdown",
    ),
    (
        '[[faults]]\nmodel = "Latency"\nseconds = 0.1\n\n[[faults]]\nmodel = "Latency"\n'
        "seconds = -1\n",
        "broken.toml:7: seconds=-1 must be in [0, 3600] (from Latency)",
    ),
    (
        '[[faults]]\nmodel = "PartialReads"\n\nmax_chnk = 3\n',
        "broken.toml:4: unknown parameter 'max_chnk' of PartialReads (max_chnk = 3); did you mean "
        "'max_chunk'?",
    ),
    ('[[faults]]\n\nmodel = "PartialReads"\n', "broken.toml:3: PartialReads needs 'max_chunk'"),
    (
        '\n[[clients]]\nkind = "slowlaris"\n',
        "broken.toml:3: kind='slowlaris' is not a client; did you mean 'slowloris'?",
    ),
    (
        '\n[[clients]]\nkind = "slowloris"\ncuont = 3\n',
        "broken.toml:4: cuont=3 is not an option of slowloris; did you mean 'count'?",
    ),
    ('[[clients]]\nkind = "slowloris"\ncount = 100000\n', "broken.toml:3"),
    (
        '[expect]\nanswered = "most"\n',
        "broken.toml:2: answered='most' must be \"all\" or a fraction in [0, 1]",
    ),
    (
        '[expect]\nhandler_errors = ["Not An Exception"]\n',
        'broken.toml:2: handler_errors=[\'Not An Exception\'] must be "none", "any" or a list',
    ),
    (
        '[expect]\nhandler_errors = ["NoSuchError"]\n',
        "broken.toml:2: handler_errors: 'NoSuchError' is not an exception class",
    ),
    (
        '[expect]\nhandler_errors = ["int"]\n',
        "broken.toml:2: handler_errors: 'int' is not an exception class",
    ),
    ("[server]\nclass = 3\n", "broken.toml:2: class=3 in [server] must be a string"),
    ("[server\n", "broken.toml:1: not valid TOML"),
]


def test_a_bom_is_not_a_mistake(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbfduration = 0.2\n")
    assert S.load(path).duration == 0.2


def test_exception_names_are_checked_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "names.toml"
    path.write_text(
        '[expect]\nhandler_errors = ["ConnectionResetError", "SSLEOFError", '
        '"sockshock.errors:InvalidArgument"]\n'
    )
    assert S.load(path).expect.handler_errors == (
        "ConnectionResetError",
        "SSLEOFError",
        "InvalidArgument",
    )


# -- scenarios that read well but cannot run: `check` says so as `run` does, at the
# line of the key (content, expected message)
UNRUNNABLE = [
    (
        '[server]\nclass = "ThreadingTCPServr"\n',
        "bad.toml:2: class='ThreadingTCPServr' is not a server class of sockshock.socketserver; "
        "did you mean 'ThreadingTCPServer'?",
    ),
    (
        '[server]\nclass = ".x:Y"\n',
        "bad.toml:2: class='.x:Y': cannot import 'Y' from '.x': a relative module name",
    ),
    (
        '[server]\nhandler = "nosuch:X"\n',
        "bad.toml:2: handler='nosuch:X': cannot import 'X' from 'nosuch'",
    ),
    (
        '[server]\nhandler = "os:path"\n',
        "bad.toml:2: handler='os:path' is the module 'posixpath', not a request handler class",
    ),
    (
        '[server]\nclass = "UDPServer"\nhandler = "sockshock.handlers:LineEcho"\n',
        "bad.toml:3: handler=LineEcho is a StreamRequestHandler, but UDPServer is a datagram "
        "server",
    ),
    (
        '[server]\nclass = "UDPServer"\ntls = true\n',
        "bad.toml:3: tls=true: UDPServer is a datagram server",
    ),
    (
        "[server]\nattrs = { request_queue = 4 }\n",
        "bad.toml:2: ThreadingTCPServer has no setting 'request_queue'",
    ),
    (
        "[server]\nattrs = { verify_request = 1 }\n",
        "bad.toml:2: verify_request=1 (from [server] attrs): verify_request is a method",
    ),
    (
        '[[faults]]\nmodel = "DropDatagrams"\n',
        "bad.toml:2: DropDatagrams() cannot fire on ThreadingTCPServer: it acts on datagrams only",
    ),
    (
        '[[faults]]\nmodel = "PartialReads"\nmax_chunk = 2\nlayer = "plaintext"\n',
        "bad.toml:4: PartialReads(layer='plaintext', max_chunk=2) cannot fire on "
        "ThreadingTCPServer: layer='plaintext' faults act above TLS, and this runs without TLS",
    ),
    (
        '[[clients]]\nkind = "datagram_burst"\n',
        "bad.toml:2: kind='datagram_burst' is a datagram client, but ThreadingTCPServer is a "
        "stream server",
    ),
    (
        '[server]\nclass = "UDPServer"\n[[clients]]\nkind = "slowloris"\n',
        "bad.toml:4: kind='slowloris' is a stream client, but UDPServer is a datagram server",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"), UNRUNNABLE, ids=[c.replace("\n", " ")[:40] for c, _ in UNRUNNABLE]
)
def test_check_rejects_what_run_rejects_at_the_line_of_the_key(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sockshock._cli import main

    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert main(["check", str(path)]) == 1
    assert f"INVALID {tmp_path}/{message}" in capsys.readouterr().out
    with sockshock.audit():  # run: the same error, nothing started
        assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"sockshock run: {tmp_path}/" + err.split(f"{tmp_path}/", 1)[1]
    assert message in err
    assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("content", "message"), BROKEN, ids=[c.splitlines()[-1][:30] for c, _ in BROKEN]
)
def test_a_broken_scenario_file_gets_one_clear_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(content)
    with pytest.raises(sockshock.errors.InvalidArgument) as info:
        S.load(path)
    assert message in str(info.value), str(info.value)
    assert str(path).split("/")[-1] in str(info.value)


def test_an_unknown_name_lists_the_library() -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match="known: abrupt-shutdown, "):
        S.load("no-such-scenario")


def test_sockshock_check_validates_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sockshock._cli import main

    assert main(["check", str(Path(__file__).parent.parent / "scenarios")]) == 0
    out = capsys.readouterr().out
    assert f"{len(SHIPPED)} scenario(s) checked: all valid" in out
    (tmp_path / "good.toml").write_text("duration = 0.1\n")
    (tmp_path / "bad.toml").write_text("[load]\nclients = -1\n")
    assert main(["check", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "bad.toml:2: clients=-1 must be in [0, 1000]" in captured.out
    assert "2 scenario(s) checked: 1 invalid" in captured.out


@contextlib.contextmanager
def echo_peer(transport: str) -> Iterator[Any]:
    """The standard-library echo server of tests/_echo_peer.py, in a subprocess, for
    the block; its address."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_echo_peer.py")), transport],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        address = json.loads(proc.stdout.readline())
        yield tuple(address) if isinstance(address, list) else address
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


@pytest.mark.parametrize(
    ("name", "transport"),
    [("partial-io", "tcp"), ("lossy-udp", "udp"), ("accept-exhaustion", "tcp")],
)
def test_a_scenario_against_a_server_in_another_process(name: str, transport: str) -> None:
    from sockshock._scenarios import run_against

    with echo_peer(transport) as address:
        result = run_against(S.load(name), address, transport=transport)
    assert result.passed, [f"{c.name}: {c.detail}" for c in result.failures()]
    assert [c.name for c in result.checks if c.passed is None] == [
        "stops within",
        "handler errors",
        "no leaks",
    ]  # not visible from outside
    assert "fault(s) injected" in result.log


def test_sockshock_run_scenarios_through_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    with echo_peer("tcp") as address:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sockshock",
                "run",
                "partial-io",
                "reset-storm",
                "--target",
                f"{address[0]}:{address[1]}",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[  2/2] reset-storm" in result.stderr
    assert result.stdout.splitlines()[0].split()[:2] == ["scenario", "server"]
    data = json.loads(out.read_text())
    assert [s["scenario"] for s in data["scenarios"]] == ["partial-io", "reset-storm"]


pytest_plugins = ["pytester"]


def test_a_scenario_named_from_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_under="""
import pytest
from sockshock.handlers import LineEcho

def round_trip(srv):
    with srv.connect() as client:
        client.sendall(b"hello\\n")
        data = b""
        while not data.endswith(b"\\n"):
            data += client.recv(100)
        return data

@pytest.mark.faults("partial-io")
def test_marker(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", LineEcho)
    assert round_trip(srv) == b"hello\\n"
    assert [type(m).__name__ for m in srv.plan.models] == ["PartialReads", "PartialWrites"]

def test_option(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", LineEcho)
    assert round_trip(srv) == b"hello\\n"
    assert [type(m).__name__ for m in srv.plan.models] == ["SlowClient"]
"""
    )
    result = run_pytest(pytester, "--sockshock-scenario=slow-clients")
    result.assert_outcomes(passed=2)


# A handler that notices a slowloris connection's end as an error -- as a correct
# handler does in some runs, when the client leaves mid-exchange (a reset or a broken
# pipe, by microseconds); deterministic here.
NOTICES_LEAVING = """
from sockshock.handlers import LineEcho


class NoticesLeaving(LineEcho):
    def handle(self):
        seen = b""
        for line in self.rfile:
            seen += line
            self.wfile.write(line)
            if line.startswith(b"fail now"):
                raise ConnectionResetError(104, "a handler's own mistake")
        if b"X-Slowloris" in seen or b"GET /" in seen:  # a misbehaving client left
            raise ConnectionResetError(104, "the slowloris client left")
"""


def test_clients_leaving_are_judged_alike_in_pytest_and_in_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(leaving=NOTICES_LEAVING)
    pytester.makepyfile(
        test_leaving="""
import time

import pytest
from leaving import NoticesLeaving
from sockshock.handlers import LineEcho


@pytest.mark.faults("slowloris")
def test_leaving_is_not_the_handlers_failure(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", NoticesLeaving)
    with srv.connect() as client:
        client.sendall(b"hello\\n")
        assert client.recv(100) == b"hello\\n"


@pytest.mark.parametrize("n", range(5))
@pytest.mark.faults("slowloris")
def test_the_reference_handler_passes(sockshock, n):
    sockshock.serve("ThreadingTCPServer", LineEcho)


@pytest.mark.faults("slowloris")
def test_an_error_before_they_leave_still_fails(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", NoticesLeaving)
    with srv.connect() as client:
        client.sendall(b"fail now\\n")
        client.recv(100)
    deadline = time.monotonic() + 5
    while not srv.errors:
        assert time.monotonic() < deadline, "the handler never failed"
        time.sleep(0.001)
"""
    )
    result = run_pytest(pytester)
    result.assert_outcomes(passed=7, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ConnectionResetError: [[]Errno 104[]] a handler's own mistake",
            "*ERROR test_leaving.py::test_an_error_before_they_leave_still_fails*",
        ]
    )
    # `sockshock run slowloris` says the same of the same handler
    import importlib.util

    spec = importlib.util.spec_from_file_location("leaving", pytester.path / "leaving.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outcome = S.run(S.load("slowloris"), handler=module.NoticesLeaving)
    assert outcome.passed, [f"{c.name}: {c.detail}" for c in outcome.failures()]
    assert any("as the misbehaving clients left" in note for note in outcome.notes)


def test_a_misspelt_scenario_name_gets_the_closest_name() -> None:
    with pytest.raises(
        sockshock.errors.InvalidArgument,
        match=r"'slowlorris' .* did you mean 'slowloris'\? known: ",
    ):
        S.load("slowlorris")

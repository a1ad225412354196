"""False verdicts a new user hit: a test that passed although its premise was never
in force (a misspelled ``faults=``), a check that failed a healthy server (a
multi-line reply cut short), a message that named the wrong cause, a reported seed
that replays another run."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from sockshock.errors import InvalidArgument
from sockshock.handlers import LineEcho

pytest_plugins = ["pytester"]


# -- 1. a misspelled serving() keyword is not a server attribute ---------------------


@pytest.mark.parametrize(
    ("attrs", "meant"),
    [
        ({"fault": [F.ResetAfter(0)]}, "faults"),
        ({"fautls": [F.ResetAfter(0)]}, "faults"),
        ({"sead": 3}, "seed"),
        ({"expect_error": ValueError}, "expect_errors"),
        ({"shutdown_timout": 2.0}, "shutdown_timeout"),
        ({"server_kwarg": {}}, "server_kwargs"),
        ({"tls_stric": True}, "tls_strict"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else value,
)
def test_a_near_miss_of_a_serving_parameter_is_refused_before_anything_starts(
    attrs: dict[str, Any], meant: str
) -> None:
    name = next(iter(attrs))
    threads = threading.active_count()
    with (
        pytest.raises(InvalidArgument) as info,
        sockshock.serving("ThreadingTCPServer", LineEcho, **attrs),
    ):
        pytest.fail("the server started")  # pragma: no cover
    message = str(info.value)
    assert message.startswith(f"{name}="), message
    assert "(from serving())" in message
    assert f"did you mean {meant}=?" in message
    assert f"class MyThreadingTCPServer(ThreadingTCPServer): {name} = None" in message
    assert threading.active_count() == threads


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("lock", threading.Lock()),
        ("stock", {"book": 1}),
        ("app", object()),
        ("handler", object()),
        ("fault_log", []),
        ("seen", []),  # one letter off seed=, but not a seed
        ("feed", "rss"),
        ("db", object()),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_state_of_ones_own_is_still_a_server_attribute(name: str, state: object) -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho, **{name: state}) as srv:
        assert getattr(srv.server, name) is state


def test_a_class_that_has_the_attribute_takes_it_all_the_same() -> None:
    class Server(sockshock.socketserver.ThreadingTCPServer):
        fault: object = None

    with sockshock.serving(Server, LineEcho, fault="mine") as srv:
        assert srv.server.fault == "mine"


def test_the_checked_parameters_are_servings_own() -> None:
    from sockshock._harness import SERVING_PARAMETERS

    parameters = [
        p.name
        for p in inspect.signature(sockshock.serving).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert sorted(SERVING_PARAMETERS) == sorted(parameters)


def test_the_fixture_refuses_a_misspelled_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from sockshock import faults as F
        from sockshock.handlers import LineEcho

        def test_resets(sockshock):
            srv = sockshock.serve("ThreadingTCPServer", LineEcho, fautls=[F.ResetAfter(0)])
            with srv.connect() as client:
                client.sendall(b"hello\\n")
                assert client.recv(100) == b"hello\\n"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*InvalidArgument: fautls=*did you mean faults=?*"])


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ("{ fautls = 1 }", "fautls=1 (from [server] attrs): not an attribute"),
        ("{ seed = 3 }", "seed=3 (from [server] attrs): seed is serving()'s own parameter"),
    ],
)
def test_a_scenario_refuses_servings_parameters_among_its_attrs(
    tmp_path: Path, attrs: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sockshock._cli import main

    path = tmp_path / "bad.toml"
    path.write_text(f"[server]\nattrs = {attrs}\n")
    assert main(["check", str(path)]) == 1
    assert f"INVALID {path}:2: {message}" in capsys.readouterr().out


def test_a_server_machine_refuses_a_misspelled_serving_parameter() -> None:
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test

    from sockshock.strategies import ServerMachine

    class Machine(ServerMachine):
        handler_class = LineEcho
        server_attrs = {"sead": 3}  # noqa: RUF012

    with pytest.raises(InvalidArgument, match=r"sead=3 \(from serving\(\)\).*did you mean seed="):
        run_state_machine_as_test(
            Machine, settings=settings(max_examples=1, stateful_step_count=1, database=None)
        )


# -- 2. a multi-line reply is read whole, baseline and faulted alike -----------------


@contextlib.contextmanager
def http_server(root: Path) -> Iterator[int]:
    """``python -m http.server`` on a loopback port the kernel chose, in a
    subprocess; stopped (and reaped) whatever happens."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10.0)
        assert ready, "http.server did not start within 10 s"
        line = process.stdout.readline().decode()
        match = re.search(r"port (\d+)", line)
        assert match, line
        yield int(match.group(1))
    finally:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def run_cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from sockshock._cli import main

    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def test_a_multi_line_http_reply_is_judged_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hello.txt").write_text("hello world\n" * 10)
    with http_server(tmp_path) as port:
        code, out = run_cli(
            "partial-io",
            "early-eof",
            "--target",
            f"127.0.0.1:{port}",
            "--request",
            r"GET /hello.txt HTTP/1.0\r\n\r\n",
            "--seed",
            "1",
            capsys=capsys,
        )
    assert code == 0, out  # before: FAIL, the replies cut at different lines
    assert "2 scenario(s) in" in out
    assert "all passed" in out


class ThreeLines(ss.StreamRequestHandler):
    """Answers each request line with three lines, and keeps the connection open for
    the next request: the reply ends when it goes quiet."""

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            for line in self.rfile:
                self.wfile.write(b"one\ntwo\n" + line)


class ThreeLinesPerRecv(ss.BaseRequestHandler):
    """The culprit: answers each recv() as if it were the whole request, right only
    when a request arrives whole."""

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            while data := self.request.recv(4096):
                self.request.sendall(b"one\ntwo\n" + data.rstrip(b"\n") + b"\n")


SLOW_REPLIES = """
description = "Requests in pieces; replies in pieces further apart than the idle time."
duration = 0.01

[[faults]]
model = "PartialReads"
max_chunk = 3

[[faults]]
model = "Latency"
seconds = 0.01

[[faults]]
model = "SlowReader"
chunk = 8
pause = {pause}

[load]
clients = 2
concurrency = 2
request = "three\\n"
timeout = 2.0
"""


@pytest.mark.parametrize(
    ("handler", "passes"), [(ThreeLines, True), (ThreeLinesPerRecv, False)], ids=["ok", "culprit"]
)
def test_a_reply_the_target_keeps_open_ends_when_it_goes_quiet(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    handler: type[Any],
    passes: bool,
) -> None:
    from sockshock._scenarios import _run

    monkeypatch.setattr(_run, "REPLY_IDLE", 0.05)  # the rule, at a test's pace
    scenario = tmp_path / "slow-replies.toml"
    # Pauses longer than the idle time between the pieces of a faulted reply: it is
    # read on until it is as long as the reply without faults.
    scenario.write_text(SLOW_REPLIES.format(pause=0.08))
    with sockshock.serving("ThreadingTCPServer", handler) as srv:
        host, port = srv.address
        code, out = run_cli(
            str(scenario), "--target", f"{host}:{port}", "--seed", "1", capsys=capsys
        )
    assert (code == 0) is passes, out
    if not passes:
        assert "first wrong reply: the reply differs at byte" in out, out
        assert "(expected 14 bytes)" in out, out


# -- 3. a refused connection is said to be refused -----------------------------------


def test_a_refused_target_is_named_with_the_errno(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        started = time.monotonic()
        code, out = run_cli("partial-io", "--target", f"127.0.0.1:{port}", capsys=capsys)
    assert code == 1
    assert time.monotonic() - started < 2.0
    assert (
        f"the target did not answer b'a whole line, in pieces\\n' without faults: the "
        f"connection to 127.0.0.1:{port} was refused (ECONNREFUSED: Connection refused)"
    ) in out, out
    assert "within 2 s" not in out


def test_a_missing_unix_target_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nobody.sock"
    code, out = run_cli("partial-io", "--target", str(path), capsys=capsys)
    assert code == 1
    assert f"no Unix socket at {path} (ENOENT: No such file or directory)" in out, out


def test_a_silent_target_is_said_to_be_silent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "quick.toml"
    scenario.write_text("duration = 0.01\n[load]\nclients = 1\ntimeout = 0.1\n")
    with socket.socket() as listening:  # connections complete (the backlog), no reply
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        code, out = run_cli(str(scenario), "--target", f"127.0.0.1:{port}", capsys=capsys)
    assert code == 1
    assert "without faults: no reply within 0.1 s;" in out, out


# -- 4. what a failing schedule is reported as replays it ----------------------------


def test_explore_reports_a_schedule_that_replays_never_a_bare_seed() -> None:
    from sockshock._sched import Schedule
    from tests._races import RACES
    from tests.test_sched_explore import check_for
    from tests.test_sched_explore import run as run_race

    race = RACES[0]  # found by PCT at run 2, with a measured length of 27 (not 100)
    with pytest.raises(AssertionError) as caught:
        sockshock.drive.explore(check_for(race, race.handler), runs=100, strategy="pct")
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    first = notes.splitlines()[0]
    assert re.fullmatch(
        r"sockshock: the check failed under schedule 'pct:\d+:depth=3:length=\d+' "
        r"\(run \d+ of 100\)\.",
        first,
    ), first  # before: "(run 2 of 100, seed 1)", and schedule=1 is another schedule
    match = re.search(r"or the same pct schedule: drive\(\.\.\., schedule='([^']+)'\)", notes)
    assert match, notes
    spec = match.group(1)
    seed = int(spec.split(":")[1])
    assert spec != Schedule.pct(seed).spec()  # what makes a bare seed a false replay
    assert (
        f"(the whole string: schedule={seed} is 'pct:{seed}:depth=3:length=100', another one)"
        in notes
    )
    ts, attrs = run_race(race, race.handler, spec)  # what is printed replays the failure
    assert race.broken(attrs, ts)


RACY_PCT = """
import pytest, sockshock
from tests_races import Checkout, BUYER

@pytest.mark.sockshock_schedules(MARKER)
def test_racy(sockshock_schedule):
    attrs = {"stock": {"book": 1}}
    sockshock.drive(Checkout, [BUYER, BUYER], server="ThreadingTCPServer",
                    schedule=sockshock_schedule, server_attrs=attrs)
    assert attrs["stock"]["book"] >= 0, "oversold"
"""


def test_the_markers_run_alone_line_replays_the_pct_schedule(pytester: pytest.Pytester) -> None:
    source = (Path(__file__).with_name("_races.py")).read_text(encoding="utf-8")
    pytester.makepyfile(tests_races=source)
    pytester.makepyfile(test_shop=RACY_PCT.replace("MARKER", "runs=100, seed=0"))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-q")
    result.assert_outcomes(failed=1)
    line = next(text for text in result.outlines if "Run that schedule alone: @pytest.mark" in text)
    match = re.search(
        r"sockshock_schedules\(seed=(\d+), runs=1, strategy='pct', depth=3, length=(\d+)\)", line
    )
    assert match, line  # before: seed=N, runs=1 only, which measured another length
    seed, length = match.groups()
    pytester.makepyfile(
        test_shop=RACY_PCT.replace(
            "MARKER", f"seed={seed}, runs=1, strategy='pct', depth=3, length={length}"
        )
    )
    again = pytester.runpytest_subprocess("-p", "no:randomly", "-q")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*oversold*"])


# -- 5. every handle has a plan ------------------------------------------------------


def test_a_handle_without_faults_has_an_empty_plan() -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        with srv.connect() as client:
            client.sendall(b"hello\n")
            assert client.recv(100) == b"hello\n"
        plan = srv.plan
        assert srv.layer is None
        assert not plan  # false, as an empty list: "if srv.plan:" still means faults
        assert plan.models == ()
        assert plan.log == []
        assert plan.describe().startswith(f"FaultPlan(seed={plan.seed}): 0 fault(s) injected")


def test_the_fixtures_empty_plan_has_the_tests_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from sockshock.handlers import LineEcho

        def test_seeded(sockshock):
            srv = sockshock.serve("ThreadingTCPServer", LineEcho)
            assert srv.plan.seed == sockshock.seed
            assert "0 fault(s) injected" in srv.plan.describe()

        def test_fails(sockshock):
            sockshock.serve("ThreadingTCPServer", LineEcho)
            assert False, "the test's own failure"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--sockshock-seed=7")
    result.assert_outcomes(passed=1, failed=1)
    assert "0 fault(s) injected" not in result.stdout.str()  # no empty log in reports


# -- 6. the toxiproxy API refuses an attribute a toxic does not have -----------------


def test_a_misspelled_toxic_attribute_is_refused_not_echoed(tmp_path: Path) -> None:
    from tests.test_proxy_api import start_api, stop_api

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://{address}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    log = tmp_path / "events.jsonl"
    proc, address = start_api("--log", str(log), log=log)
    try:
        with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
            host, port = srv.address
            assert call("POST", "/proxies", {"name": "db", "upstream": f"{host}:{port}"})[0] == 201
            status, body = call(
                "POST", "/proxies/db/toxics", {"type": "latency", "attributes": {"latncy": 1000}}
            )
            assert status == 400  # before: 200, a 0 ms latency toxic echoing "latncy": 1000
            assert body["error"] == (
                "bad request body: toxic 'latency_downstream' of type 'latency' has no "
                "attribute 'latncy'; did you mean 'latency'? its attributes: latency, jitter"
            )
            assert call("GET", "/proxies/db/toxics") == (200, [])
            status, toxic = call(
                "POST", "/proxies/db/toxics", {"type": "latency", "attributes": {"latency": 5}}
            )
            assert status == 200
            status, body = call(
                "POST", "/proxies/db/toxics/latency_downstream", {"attributes": {"jiter": 5}}
            )
            assert status == 400
            assert "has no attribute 'jiter'; did you mean 'jitter'?" in body["error"]
            assert call("GET", "/proxies/db/toxics")[1] == [toxic]  # unchanged
            assert call("DELETE", "/proxies/db")[0] == 204
    finally:
        stop_api(proc)


# -- 7. a fault model class in the marker ---------------------------------------------


def test_a_model_class_in_the_marker_asks_for_an_instance(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_class="""
        import pytest
        from sockshock import faults as F

        @pytest.mark.faults(F.PartialReads)
        def test_chunks(sockshock):
            pass
        """,
        test_classes="""
        import pytest
        from sockshock import faults as F

        @pytest.mark.faults(F.PartialReads, F.Latency)
        def test_two(sockshock):
            sockshock.serve("ThreadingTCPServer")
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "test_class.py")
    result.stdout.fnmatch_lines(
        [
            "*InvalidArgument: PartialReads(test_chunks): a fault model was called on a test, "
            "as @pytest.mark.faults(PartialReads) does -- pytest takes a lone class as what "
            "the marker decorates; give an instance: "
            "@pytest.mark.faults(sockshock.faults.PartialReads()) (from PartialReads)*"
        ]
    )
    assert "expected int" not in result.stdout.str()  # before: max_chunk=<function ...>
    result = pytester.runpytest_subprocess("-p", "no:randomly", "test_classes.py")
    result.stderr.fnmatch_lines(
        [
            "*@pytest.mark.faults on test_classes.py::test_two: PartialReads is a fault model "
            "class; give an instance: sockshock.faults.PartialReads()*"
        ]
    )


def test_a_model_called_on_a_function_or_class_says_why() -> None:
    def test_x() -> None: ...

    class TestY: ...

    for target, name in ((test_x, "test_x"), (TestY, "TestY")):
        with pytest.raises(InvalidArgument, match=rf"^Latency\({name}\): a fault model was"):
            F.Latency(target)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="give an instance"):
        pytest.mark.faults(F.Latency)(test_x)
    assert "pytestmark" not in vars(F.Latency)  # the mark pytest left is taken back


# -- 8. FaultNeverFired names the test's line ------------------------------------------


def test_fault_never_fired_under_the_fixture_names_the_tests_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_silent="""
        from sockshock import faults as F
        from sockshock.handlers import LineEcho

        def test_silent(sockshock):
            sockshock.serve("ThreadingTCPServer", LineEcho, faults=[F.ResetAfter(0)])
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*test_silent.py:5: FaultNeverFired: ResetAfter() never fired while*"]
    )
    assert "fixtures.py" not in result.stdout.str()  # before: _pytest/fixtures.py:1083


def _serve_silently() -> int:
    """A server whose one model never fires; the line of its ``with`` statement."""
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    with sockshock.serving("ThreadingTCPServer", LineEcho, faults=[F.ResetAfter(0)]):
        pass
    return line


def test_fault_never_fired_under_serving_names_the_with_statement() -> None:
    with pytest.warns(sockshock.errors.FaultNeverFired) as caught:
        line = _serve_silently()
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)

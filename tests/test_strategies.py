"""sockshock.strategies: what they draw, how they shrink, the bugs they find, the
stateful machine, and the pytest plugin with hypothesis."""

from __future__ import annotations

import http.server
import re
import struct
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

import sockshock
from sockshock import _faults as _F
from sockshock import faults as F
from sockshock import socketserver as ss
from sockshock._faults import Operation
from sockshock._strategies import DATAGRAM_MODELS, STREAM_MODELS
from sockshock.faults import Draws, FaultPlan
from sockshock.handlers import LineEcho
from sockshock.scripts import ClientScript, Close, HalfClose, Pause, Read, Reset, Send
from sockshock.strategies import (
    ServerMachine,
    chunkings,
    client_scripts,
    datagram_schedules,
    fault_models,
    fault_plans,
)
from tests._support import SUBPROCESS_TIMEOUT, HelloHTTP

pytest_plugins = ["pytester"]

QUICK = settings(max_examples=60, database=None)

# As this suite's own conftest: timing is the benchmarks' business. On a loaded
# machine, hypothesis' first draw in a fresh process (it scans the loaded modules
# for constants) can take over a second, which its too_slow health check fails.
DOCS_CONFTEST = """
from hypothesis import HealthCheck, settings
settings.register_profile("docs", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("docs")
"""


# -- decisions drawn in advance (sockshock.faults.Draws) --------------------------------------


def test_draws_are_oriented_so_that_zero_is_the_gentlest() -> None:
    gentle = Draws([0.0, 0.0, 0.0, 0.0])
    assert gentle.random() == 1.0 - 2**-53  # a probability gate does not fire
    assert gentle.randint(1, 64) == 64  # the largest chunk
    assert gentle.uniform(0.0, 2.0) == 0.0  # no jitter
    assert gentle.randrange(8) == 0
    harsh = Draws([0.999, 0.999, 0.5, 0.5])
    assert harsh.random() == pytest.approx(0.001)
    assert harsh.randint(1, 64) == 1
    assert harsh.uniform(0.0, 2.0) == 1.0
    assert harsh.randrange(8) == 4
    assert Draws([]).randint(1, 3) == 3  # spent: the gentlest
    assert 0 <= Draws([0.7]).choice(range(5)) < 5


def test_a_plan_with_draws_per_model_is_its_own_replay() -> None:
    plan = FaultPlan(
        F.PartialReads(100), F.Latency(1.0, jitter=1.0), rng=[Draws([0.5, 0.99]), Draws([0.25])]
    )
    decisions = [plan.decide(Operation("recv", 0, None, 4096, 0, i)) for i in range(3)]
    assert [d.limit for d in decisions] == [50, 1, 100]
    assert [d.delay for d in decisions] == [0.5, 0.0, 0.0]  # 1 +- 1: the gentlest is 0
    text = plan.describe()
    assert "FaultPlan(rng=[...]): 4 fault(s) injected" in text
    assert "replay: FaultPlan(*models, rng=[Draws([0.5, 0.99]), Draws([0.25])])" in text
    assert repr(plan) == (
        "FaultPlan(PartialReads(max_chunk=100), Latency(seconds=1.0, "
        "jitter=1.0), rng=[Draws([0.5, 0.99]), Draws([0.25])])"
    )
    again = eval(repr(plan), {**vars(F)})
    assert [again.decide(Operation("recv", 0, None, 4096, 0, i)) for i in range(3)] == decisions
    replayed = plan.replay()
    assert [replayed.decide(Operation("recv", 0, None, 4096, 0, i)) for i in range(3)] == decisions


def test_draws_are_checked() -> None:
    with pytest.raises(
        sockshock.errors.InvalidArgument, match=re.escape("units=1.0 must be in [0, 1)")
    ):
        Draws([1.0])
    with pytest.raises(sockshock.errors.InvalidArgument, match="expected numbers in"):
        Draws("0.5")
    with pytest.raises(
        sockshock.errors.InvalidArgument, match=re.escape("one random.Random per model, 1 here")
    ):
        FaultPlan(F.PartialReads(1), rng=[Draws(), Draws()])


# -- what the strategies draw, and where they shrink -------------------------------------------


@QUICK
@given(plan=fault_plans())
def test_drawn_stream_plans_hold_stream_models(plan: FaultPlan) -> None:
    assert len(plan.models) <= 3
    assert all(type(m) in STREAM_MODELS for m in plan.models)
    assert plan._model_rngs is not None
    assert all(isinstance(r, Draws) for r in plan._model_rngs)


@QUICK
@given(plan=fault_plans("datagram", min_models=1, scopes=True, seeded=True))
def test_drawn_datagram_plans_can_be_seeded_and_scoped(plan: FaultPlan) -> None:
    assert 1 <= len(plan.models) <= 3
    assert all(type(m) in DATAGRAM_MODELS for m in plan.models)
    assert plan._model_rngs is None
    assert plan._shared_rng is None


def test_plans_shrink_towards_fewer_and_gentler_faults() -> None:
    gentlest = [find(fault_models(model), lambda m: True) for model in STREAM_MODELS]
    assert gentlest[:3] == [F.Latency(0.0), F.PartialWrites(64), F.PartialReads(64)]
    plan = find(fault_plans(), lambda p: len(p.models) >= 1)
    assert len(plan.models) == 1
    assert plan.models[0] in gentlest
    assert plan._model_rngs is not None
    assert plan._model_rngs[0].units == ()  # type: ignore[attr-defined]
    assert find(fault_plans(models=[F.PartialReads]), bool).models == (F.PartialReads(64),)
    assert find(fault_models(F.TruncateDatagrams), lambda m: True) == F.TruncateDatagrams(64)
    assert find(fault_plans(models=[F.PartialReads(5), F.EOFAfter]), bool).models == (
        F.PartialReads(5),
    )


@QUICK
@given(
    plan=st.from_type(FaultPlan),
    script=st.from_type(ClientScript),
    model=st.from_type(F.ResetAfter),
)
def test_from_type_knows_plans_scripts_and_models(plan: Any, script: Any, model: Any) -> None:
    assert isinstance(plan, FaultPlan)
    assert isinstance(script, ClientScript)
    assert isinstance(model, F.ResetAfter)


@QUICK
@given(data=st.data(), payload=st.binary(max_size=40))
def test_chunkings_join_back_to_the_payload(data: st.DataObject, payload: bytes) -> None:
    chunks = data.draw(chunkings(payload, max_chunks=5))
    assert b"".join(chunks) == payload
    assert 1 <= len(chunks) <= 5
    assert all(chunks) or chunks == [b""]


def test_chunkings_shrink_to_one_chunk() -> None:
    assert find(chunkings(b"hello"), lambda c: True) == [b"hello"]
    assert find(chunkings(b"hello"), lambda c: len(c) > 2) == [b"h", b"e", b"llo"]


@QUICK
@given(arrivals=datagram_schedules([b"a", b"b", b"c", b"d"]))
def test_schedules_lose_duplicate_and_reorder(arrivals: list[bytes]) -> None:
    assert set(arrivals) <= {b"a", b"b", b"c", b"d"}
    assert all(arrivals.count(d) <= 2 for d in arrivals)


def inversions(order: list[bytes]) -> int:
    return sum(a > b for i, a in enumerate(order) for b in order[i + 1 :])


def test_schedules_shrink_towards_everything_once_in_order() -> None:
    datagrams = [b"a", b"b", b"c"]
    assert find(datagram_schedules(datagrams), lambda s: True) == datagrams
    reordered = find(
        datagram_schedules(datagrams, drop=False, duplicate=False), lambda s: s != datagrams
    )
    assert sorted(reordered) == datagrams
    assert inversions(reordered) == 1
    lost = find(datagram_schedules(datagrams, reorder=False, duplicate=False), lambda s: len(s) < 3)
    assert len(lost) == 2
    assert lost == sorted(lost)


@QUICK
@given(script=client_scripts(b"GET / HTTP/1.0\r\n\r\n"))
def test_client_scripts_send_the_request_and_end_somehow(script: ClientScript) -> None:
    last = script.steps[-1]
    if isinstance(last, Read):
        assert script.request == b"GET / HTTP/1.0\r\n\r\n"
        assert isinstance(script.steps[-2], HalfClose)
    elif isinstance(last, Reset):
        assert script.request == b"GET / HTTP/1.0\r\n\r\n"
    else:
        assert isinstance(last, Close)
        assert b"GET / HTTP/1.0\r\n\r\n".startswith(script.request)
    assert all(isinstance(s, (Send, Pause, HalfClose, Read, Reset, Close)) for s in script.steps)


def test_client_scripts_shrink_to_the_polite_client() -> None:
    assert find(client_scripts(b"ping\n"), lambda s: True) == ClientScript(
        [Send(b"ping\n"), HalfClose(), Read()]
    )
    script = find(client_scripts(st.just(b"ab"), transport="datagram"), lambda s: True)
    assert script == ClientScript([Send(b"ab"), Read()])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: fault_plans("streem"), "transport='streem' must be one of"),
        (lambda: fault_plans(max_models=1, min_models=2), "max_models=1 must be in [2, 20]"),
        (lambda: find(fault_plans(models=[42]), bool), "expected a fault model class"),
        (lambda: fault_plans(models="PartialReads"), "expected a list of model classes"),
        (lambda: find(fault_plans(models=[ss.TCPServer]), bool), "expected a fault model class"),
        (lambda: chunkings("text"), "expected bytes or a strategy of bytes"),
        (lambda: datagram_schedules([1, 2]), "expected a list of byte strings"),
        (lambda: client_scripts(endings=("slam",)), "endings='slam' must be one of"),
        (lambda: client_scripts(endings=()), "leaves no way to end a script"),
        (
            lambda: client_scripts(endings="read"),
            "expected a list of endings ('half_close', 'close', 'reset', 'stop_midway') but got "
            "endings='read' (type=str) (from client_scripts())",
        ),
        (lambda: client_scripts(endings="close"), "for this one alone, endings=['close']"),
        (
            lambda: datagram_schedules([b"x"], max_window=0),
            "max_window=0 must be in [1, 1000] (from datagram_schedules())",
        ),
        (lambda: datagram_schedules([b"x"], drop="no"), "drop='no' (type=str)"),
        (
            lambda: fault_models("PartialReads"),
            "expected a fault model class such as sockshock.faults.PartialReads but got "
            "model='PartialReads' (type=str) (the class itself: sockshock.faults.PartialReads) "
            "(from fault_models())",
        ),
        (lambda: fault_models(int), "got model=<class 'int'> (type=type) (from fault_models())"),
        (lambda: fault_models(_F.FaultModel), "(from fault_models())"),
        (lambda: fault_models(F.PartialReads, max_bytes=0), "max_bytes=0 must be in [1, 65536]"),
    ],
)
def test_bad_strategy_arguments_get_one_clear_error(make: Any, message: str) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match=re.escape(message)):
        make()


# -- bugs found and shrunk ---------------------------------------------------------------------


class Upper(ss.BaseRequestHandler):
    """Upper-cases lines, assuming every recv() ends at the end of a line."""

    def handle(self) -> None:
        while data := self.request.recv(1024):
            for line in data.split(b"\n")[:-1]:
                self.request.sendall(line.upper() + b"\n")


class Reverse(ss.BaseRequestHandler):
    """A 4-byte length, then the body; one recv(4) for the header."""

    def handle(self) -> None:
        (size,) = struct.unpack("!I", self.request.recv(4))
        body = b""
        while len(body) < size:
            chunk = self.request.recv(size - len(body))
            if not chunk:
                raise ConnectionError("the client closed mid-message")
            body += chunk
        self.request.sendall(body[::-1])


class Sequenced(ss.DatagramRequestHandler):
    """Numbered datagrams, assumed to come in order."""

    def handle(self) -> None:
        number = int(self.packet.partition(b":")[0])
        if number != self.server.expected:
            raise ValueError(f"datagram {number} came while {self.server.expected} was due")
        self.server.expected += 1


LINES = st.lists(
    st.binary(min_size=1, max_size=8).filter(lambda b: b"\n" not in b), min_size=1, max_size=4
).map(lambda ls: b"".join(line + b"\n" for line in ls))


def test_a_line_handler_that_breaks_on_split_reads_is_found_and_shrunk() -> None:
    chunks = find(
        chunkings(LINES), lambda c: sockshock.drive(Upper, c).received != b"".join(c).upper()
    )
    assert chunks == [b"\x00", b"\n"]


def test_a_partial_header_is_found_shrunk_and_replayed() -> None:
    def broken(case: tuple[FaultPlan, bytes]) -> bool:
        plan, body = case
        return (
            sockshock.drive(Reverse, struct.pack("!I", len(body)) + body, faults=plan).error
            is not None
        )

    plan, body = find(
        st.tuples(fault_plans(models=[F.PartialReads]), st.binary(max_size=32)), broken
    )
    assert body == b""
    assert type(plan.models[0]) is F.PartialReads
    assert [e.decision.limit for e in plan.log] == [3]  # the gentlest cut that breaks it
    for again in (plan.replay(), eval(repr(plan), {**vars(F)})):  # without hypothesis
        transcript = sockshock.drive(Reverse, struct.pack("!I", 0), faults=again)
        assert isinstance(transcript.error, struct.error)


def test_a_datagram_handler_that_assumes_order_is_found_and_shrunk() -> None:
    datagrams = [b"0:a", b"1:b", b"2:c"]
    arrivals = find(
        datagram_schedules(datagrams, drop=False, duplicate=False),
        lambda a: (
            sockshock.drive(Sequenced, a, transport="datagram", server_attrs={"expected": 0}).errors
            != []
        ),
    )
    assert sorted(arrivals) == datagrams
    assert inversions(arrivals) == 1


def test_a_failing_property_prints_the_transcript_and_a_replay(capsys: Any) -> None:
    @settings(database=None, max_examples=200)
    @given(plan=fault_plans(models=[F.PartialReads]), body=st.binary(max_size=8))
    def check(plan: FaultPlan, body: bytes) -> None:
        assert (
            sockshock.drive(Reverse, struct.pack("!I", len(body)) + body, faults=plan).error is None
        )

    with pytest.raises(AssertionError) as failure:
        check()
    notes = "\n".join(getattr(failure.value, "__notes__", [])) + capsys.readouterr().out
    (plan,) = re.findall(r"plan=(FaultPlan\(PartialReads\(.*\]\)\]\)),", notes)
    assert "handler raised error('unpack requires a buffer of 4 bytes')" in notes
    assert re.search(r"recv #0 @0 \(4 bytes\): PartialReads\(max_chunk=\d+\) -> limit=3", notes)
    replay = eval(plan, {**vars(F)})  # the printed plan is the replay
    assert isinstance(sockshock.drive(Reverse, bytes(4), faults=replay).error, struct.error)


# -- the stateful machine ----------------------------------------------------------------------


class EchoMachine(ServerMachine):
    handler_class = LineEcho
    faults = (F.PartialReads, F.PartialWrites)

    def expected_reply(self, request: bytes) -> bytes:
        return request


TestEchoMachine = EchoMachine.TestCase
TestEchoMachine.settings = settings(
    max_examples=6, stateful_step_count=8, deadline=None, database=None
)


class SyncHTTPMachine(ServerMachine):
    server_class = http.server.HTTPServer
    handler_class = HelloHTTP
    max_clients = 2
    scripts = st.just(
        ClientScript([Send(b"GET / HTTP/1.0\r\n\r\n"), HalfClose(), Read()], timeout=0.5)
    )

    def check_client(self, run: Any) -> None:
        assert run.received.startswith(b"HTTP/1.0 200"), f"no reply: {run.received!r}"


def test_the_machine_finds_a_synchronous_http_server_held_by_a_silent_client() -> None:
    run = SyncHTTPMachine.TestCase("runTest")
    # (The search stops at the failure, found after 60-75 examples; where depends on
    # hypothesis' pool of constants, which it gathers from local source -- sockshock's
    # own integer literals included -- hence the margin.)
    run.settings = settings(
        max_examples=200,
        stateful_step_count=6,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
    )
    with pytest.raises(AssertionError, match=r"no reply: b''"):
        run.runTest()


def test_a_live_server_takes_seeded_plans_only() -> None:
    class Unseeded(EchoMachine):
        faults = fault_plans()

    run = Unseeded.TestCase("runTest")
    run.settings = settings(max_examples=1, database=None, deadline=None, phases=[Phase.generate])
    with pytest.raises(
        sockshock.errors.InvalidArgument, match=r"fault_plans\(\.\.\., seeded=True\)"
    ):
        run.runTest()


# -- pytest, hypothesis and the sockshock fixture ---------------------------------------------

FIXTURE_TESTS = """
import socket, threading
from hypothesis import given, settings, strategies as st
from sockshock import faults as F
from sockshock.handlers import LineEcho, NaiveRecvEcho

def echo(srv, data):
    with srv.connect() as client:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := client.recv(100):
            reply += chunk
    return reply

@settings(max_examples=8, database=None)
@given(line=st.binary(max_size=10).map(lambda b: b.replace(b"\\n", b"") + b"\\n"))
def test_reused_across_examples(sockshock, line):
    srv = sockshock.serve("ThreadingTCPServer", LineEcho, faults=[F.PartialReads(2)])
    assert len(sockshock.handles) == 1  # the previous examples' servers are gone
    assert echo(srv, line) == line
    with open("drawn.txt", "a") as drawn:
        drawn.write(f"{line!r}\\n")

@settings(max_examples=50, database=None)
@given(line=st.binary(min_size=1, max_size=10).map(lambda b: b.replace(b"\\n", b"") + b"\\n"))
def test_a_handler_error_fails_its_example(sockshock, line):
    srv = sockshock.serve("ThreadingTCPServer", NaiveRecvEcho, faults=[F.PartialReads(2)])
    with srv.connect() as client:
        client.sendall(line)
"""


def test_the_fixture_is_per_example_and_one_seed_replays_everything(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under CI hypothesis loads its "ci" profile, which derandomizes every test: no
    # seed to share then. This test is about the seed.
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_fuzz=FIXTURE_TESTS)
    pytester.makeconftest(DOCS_CONFTEST)
    args = (
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "--sockshock-session-seed=1234",
    )
    first = pytester.runpytest_subprocess(*args, timeout=SUBPROCESS_TIMEOUT)
    first.assert_outcomes(passed=1, failed=1)
    assert "FailedHealthCheck" not in first.stdout.str()
    (seed,) = re.findall(r"--sockshock-seed=(\d+)", first.stdout.str())
    first.stdout.fnmatch_lines(
        [
            "*ValueError: incomplete message b'*': expected a whole line*",
            "*Failing test case: test_a_handler_error_fails_its_example(*",
            "*re-run this test with the same faults:*",
            "*(the seed also seeds hypothesis: the same examples, in the same order)*",
            "*recv #0 @0 (65536 bytes): PartialReads(max_chunk=2) -> limit=*",
        ]
    )
    drawn = pytester.path.joinpath("drawn.txt")
    examples = drawn.read_text().splitlines()
    assert len(examples) == 8
    drawn.unlink()
    # The same session seed under xdist: the same test seeds, so the same examples.
    again = pytester.runpytest_subprocess(*args, "-n", "2", timeout=SUBPROCESS_TIMEOUT)
    again.assert_outcomes(passed=1, failed=1)
    assert drawn.read_text().splitlines() == examples
    assert f"--sockshock-seed={seed}" in again.stdout.str()
    failing = re.compile(r"Failing test case: test_a_handler_error_fails_its_example\(.*?\)", re.S)
    assert failing.findall(again.stdout.str()) == failing.findall(first.stdout.str())


def test_other_function_scoped_fixtures_still_get_the_health_check(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(DOCS_CONFTEST)
    pytester.makepyfile(
        test_fuzz="""
from hypothesis import given, strategies as st

@given(st.integers())
def test_two_fixtures(sockshock, tmp_path, x):
    pass
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", timeout=SUBPROCESS_TIMEOUT
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FailedHealthCheck*function-scoped fixture*"])


def test_importing_sockshock_and_driving_a_handler_does_not_import_hypothesis() -> None:
    code = (
        "import sys, sockshock, sockshock.scripts\n"
        "from sockshock.handlers import LineEcho\n"
        "assert sockshock.drive(LineEcho, b'x\\n').received == b'x\\n'\n"
        "assert 'hypothesis' not in sys.modules, 'hypothesis was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=SUBPROCESS_TIMEOUT)


@settings(max_examples=30, deadline=None)
@given(fault_models(F.AcceptErrors, scopes=True))
def test_accept_errors_are_drawn_with_the_scopes_an_accept_has(model: F.AcceptErrors) -> None:
    assert model.after_bytes == 0
    assert model.first_ops is None

"""The fault models and FaultPlan on their own: pure, seeded, logged, validated."""

from __future__ import annotations

import ast
import errno
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sockshock
from sockshock import faults as F
from sockshock._faults import Decision, Operation
from sockshock.faults import FaultPlan

FAULTS_SOURCES = [Path(F.__file__), *Path(F.__file__).with_name("_faults").glob("*.py")]


@pytest.mark.parametrize("path", FAULTS_SOURCES, ids=lambda p: p.name)
def test_the_faults_package_does_no_io(path: Path) -> None:
    forbidden = {"socket", "selectors", "threading", "time", "asyncio", "os", "select"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        else:
            continue
        assert not forbidden & set(names), f"{path.name} imports {names}"


def recv(
    connection: int,
    offset: int,
    index: int,
    size: int = 4096,
    kind: str = "recv",
    address: Any = ("127.0.0.1", 1000),
) -> Operation:
    return Operation(kind, connection, address, size, offset, index)


def read_all(plan: FaultPlan, payload_size: int, connection: int = 0) -> list[int]:
    """Chunk sizes a server would see reading ``payload_size`` bytes."""
    chunks, offset, index = [], 0, 0
    while offset < payload_size:
        decision = plan.decide(recv(connection, offset, index))
        n = min(payload_size - offset, decision.limit or payload_size)
        chunks.append(n)
        offset += n
        index += 1
    return chunks


@settings(max_examples=60)
@given(max_chunk=st.integers(1, 50), size=st.integers(1, 2000), seed=st.integers(0, 2**32))
def test_partial_reads_chunks_sum_to_the_payload(max_chunk: int, size: int, seed: int) -> None:
    chunks = read_all(FaultPlan(F.PartialReads(max_chunk), seed=seed), size)
    assert sum(chunks) == size
    assert all(1 <= c <= max_chunk for c in chunks)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32), size=st.integers(1, 500))
def test_same_seed_same_log(seed: int, size: int) -> None:
    models = [F.PartialReads(7), F.Latency(0.01, jitter=0.01), F.ResetAfter(size // 2 + 1)]
    first, second = FaultPlan(*models, seed=seed), FaultPlan(*models, seed=seed)
    assert read_all(first, size) == read_all(second, size)
    assert first.log == second.log
    assert first.replay().seed == seed


def test_different_seeds_differ() -> None:
    logs = {tuple(read_all(FaultPlan(F.PartialReads(10), seed=s), 300)) for s in range(5)}
    assert len(logs) == 5


def test_a_connection_does_not_depend_on_the_others() -> None:
    """Per-connection randomness: interleaving with other connections changes nothing."""
    alone = FaultPlan(F.PartialReads(9), seed=3)
    alone_chunks = read_all(alone, 200, connection=1)
    busy = FaultPlan(F.PartialReads(9), seed=3)
    read_all(busy, 500, connection=0)
    read_all(busy, 77, connection=2)
    assert read_all(busy, 200, connection=1) == alone_chunks
    assert busy.log_by_connection()[1] == alone.log_by_connection()[1]


@settings(max_examples=25, deadline=None)
@given(probability=st.floats(0, 1), seed=st.integers(0, 2**32))
def test_probability_is_respected_for_any_seed(probability: float, seed: int) -> None:
    plan = FaultPlan(F.DuplicateDatagrams(probability), seed=seed)
    hits = sum(plan.decide(recv(0, i, i, 10, "datagram_in")).duplicate == 1 for i in range(1000))
    assert abs(hits / 1000 - probability) <= 0.08  # more than 5 standard deviations


def test_probability_is_respected_per_operation() -> None:
    plan = FaultPlan(F.DropDatagrams(0.3), seed=11)
    drops = sum(
        plan.decide(recv(0, i, i, 10, "datagram_in")).action == "drop" for i in range(10_000)
    )
    assert 2700 <= drops <= 3300


def test_probability_per_connection_is_all_or_nothing() -> None:
    plan = FaultPlan(F.Latency(0.5, probability=0.5, per="connection"), seed=5)
    affected = []
    for connection in range(200):
        delays = {plan.decide(recv(connection, i, i)).delay for i in range(5)}
        assert delays in ({0.0}, {0.5})
        affected.append(delays == {0.5})
    assert 70 <= sum(affected) <= 130


def test_scope_connections_every_address_window() -> None:
    plan = FaultPlan(
        F.PartialReads(1, connections=[1, 3]),
        F.Latency(1.0, every=2),
        F.Latency(10.0, address="10.9.9.9"),
        F.Latency(100.0, after_bytes=5),
        F.Latency(1000.0, first_ops=1),
        seed=1,
    )
    # The read that would cross after_bytes=5 stops there: the window opens exactly.
    assert plan.decide(recv(0, 0, 0)) == Decision(delay=1001.0, limit=5)
    assert plan.decide(recv(1, 0, 0)) == Decision(limit=1, delay=1000.0)
    assert plan.decide(recv(1, 6, 1)) == Decision(limit=1, delay=100.0)
    assert plan.decide(recv(2, 0, 1)) == Decision(delay=1.0, limit=5)
    assert plan.decide(recv(5, 0, 1, address=("10.9.9.9", 5))) == Decision(delay=10.0, limit=5)


@pytest.mark.parametrize(
    ("model", "action"),
    [(F.ResetAfter(10), "reset"), (F.EOFAfter(10), "eof"), (F.Stall(10), "stall")],
)
def test_boundary_models_deliver_up_to_n_then_act(model: Any, action: str) -> None:
    plan = FaultPlan(model, seed=0)
    assert plan.decide(recv(0, 0, 0)).limit == 10
    assert plan.decide(recv(0, 4, 1)).limit == 6
    assert plan.decide(recv(0, 10, 2)).action == action
    if action == "reset":
        assert plan.decide(recv(0, 10, 3)).errno == errno.ECONNRESET


def test_reset_after_can_count_what_the_server_writes() -> None:
    plan = FaultPlan(F.ResetAfter(3, direction="out"), seed=0)
    assert plan.decide(recv(0, 100, 0)) == Decision()
    assert plan.decide(recv(0, 3, 0, kind="send")).action == "reset"


def test_bandwidth_meters_each_direction() -> None:
    plan = FaultPlan(F.Bandwidth(1000), seed=0)
    first = plan.decide(Operation("send", 0, None, 5000, 0, 0, now=10.0))
    assert first == Decision(limit=50)  # 50 ms worth, no wait
    second = plan.decide(Operation("send", 0, None, 5000, 50, 1, now=10.0))
    assert second.delay == pytest.approx(0.05)
    assert plan.decide(Operation("recv", 0, None, 10, 0, 0, now=10.0)).delay == 0.0


def test_burst_loss_losses_come_in_bursts() -> None:
    plan = FaultPlan(F.BurstLoss(p=0.02, r=0.25), seed=9)
    lost = [plan.decide(recv(0, i, i, 10, "datagram_in")).action == "drop" for i in range(20_000)]
    runs, run = [], 0
    for was_lost in lost:
        if was_lost:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    mean_burst = sum(runs) / len(runs)
    assert 3.0 <= mean_burst <= 5.0  # 1 / r = 4
    independent = FaultPlan(F.DropDatagrams(sum(lost) / len(lost)), seed=9)
    independent_runs = []
    run = 0
    for i in range(20_000):
        if independent.decide(recv(0, i, i, 10, "datagram_in")).action == "drop":
            run += 1
        elif run:
            independent_runs.append(run)
            run = 0
    assert sum(independent_runs) / len(independent_runs) < 1.5


def test_datagram_decisions() -> None:
    op = recv(0, 0, 0, 100, "datagram_in")
    assert FaultPlan(F.DuplicateDatagrams(copies=2), seed=0).decide(op).duplicate == 2
    corrupt = FaultPlan(F.CorruptDatagrams(bits=3), seed=0).decide(op).corrupt
    assert len(corrupt) == 3
    assert all(0 <= bit < 800 for bit in corrupt)
    assert FaultPlan(F.TruncateDatagrams(40), seed=0).decide(op).truncate == 40
    assert FaultPlan(F.TruncateDatagrams(400), seed=0).decide(op) == Decision()
    assert 1 <= FaultPlan(F.ReorderDatagrams(3), seed=0).decide(op).hold <= 3
    assert FaultPlan(F.DropDatagrams(direction="out"), seed=0).decide(op) == Decision()


def test_accept_errors_count_their_times_and_take_names() -> None:
    plan = FaultPlan(F.AcceptErrors("ECONNABORTED", times=2), seed=0)
    decisions = [plan.decide(Operation("accept", 0)) for _ in range(3)]
    assert [d.errno for d in decisions] == [errno.ECONNABORTED, errno.ECONNABORTED, None]
    assert "errno=ECONNABORTED" in plan.describe()


def test_abrupt_shutdown_happens_once() -> None:
    plan = FaultPlan(F.AbruptShutdown(connections=2, after_bytes=5), seed=0)
    assert plan.decide(recv(1, 10, 0)) == Decision()
    assert plan.decide(recv(2, 3, 0)) == Decision(limit=2)  # stops where the window opens
    assert plan.decide(recv(2, 5, 1)).action == "shutdown"
    assert plan.decide(recv(2, 9, 2)) == Decision()


def test_merge_combines_decisions() -> None:
    merged = Decision(delay=1, limit=5, action="eof").merge(
        Decision(delay=2, limit=3, action="reset", errno=104, duplicate=1, hold=2)
    )
    assert merged == Decision(delay=3, limit=3, action="eof", errno=None, duplicate=1, hold=2)


def test_describe_and_repr_show_the_seed_and_the_log() -> None:
    plan = FaultPlan(F.PartialReads(2), seed=1234)
    plan.decide(recv(0, 0, 0))
    text = plan.describe()
    assert text.startswith("FaultPlan(seed=1234): 1 fault(s) injected")
    assert "connection 0 from 127.0.0.1:1000:" in text
    assert "recv #0 @0 (4096 bytes): PartialReads(max_chunk=2) -> limit=" in text
    assert "replay: FaultPlan(*models, seed=1234)" in text
    assert repr(plan) == "FaultPlan(PartialReads(max_chunk=2), seed=1234)"


def test_a_shared_rng_draws_from_one_stream() -> None:
    rng = random.Random(7)
    plan = FaultPlan(F.PartialReads(100), rng=rng)
    first = plan.decide(recv(0, 0, 0)).limit
    assert first == random.Random(7).randint(1, 100)


def _two_connections(plan: FaultPlan) -> list[int]:
    return read_all(plan, 300, connection=0) + read_all(plan, 300, connection=1)


@pytest.mark.parametrize("kind", ["shared", "per model", "mixed"])
def test_replay_of_a_plan_with_generators_makes_the_same_decisions(kind: str) -> None:
    models = [F.PartialReads(9), F.Latency(0, jitter=0.5)]
    rng: Any = {
        "shared": random.Random(5),
        "per model": [random.Random(5), random.Random(6)],
        "mixed": [random.Random(5), F.Draws([0.3, 0.7, 0.1])],
    }[kind]
    plan = FaultPlan(*models, rng=rng)
    first = _two_connections(plan)
    again = plan.replay()
    assert again.log == [] and plan.log  # noqa: PT018  (a fresh log; the old one kept)
    assert _two_connections(again) == first
    assert again.log == plan.log
    assert again.seed == plan.seed
    third = again.replay()  # a replay of a replay: from the same start again
    assert _two_connections(third) == first
    assert third.log == plan.log


@settings(max_examples=10)
@given(rng=st.randoms())
def test_replay_of_a_plan_with_hypothesis_randoms_makes_the_same_decisions(
    rng: random.Random,
) -> None:
    plan = FaultPlan(F.PartialReads(9), F.Latency(0, jitter=0.5), rng=rng)
    first = read_all(plan, 30, connection=0) + read_all(plan, 20, connection=1)
    again = plan.replay()
    assert read_all(again, 30, connection=0) + read_all(again, 20, connection=1) == first
    assert again.log == plan.log


def test_replay_refuses_a_generator_it_cannot_copy() -> None:
    class Counter(random.Random):
        def __init__(self) -> None:
            super().__init__(0)
            self.calls = 0

        def random(self) -> float:
            self.calls += 1
            return (self.calls * 0.37) % 1

    plan = FaultPlan(F.PartialReads(9), rng=Counter())
    with pytest.raises(
        sockshock.errors.InvalidArgument,
        match=r"replay\(\) cannot reproduce .* cannot be copied .* use seed= or "
        r"sockshock.faults.Draws, which replay exactly",
    ):
        plan.replay()


def test_a_seed_next_to_generators_is_refused() -> None:
    for rng in (random.Random(1), [random.Random(1)]):
        with pytest.raises(
            sockshock.errors.InvalidArgument,
            match=r"seed=3 and rng=.* both given: .* give one or the other",
        ):
            FaultPlan(F.PartialReads(3), seed=3, rng=rng)


def test_describe_shows_every_event_with_limit_none_and_checks_the_limit() -> None:
    plan = FaultPlan(F.PartialReads(2), seed=1)
    read_all(plan, 50)
    assert plan.describe(limit=None).count(" -> limit=") == len(plan.log)
    assert plan.describe(limit=3).count(" -> limit=") == 3
    with pytest.raises(
        sockshock.errors.InvalidArgument,
        match=r"limit='x' \(type=str\) \(from "
        r"FaultPlan.describe\(\)\)",
    ):
        plan.describe(limit="x")  # type: ignore[arg-type]
    with pytest.raises(sockshock.errors.InvalidArgument, match=r"limit=-1 must be in \[0, inf\]"):
        plan.describe(limit=-1)


def test_a_range_of_connections_is_checked_and_matched_in_constant_time() -> None:
    model = F.PartialReads(3, connections=range(2, 10**18, 2))  # iterated: it never returns
    assert model.connections == range(2, 10**18, 2)
    plan = FaultPlan(model, seed=1)
    assert plan.decide(recv(4, 0, 0)).limit is not None
    assert plan.decide(recv(3, 0, 0)).limit is None
    assert plan.decide(recv(0, 0, 0)).limit is None
    assert F.PartialReads(3, connections=range(10**18, -1, -1)).in_scope(recv(0, 0, 0))
    with pytest.raises(
        sockshock.errors.InvalidArgument, match=r"connections=-2 must be in \[0, inf\]"
    ):
        F.PartialReads(3, connections=range(10**18, -3, -1))
    with pytest.raises(sockshock.errors.InvalidArgument, match="selects no connection at all"):
        F.PartialReads(3, connections=range(5, 5))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: F.EOFAfter(0, side="out"),
            "EOFAfter() takes no argument side='out'; its arguments: nbytes, direction, and the scope "
            "arguments probability, per, connections, every, address, after_bytes, first_ops, layer "
            "(from EOFAfter)",
        ),
        (lambda: F.Stall(1, bogus=2), "Stall() takes no argument bogus=2; its arguments: nbytes"),
        (
            lambda: F.PartialReads(1, 2),
            "PartialReads() takes at most 1 positional argument(s) (max_chunk), not 2",
        ),
        (
            lambda: F.AbruptShutdown(direction="in", nbytes=3),
            "AbruptShutdown() takes no argument nbytes=3; its arguments: direction",
        ),
    ],
)
def test_an_unknown_argument_names_the_public_model_and_what_it_takes(
    make: Any, message: str
) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument) as raised:
        make()
    assert str(raised.value).startswith(message)
    assert "_EndsAfter" not in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"after_bytes": 5}, "after_bytes=5 cannot scope accept()"),
        ({"first_ops": 2}, "first_ops=2 cannot scope accept()"),
        ({"address": "127.0.0.1"}, "address='127.0.0.1' cannot scope accept()"),
        ({"layer": "plaintext"}, "layer='plaintext' cannot scope accept()"),
        (
            {"errno": "ENOENT"},
            "errno='ENOENT' is not an error accept() gives; it can give EAGAIN, "
            "EWOULDBLOCK, EBADF, ECONNABORTED, EINVAL, EMFILE, ENFILE",
        ),
        ({"errno": errno.EPIPE}, f"errno={errno.EPIPE} (EPIPE) is not an error accept() gives"),
    ],
)
def test_accept_errors_refuse_what_accept_cannot_do(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument) as raised:
        F.AcceptErrors(**kwargs)
    assert str(raised.value).startswith(message)
    assert str(raised.value).endswith("(from AcceptErrors)")


def test_accept_errors_take_every_errno_accept_gives_and_their_scopes() -> None:
    from sockshock._faults import ACCEPT_ERRNOS

    assert {"EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED", "EPROTO"} <= set(ACCEPT_ERRNOS)
    for name in ACCEPT_ERRNOS:
        assert F.AcceptErrors(name).errno == getattr(errno, name)
    model = F.AcceptErrors("EMFILE", connections=[1], every=1, probability=0.5, per="connection")
    assert model.errno == errno.EMFILE


def test_unseeded_plans_get_a_printable_seed() -> None:
    assert isinstance(FaultPlan().seed, int)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: F.PartialReads(0),
            sockshock.errors.InvalidArgument,
            "max_chunk=0 must be in [1, inf] (from PartialReads)",
        ),
        (
            lambda: F.PartialWrites("3"),
            sockshock.errors.InvalidArgument,
            "expected int but got max_chunk='3' (type=str) (from PartialWrites)",
        ),
        (
            lambda: F.DropDatagrams(1.5),
            sockshock.errors.InvalidArgument,
            "probability=1.5 must be in [0, 1] (from DropDatagrams)",
        ),
        (
            lambda: F.Latency(-1),
            sockshock.errors.InvalidArgument,
            "seconds=-1 must be in [0, 3600] (from Latency)",
        ),
        (
            lambda: F.Latency(0.1, direction="sideways"),
            sockshock.errors.InvalidArgument,
            "direction='sideways' must be one of 'in', 'out', 'both' (from Latency)",
        ),
        (
            lambda: F.SlowClient(per="request"),
            sockshock.errors.InvalidArgument,
            "per='request' must be one of 'operation', 'connection' (from SlowClient)",
        ),
        (
            lambda: F.AcceptErrors("EWHAT"),
            sockshock.errors.InvalidArgument,
            "errno='EWHAT' is not an errno name such as 'EMFILE' (from AcceptErrors)",
        ),
        (
            lambda: F.Stall(connections="all"),
            sockshock.errors.InvalidArgument,
            "expected an int or a sequence of ints but got connections='all' (type=str) "
            "(from Stall)",
        ),
        (
            lambda: F.BurstLoss(p=2),
            sockshock.errors.InvalidArgument,
            "p=2 must be in [0, 1] (from BurstLoss)",
        ),
        (
            lambda: FaultPlan(F.PartialReads(1), "Latency"),
            sockshock.errors.InvalidArgument,
            "expected a fault model (e.g. sockshock.faults.PartialReads(3)) but got 'Latency'",
        ),
        (
            lambda: FaultPlan(seed="x"),
            sockshock.errors.InvalidArgument,
            "expected int but got seed='x' (type=str) (from FaultPlan(...))",
        ),
        (
            lambda: F.Bandwidth(float("nan")),
            sockshock.errors.InvalidArgument,
            "bytes_per_second=nan must be a finite number (from Bandwidth)",
        ),
    ],
)
def test_bad_parameters_get_one_clear_error(
    make: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        make()
    assert str(info.value).startswith(message)
    assert isinstance(info.value, sockshock.errors.InvalidArgument)


def test_decisions_that_change_nothing_are_not_logged() -> None:
    plan = FaultPlan(F.EOFAfter(2**60), F.PartialReads(10**9), seed=0)
    for i in range(1000):
        plan.decide(recv(0, i * 10, i, size=10))
    assert plan.log == []  # 2,000 decisions, none with an effect


def test_the_log_is_bounded_and_counts_what_it_did_not_keep() -> None:
    plan = FaultPlan(F.PartialReads(1), seed=0, log_limit=5)
    for i in range(12):
        plan.decide(recv(0, i, i))
    assert len(plan.log) == 5
    assert plan.unlogged == 7
    text = plan.describe()
    assert text.startswith("FaultPlan(seed=0): 12 fault(s) injected")
    assert "7 more not kept (the log keeps 5: FaultPlan(log_limit=...))" in text

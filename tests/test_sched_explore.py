"""Exploration: drive.explore(), the pytest marker and fixture, hypothesis-drawn
schedules that shrink to the fewest preemptions -- and the evidence: the example
races of tests/_races.py are found within a stated number of runs, their correct
variants pass every schedule, and replays are exact 20 of 20."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sockshock
from sockshock._sched import Schedule, last_schedule
from sockshock.errors import InvalidArgument
from tests._races import RACES, Race

pytest_plugins = ["pytester"]

#: Runs within which each strategy must find each race (measured: bench/bench_sched.py;
#: these bounds leave a wide margin, and the seeds are fixed, so they cannot flake).
FOUND_WITHIN = {"pct": 100, "random": 20}


def run(race: Race, handler: Any, schedule: Any) -> tuple[list[Any], dict[str, Any]]:
    attrs = race.attrs()
    ts = sockshock.drive(
        handler, race.clients, server="ThreadingTCPServer", schedule=schedule, server_attrs=attrs
    )
    return ts, attrs


def check_for(race: Race, handler: Any) -> Any:
    def check(schedule: Schedule) -> None:
        ts, attrs = run(race, handler, schedule)
        assert not race.broken(attrs, ts), f"{race.name}: {attrs}"

    return check


@pytest.mark.parametrize("strategy", ["pct", "random"])
@pytest.mark.parametrize("race", RACES, ids=[r.name for r in RACES])
def test_each_race_is_found_within_the_stated_runs(race: Race, strategy: str) -> None:
    with pytest.raises(AssertionError) as caught:
        sockshock.drive.explore(
            check_for(race, race.handler), runs=FOUND_WITHIN[strategy], strategy=strategy
        )
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert f"sockshock: the check failed under schedule '{strategy}:" in notes
    assert "replay: schedule='replay:" in notes
    assert "Replay exactly: drive(..., schedule='replay:" in notes


@pytest.mark.parametrize("race", RACES, ids=[r.name for r in RACES])
def test_each_correct_variant_passes_every_schedule(race: Race) -> None:
    for strategy in ("pct", "random"):
        done = sockshock.drive.explore(check_for(race, race.correct), runs=60, strategy=strategy)
        assert len(done) == 60
        assert all(s.exact for s in done)
        assert len({s.choices for s in done}) > 10  # they did differ


@pytest.mark.parametrize("race", RACES, ids=[r.name for r in RACES])
def test_replays_are_exact_twenty_of_twenty(race: Race) -> None:
    with pytest.raises(AssertionError):
        sockshock.drive.explore(
            check_for(race, race.handler), runs=FOUND_WITHIN["random"], strategy="random"
        )
    failing = last_schedule()
    assert failing is not None
    for _ in range(20):
        ts, attrs = run(race, race.handler, failing)
        assert race.broken(attrs, ts)
        assert ts[0].schedule == failing
        assert ts[0].schedule.exact


def test_explore_returns_the_schedules_and_measures_pct_length() -> None:
    race = RACES[0]
    done = sockshock.drive.explore(check_for(race, race.correct), runs=5, seed=40)
    assert [s.seed for s in done] == [40, 41, 42, 43, 44]
    assert done[0].length == 100  # the default, first
    assert done[1].length == done[0].steps  # then measured
    assert all(s.strategy == "pct" for s in done)


def test_explore_refuses_a_check_that_never_drives() -> None:
    with pytest.raises(InvalidArgument, match="never ran drive"):
        sockshock.drive.explore(lambda schedule: None, runs=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "runs"),
        ({"strategy": "dfs"}, "strategy"),
        ({"strategy": "bounded", "preemptions": -1}, "preemptions"),
        ({"depth": 0}, "depth"),
        ({"length": 0}, "length"),
        ({"seed": -3}, "seed"),
    ],
)
def test_explore_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        sockshock.drive.explore(check_for(RACES[0], RACES[0].correct), **kwargs)
    with pytest.raises(InvalidArgument, match="check"):
        sockshock.drive.explore("not callable")  # type: ignore[arg-type]


# -- hypothesis: schedules as drawn choices ---------------------------------------------------


def test_a_drawn_schedule_is_a_random_walk_on_the_given_random() -> None:
    race = RACES[0]
    first = run(race, race.handler, random.Random(3))[0][0].schedule
    second = run(race, race.handler, random.Random(3))[0][0].schedule
    assert first.strategy == "drawn"
    assert first == second


@pytest.mark.parametrize(
    ("race", "fewest"), [(RACES[1], 1), (RACES[2], 2)], ids=["lost update", "ordering"]
)
def test_hypothesis_shrinks_a_failing_schedule_to_the_fewest_preemptions(
    race: Race, fewest: int
) -> None:
    @settings(
        max_examples=100,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.randoms(use_true_random=False))
    def prop(rnd: random.Random) -> None:
        ts, attrs = run(race, race.handler, rnd)
        assert not race.broken(attrs, ts)

    with pytest.raises(AssertionError):
        prop()
    shrunk = last_schedule()  # hypothesis ran the minimal failing example last
    assert shrunk is not None
    assert shrunk.preemptions == fewest
    ts, attrs = run(race, race.handler, shrunk)
    assert race.broken(attrs, ts)


# -- pytest: the marker and the fixture ---------------------------------------------------------

RACY_TEST = """
import pytest, sockshock
from sockshock.scripts import Read, Send
from tests_races import Checkout, LockedCheckout, BUYER

def buy(handler, schedule):
    attrs = {"stock": {"book": 1}, "lock": __import__("threading").Lock()}
    sockshock.drive(handler, [BUYER, BUYER], server="ThreadingTCPServer",
                    schedule=schedule, server_attrs=attrs)
    return attrs["stock"]["book"]

@pytest.mark.sockshock_schedules(runs=200, strategy="random", seed=0)
def test_racy(sockshock_schedule):
    assert buy(Checkout, sockshock_schedule) >= 0, "oversold"

@pytest.mark.sockshock_schedules(runs=30)
def test_locked(sockshock_schedule):
    assert buy(LockedCheckout, sockshock_schedule) == 0

def test_one_schedule_from_the_test_seed(sockshock_schedule):
    assert sockshock_schedule.strategy == "pct"
    assert buy(LockedCheckout, sockshock_schedule) == 0
"""


def _races_module(pytester: pytest.Pytester) -> None:
    from pathlib import Path

    source = Path(__file__).with_name("_races.py").read_text(encoding="utf-8")
    pytester.makepyfile(tests_races=source)


def test_the_marker_runs_schedules_and_reports_the_failing_one(pytester: pytest.Pytester) -> None:
    _races_module(pytester)
    pytester.makepyfile(test_shop=RACY_TEST)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-q")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*oversold*",
            "*sockshock: the check failed under schedule 'random:*' (run * of 200).",
            "*client 1*connect*",
            "*replay: schedule='replay:*",
            "*Run that schedule alone: @pytest.mark.sockshock_schedules(seed=*, runs=1, strategy='random')*",
        ]
    )


def test_a_bad_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.sockshock_schedules(runs=0)
def test_a(sockshock_schedule):
    pass

"""
    )
    result = pytester.runpytest_subprocess("-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*runs*sockshock_schedules on test_bad.py::test_a*"])


def test_the_marker_needs_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.sockshock_schedules(runs=3)
def test_a():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*takes no sockshock_schedule argument*"])


def test_the_bounded_search_tries_every_schedule_within_its_bound() -> None:
    race = RACES[1]  # the lost update: it needs one preemption
    done = sockshock.drive.explore(check_for(race, race.handler), strategy="bounded", preemptions=0)
    assert done.exhaustive is True
    assert len(done) == len({s.choices for s in done})  # each a different schedule
    assert all(s.preemptions == 0 for s in done)
    with pytest.raises(AssertionError) as caught:
        sockshock.drive.explore(
            check_for(race, race.handler), strategy="bounded", preemptions=1, runs=2000
        )
    notes = "\n".join(caught.value.__notes__)
    assert "under schedule 'replay:" in notes
    assert last_schedule() is not None
    assert last_schedule().preemptions == 1
    partial = sockshock.drive.explore(
        check_for(race, race.correct), strategy="bounded", preemptions=1, runs=10
    )
    assert len(partial) == 10
    assert partial.exhaustive is False
    assert sockshock.drive.explore(check_for(race, race.correct), runs=3).exhaustive is None

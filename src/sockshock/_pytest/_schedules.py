"""Schedules in pytest: the ``sockshock_schedule`` fixture and the
``@pytest.mark.sockshock_schedules(runs=100, strategy="pct", seed=None, depth=3,
length=None, preemptions=2)`` marker (``length``: PCT's, measured unless given).

Without the marker the fixture is one schedule, ``Schedule.pct(<the test's seed>)``
(the seed that also seeds its faults). With it, the test body runs once per
schedule -- seeds ``seed, seed + 1, ...`` (default: the test's seed) -- through
``sockshock.drive.explore()``, and stops at the first that fails:
its report shows the seed, the interleaving and the one-line replay, and how to
run that schedule alone.

Light, as the plugin's hooks must be: the scheduler is imported when a test uses
the fixture or the marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from sockshock._pytest._markers import seed_for_test
from sockshock._util import InvalidArgument, check_choice, check_number

if TYPE_CHECKING:
    from sockshock._sched import Schedule

__all__ = [
    "SCHEDULES_MARKER",
    "check_schedules_marker",
    "pytest_pyfunc_call",
    "sockshock_schedule",
]

SCHEDULES_MARKER = (
    "sockshock_schedules(runs=100, strategy='pct', seed=None, depth=3, length=None, "
    "preemptions=2): run the "
    "test once per schedule (PCT, a random walk, or every schedule within a preemption bound: "
    "'bounded'), giving each as the sockshock_schedule argument, and stop at the first that "
    "fails (its seed, interleaving and replay are reported)"
)
_KEYS = ("runs", "strategy", "seed", "depth", "length", "preemptions")


def check_schedules_marker(item: pytest.Item) -> dict[str, Any] | None:
    """The marker's settings, checked (a usage error names the test), or None."""
    marker = item.get_closest_marker("sockshock_schedules")
    if marker is None:
        return None
    where = f"@pytest.mark.sockshock_schedules on {item.nodeid}"
    if marker.args:
        raise pytest.UsageError(
            f"{where}: give runs=, strategy=, seed=, depth=, length=, preemptions= by keyword"
        )
    unknown = sorted(set(marker.kwargs) - set(_KEYS))
    if unknown:
        raise pytest.UsageError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {_KEYS}")
    options = {
        "runs": 100,
        "strategy": "pct",
        "seed": None,
        "depth": 3,
        "length": None,
        "preemptions": 2,
    }
    options.update(marker.kwargs)
    try:
        check_number("runs", options["runs"], low=1, high=10**6, integer=True, source=where)
        check_choice("strategy", options["strategy"], ("pct", "random", "bounded"), source=where)
        check_number(
            "preemptions", options["preemptions"], low=0, high=64, integer=True, source=where
        )
        check_number("depth", options["depth"], low=1, high=64, integer=True, source=where)
        if options["length"] is not None:
            check_number("length", options["length"], low=1, high=10**7, integer=True, source=where)
        if options["seed"] is not None:
            check_number("seed", options["seed"], low=0, high=2**64 - 1, integer=True, source=where)
    except InvalidArgument as exc:
        raise pytest.UsageError(str(exc)) from None
    if "sockshock_schedule" not in getattr(item, "fixturenames", ()):
        raise pytest.UsageError(
            f"{where}: the test takes no sockshock_schedule argument, so its runs could not "
            "differ; add it and pass it to drive(..., schedule=sockshock_schedule)"
        )
    return options


@pytest.fixture
def sockshock_schedule(request: pytest.FixtureRequest) -> Schedule:
    """A schedule for ``drive(..., schedule=sockshock_schedule)``: PCT from the test's
    seed, or, under ``@pytest.mark.sockshock_schedules``, each of its schedules."""
    from sockshock._sched import Schedule

    return Schedule.pct(seed_for_test(request.config, request.node))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """``@pytest.mark.sockshock_schedules``: the body once per schedule."""
    options = check_schedules_marker(pyfuncitem)
    if options is None:
        return None
    from sockshock._sched import explore

    seed = options["seed"]
    if seed is None:
        seed = seed_for_test(pyfuncitem.config, pyfuncitem)
    function = pyfuncitem.obj
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    tried: list[Schedule] = []

    def check(schedule: Schedule) -> None:
        tried.append(schedule)
        kwargs["sockshock_schedule"] = schedule
        function(**kwargs)

    try:
        explore(
            check,
            runs=options["runs"],
            strategy=options["strategy"],
            seed=seed,
            depth=options["depth"],
            length=options["length"],
            preemptions=options["preemptions"],
        )
    except Exception as exc:
        if tried:
            _note(exc, _alone(tried[-1]))
        raise
    return True


def _alone(schedule: Schedule) -> str:
    """The marker that runs ``schedule`` alone: PCT's whole spec (``explore()``
    measures its length: the seed alone would be another schedule)."""
    if schedule.strategy == "pct":
        return (
            f"Run that schedule alone: @pytest.mark.sockshock_schedules(seed={schedule.seed}, "
            f"runs=1, strategy='pct', depth={schedule.depth}, length={schedule.length})"
        )
    if schedule.strategy == "random":
        return (
            f"Run that schedule alone: @pytest.mark.sockshock_schedules(seed={schedule.seed}, "
            "runs=1, strategy='random')"
        )
    return (  # a bounded search's run is a prefix of decisions: its replay line runs it
        "Run that schedule alone: drive(..., schedule=...) with the replay line above, in "
        "place of sockshock_schedule"
    )


def _note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
        exc.args = (f"{exc.args[0]}\n{note}", *exc.args[1:]) if exc.args else (note,)

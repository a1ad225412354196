"""Many schedules, and schedules as text: ``drive.explore()`` runs a check under
one schedule after another and stops at the first that fails, adding the seed,
the interleaving and the one-line replay to its exception; :func:`parse` reads that
one line back (``"pct:7:depth=3:length=100"``, ``"random:7"``,
``"replay:0102:seed=7"``), and :func:`as_schedule` everything ``schedule=``
accepts."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

from sockshock._sched._strategy import (
    DEFAULT_DEPTH,
    DEFAULT_LENGTH,
    Schedule,
    _check_seed,
    last_schedule,
)
from sockshock._util import InvalidArgument, check_choice, check_number, check_seed, did_you_mean

__all__ = ["Exploration", "as_schedule", "explore", "parse"]


class Exploration(list[Schedule]):
    """What ``drive.explore()`` returns: the schedules of the runs, all of which
    passed (without their steps, to keep many runs small), and, for the bounded
    search, whether it tried every schedule within its bound (``exhaustive``;
    ``None`` for PCT and the random walk)."""

    exhaustive: bool | None = None


def explore(
    check: Callable[[Schedule], Any],
    *,
    runs: int = 100,
    strategy: str = "pct",
    seed: int = 0,
    depth: int = DEFAULT_DEPTH,
    length: int | None = None,
    preemptions: int = 2,
) -> Exploration:
    """``sockshock.drive.explore()``: run ``check`` under ``runs`` schedules, stopping
    at the first that fails.

    ``check(schedule)`` runs ``drive(..., schedule=schedule)`` and asserts. With
    ``strategy="pct"``, run ``i`` gets PCT from ``seed + i``
    (``"pct:<seed + i>:depth=...:length=..."``); PCT's ``length`` is measured unless
    given: the default for the first run, the longest run so far after that. With
    ``"random"``, a random walk from ``seed + i``. With ``"bounded"``, every schedule
    with at most ``preemptions`` preemptions, one after the other (CHESS's
    preemption bounding, depth first; ``seed`` seeds faults made from a list of
    models): if none fails and the search ends within ``runs``, the result is
    ``exhaustive``. The first exception gets a note -- the seed, the recorded
    schedule step by step, and the one-line replay -- and is raised again.

    Args:
        check: a function of a schedule.
        runs: how many schedules at most.
        strategy: ``"pct"``, ``"random"`` or ``"bounded"``.
        seed: the first run's seed.
        depth: PCT's depth (``depth - 1`` priority change points).
        length: PCT's estimate of a run's steps (default: measured).
        preemptions: the bounded search's bound.

    Returns:
        An :class:`Exploration`: the runs' schedules (all passed).
    """
    source = "drive.explore()"
    if not callable(check):
        raise InvalidArgument(
            f"expected a function of a schedule but got check={check!r} "
            f"(type={type(check).__name__}) (from {source})"
        )
    check_number("runs", runs, low=1, high=10**7, integer=True, source=source)
    check_choice("strategy", strategy, ("pct", "random", "bounded"), source=source)
    _check_seed(seed, source)
    check_number("depth", depth, low=1, high=64, integer=True, source=source)
    check_number("preemptions", preemptions, low=0, high=64, integer=True, source=source)
    if length is not None:
        check_number("length", length, low=1, high=10**7, integer=True, source=source)
    measured = length or DEFAULT_LENGTH
    done = Exploration()
    pending: list[tuple[tuple[int, ...], int]] = [((), 0)]  # the bounded search's
    for i in range(runs):
        if strategy == "bounded":
            if not pending:
                break
            prefix, used = pending.pop()
            spec = Schedule._prefix_of(prefix, seed)
        elif strategy == "pct":
            spec = Schedule.pct(seed + i, depth=depth, length=measured)
        else:
            spec = Schedule.random(seed + i)
        recorded = _run(check, spec, i + 1, runs, source)
        done.append(recorded._light())
        if strategy == "bounded":
            _branch(pending, prefix, used, recorded.widths, preemptions)
        elif length is None:
            measured = max(recorded.steps, 1) if i == 0 else max(measured, recorded.steps)
    if strategy == "bounded":
        done.exhaustive = not pending
    return done


def _run(
    check: Callable[[Schedule], Any], spec: Schedule, run: int, runs: int, source: str
) -> Schedule:
    """One run of ``check``; its recorded schedule (a failure gets the report)."""
    before = last_schedule()
    try:
        check(spec)
    except Exception as exc:
        recorded = last_schedule()
        _add_note(exc, _failure_report(spec, None if recorded is before else recorded, run, runs))
        raise
    recorded = last_schedule()
    if recorded is before or recorded is None:
        raise InvalidArgument(
            f"the check given to {source} never ran drive(..., schedule=schedule) "
            "with the schedule it was given"
        )
    return recorded


def _branch(
    pending: list[tuple[tuple[int, ...], int]],
    prefix: tuple[int, ...],
    used: int,
    widths: tuple[tuple[int, bool], ...],
    bound: int,
) -> None:
    """The bounded search's next prefixes: at every decision past ``prefix``, every
    other choice that keeps the preemptions within ``bound`` (depth first: the
    earliest decisions are tried last)."""
    for i in range(len(widths) - 1, len(prefix) - 1, -1):
        width, preemptible = widths[i]
        cost = used + (1 if preemptible else 0)
        if cost > bound:
            continue
        for choice in range(1, width):
            pending.append(((*prefix, *(0,) * (i - len(prefix)), choice), cost))


def _failure_report(spec: Schedule, recorded: Schedule | None, run: int, runs: int) -> str:
    """What a failing run's exception gets as a note."""
    if recorded is None:
        return (
            f"sockshock: the check failed under schedule {spec.spec()!r} (run {run} of "
            f"{runs}) before its drive(schedule=...) recorded anything"
        )
    return (
        f"sockshock: the check failed under schedule {spec.spec()!r} (run {run} of "
        f"{runs}).\n{recorded}\n"
        f"Replay exactly: drive(..., {recorded.replay_line()}); "
        f"{_same_schedule(spec)}"
    )


def _same_schedule(spec: Schedule) -> str:
    """How to run ``spec`` again from its string -- never a bare seed that an int
    ``schedule=`` would take for another schedule (PCT with its default length)."""
    if spec.strategy == "replay":  # a bounded search's prefix
        return f"or the same prefix: drive(..., schedule={spec.spec()!r})"
    line = f"or the same {spec.strategy} schedule: drive(..., schedule={spec.spec()!r})"
    as_int = Schedule.pct(spec.seed) if spec.seed is not None else None
    if as_int is not None and as_int.spec() != spec.spec():
        line += f" (the whole string: schedule={spec.seed} is {as_int.spec()!r}, another one)"
    return line


def _add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``; on Python 3.10, which shows no notes, also in its message."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
        return
    exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (f"{exc.args[0]}\n{note}", *exc.args[1:])
    else:
        exc.args = (*exc.args, note)


_FORMS = "'pct:SEED', 'pct:SEED:depth=D:length=K', 'random:SEED', 'replay:DIGITS[:seed=S]'"


def parse(text: str, *, source: str) -> Schedule:
    """A schedule from the string a report prints (:meth:`Schedule.spec`)."""
    parts = text.strip().split(":")
    kind, rest = parts[0], parts[1:]
    where = f"schedule={text!r} (from {source})"
    if kind not in ("pct", "random", "replay") or not rest or not rest[0]:
        raise InvalidArgument(
            f"{where} is not a schedule: give a seed (int), or one of {_FORMS}"
            + did_you_mean(kind, ("pct", "random", "replay"))
        )
    options: dict[str, int] = {}
    allowed = {"pct": ("depth", "length"), "random": (), "replay": ("seed",)}[kind]
    for part in rest[1:]:
        name, _, number = part.partition("=")
        if name not in allowed or not number.isdigit():
            raise InvalidArgument(
                f"{where}: {part!r} is not one of {', '.join(f'{a}=N' for a in allowed) or 'nothing'}"
                f" that {kind!r} takes ({_FORMS})"
            )
        options[name] = int(number)
    if kind == "replay":
        return Schedule.replay(rest[0], seed=options.get("seed"))
    if not rest[0].isdigit():
        raise InvalidArgument(f"{where}: the seed {rest[0]!r} is not a whole number >= 0")
    if kind == "random":
        return Schedule.random(int(rest[0]))
    return Schedule.pct(
        int(rest[0]),
        depth=options.get("depth", DEFAULT_DEPTH),
        length=options.get("length", DEFAULT_LENGTH),
    )


def as_schedule(value: Any, *, source: str) -> Schedule:
    """What ``schedule=`` accepts: a seed (PCT), a recorded schedule (a transcript's
    ``.schedule``), the string a report prints (``"replay:0102:seed=7"``,
    ``"pct:7"``, ``"random:7"``), or a ``random.Random`` whose draws make the
    decisions (hypothesis' ``randoms()``)."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return parse(value, source=source)
    if isinstance(value, random.Random):
        return Schedule._drawn(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(
            f"expected a seed (int), a schedule or its string, or a random.Random but got schedule={value!r} "
            f"(type={type(value).__name__}) (from {source})"
        )
    check_seed(value, name="schedule", source=source)  # named as the caller gave it
    return Schedule.pct(value)

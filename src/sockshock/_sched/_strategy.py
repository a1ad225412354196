"""Schedules: how a scheduled run chooses the next thread, and what it chose.

A decision is recorded only where more than one thread could run, as an index
into the enabled threads listed with the thread that was running first (when it
could go on) and the others in the order they were made. So ``0`` means "no
preemption", a recorded schedule replays by feeding the same indices back, and a
hypothesis-drawn schedule shrinks towards fewer preemptions.

Strategies:

* random walk: each decision uniformly at random;
* PCT (Burckhardt, Kothari, Musuvathi, Nagarakatte: "A randomized scheduler with
  probabilistic guarantees of finding bugs", ASPLOS 2010): random priorities and
  ``depth - 1`` priority change points placed uniformly over the first
  ``length`` steps; the highest-priority enabled thread always runs. For a run of
  at most ``n`` threads and ``k <= length`` steps, a bug of depth ``d`` is found
  with probability at least ``1 / (n * k**(d - 1))`` per run;
* replay: the recorded indices.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sockshock._util import InvalidArgument, check_number, check_seed, check_type

if TYPE_CHECKING:
    from sockshock._sched._core import Event, Scheduler, Task

__all__ = ["DEFAULT_DEPTH", "DEFAULT_LENGTH", "Schedule", "Strategy", "last_schedule"]

#: PCT's default depth (``depth - 1`` change points): bugs needing two preemptions.
DEFAULT_DEPTH = 3
#: PCT's default estimate of a run's length in steps (``explore()`` measures it).
DEFAULT_LENGTH = 100
_STRATEGIES = ("pct", "random", "replay", "drawn")
#: Drawn schedules: at most this many preemptions, among the first DRAWN_HORIZON
#: decisions where the running thread could go on.
DRAWN_PREEMPTIONS = 6
DRAWN_HORIZON = 48
_SHOWN = 48  # bytes of an operation's data shown per step
_last = threading.local()


def last_schedule() -> Schedule | None:
    """The recorded schedule of the latest scheduled run in this thread."""
    return getattr(_last, "schedule", None)


class Strategy:
    """Chooses at each decision; records what it chose."""

    def __init__(self) -> None:
        self.choices: list[int] = []
        #: Each decision: how many threads could run, and whether the running one
        #: was among them (a choice other than 0 there is a preemption).
        self.widths: list[tuple[int, bool]] = []
        self.preemptions = 0
        self.diverged: int | None = None

    def new_task(self, task: Task) -> None:
        """A thread was made."""

    def forced(self, sched: Scheduler, me: Task | None, chosen: Task) -> None:
        """A step where only ``chosen`` could run."""

    def choose(self, sched: Scheduler, me: Task | None, ordered: list[Task]) -> int:
        index = self._pick(sched, me, ordered)
        self.choices.append(index)
        preemptible = ordered[0] is me
        self.widths.append((len(ordered), preemptible))
        if index and preemptible:
            self.preemptions += 1
        return index

    def _pick(self, sched: Scheduler, me: Task | None, ordered: list[Task]) -> int:
        raise NotImplementedError


class RandomWalk(Strategy):
    """Every decision uniformly at random (``rng``: a ``random.Random``, or
    hypothesis' own, whose draws shrink towards 0: no preemption)."""

    def __init__(self, rng: Any) -> None:
        super().__init__()
        self.rng = rng

    def _pick(self, sched: Scheduler, me: Task | None, ordered: list[Task]) -> int:
        return int(self.rng.randrange(len(ordered)))


class Drawn(Strategy):
    """Decisions drawn from hypothesis (``randoms()``), shaped for its shrinker: at
    the first decision, how many preemptions (at most :data:`DRAWN_PREEMPTIONS`),
    and for each, at which of the decisions where the running thread could go on
    (the first :data:`DRAWN_HORIZON`) and to which other thread; every other
    decision (the running thread waits: who goes next) is drawn as it comes.
    Shrinking removes preemptions first, then moves them earlier."""

    def __init__(self, rng: Any) -> None:
        super().__init__()
        self.rng = rng
        self.plan: dict[int, int] | None = None
        self.preemptible = 0

    def _pick(self, sched: Scheduler, me: Task | None, ordered: list[Task]) -> int:
        rng = self.rng
        if self.plan is None:
            self.plan = {}
            for _ in range(int(rng.randrange(DRAWN_PREEMPTIONS + 1))):
                at = int(rng.randrange(DRAWN_HORIZON))
                self.plan.setdefault(at, int(rng.randrange(4)))
        if ordered[0] is me:
            target = self.plan.get(self.preemptible)
            self.preemptible += 1
            return 0 if target is None else 1 + target % (len(ordered) - 1)
        return int(rng.randrange(len(ordered)))


class PCT(Strategy):
    """Probabilistic concurrency testing (see the module's docstring)."""

    def __init__(self, seed: int, depth: int, length: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.depth = depth
        count = min(depth - 1, length)
        points = sorted(self.rng.sample(range(1, length + 1), count))
        #: step number -> the priority the running thread drops to there
        self.change_points = {step: depth - 1 - i for i, step in enumerate(points)}

    def new_task(self, task: Task) -> None:
        task.priority = self.depth + self.rng.random()

    def _change(self, sched: Scheduler, me: Task | None) -> None:
        low = self.change_points.pop(sched.steps, None)
        if low is not None and me is not None:
            me.priority = low

    def forced(self, sched: Scheduler, me: Task | None, chosen: Task) -> None:
        if self.change_points:
            self._change(sched, me)

    def _pick(self, sched: Scheduler, me: Task | None, ordered: list[Task]) -> int:
        if self.change_points:
            self._change(sched, me)
        best = 0
        for i in range(1, len(ordered)):
            if ordered[i].priority > ordered[best].priority:
                best = i
        return best


class Replay(Strategy):
    """The recorded indices, in order; past their end (or where one no longer
    fits) the run has diverged: it goes on without preemptions. With ``prefix``,
    running past the end is the point (a bounded search's prefix), not a
    divergence."""

    def __init__(self, recorded: Sequence[int], prefix: bool = False) -> None:
        super().__init__()
        self.recorded = recorded
        self.prefix = prefix

    def _pick(self, sched: Scheduler, me: Task | None, ordered: list[Task]) -> int:
        i = len(self.choices)
        if i < len(self.recorded) and self.recorded[i] < len(ordered):
            return self.recorded[i]
        if self.diverged is None and not (self.prefix and i >= len(self.recorded)):
            self.diverged = i
        return 0


def _encode(choices: Sequence[int]) -> str:
    if all(c < 10 for c in choices):
        return "".join(map(str, choices))
    return ",".join(map(str, choices))


def _decode(text: str) -> tuple[int, ...]:
    if "," in text:
        return tuple(int(part) for part in text.split(",") if part.strip())
    return tuple(int(ch) for ch in text)


def _shown(detail: Any) -> str:
    if detail is None:
        return ""
    if isinstance(detail, tuple):
        return " ".join(_shown(part) for part in detail if part not in (b"", None))
    if isinstance(detail, (bytes, bytearray)):
        data = bytes(detail)
        text = repr(data[:_SHOWN])
        return text + (f"... ({len(data)} bytes)" if len(data) > _SHOWN else "")
    return str(detail)


class Schedule:
    """How a scheduled run chooses who runs at each switch point -- and, once a run
    has used it, what it chose.

    Not a public name: ``drive(schedule=...)`` takes a seed (PCT), a string -- what
    :meth:`spec` gives: ``"pct:7:depth=3:length=100"``, ``"random:7"``,
    ``"replay:0102:seed=7"`` -- or a recorded schedule. A transcript's
    ``.schedule`` is a recorded one: ``print()`` shows the interleaving (thread,
    operation, bytes), and passing it back as ``schedule=`` replays the run exactly.

    Attributes:
        strategy: ``"pct"``, ``"random"``, ``"replay"`` or ``"drawn"`` (hypothesis).
        seed: the strategy's seed (``None`` for replay and drawn).
        depth: PCT's depth: ``depth - 1`` priority change points.
        length: PCT's estimate of a run's length in steps.
        choices: the recorded decisions (``None`` until a run used the schedule).
        events: every step of the run: thread, operation, data, virtual time.
        preemptions: decisions that switched away from a thread that could go on.
        exact: no thread ran uncontrolled and a replay did not diverge.
        notes: why a run was not exact.
    """

    def __init__(
        self,
        strategy: str = "pct",
        seed: int | None = None,
        *,
        depth: int = DEFAULT_DEPTH,
        length: int = DEFAULT_LENGTH,
        choices: Sequence[int] | None = None,
        _rng: Any = None,
    ) -> None:
        self.strategy = strategy
        self.seed = seed
        self.depth = depth
        self.length = length
        self.choices: tuple[int, ...] | None = None if choices is None else tuple(choices)
        self.events: tuple[Event, ...] = ()
        self.preemptions = 0
        self.exact = True
        self.notes: tuple[str, ...] = ()
        self.steps = 0
        self._ran = False  # a run used it: it has events
        self._rng = _rng
        self._prefix = False  # replay the choices, then no preemption (bounded search)
        #: The run's decisions: (threads that could run, the running one among them).
        self.widths: tuple[tuple[int, bool], ...] = ()

    # -- making one ----------------------------------------------------------------

    @classmethod
    def pct(
        cls, seed: int, *, depth: int = DEFAULT_DEPTH, length: int = DEFAULT_LENGTH
    ) -> Schedule:
        """PCT from ``seed``: ``depth - 1`` change points over ``length`` steps."""
        _check_seed(seed, "Schedule.pct()")
        check_number("depth", depth, low=1, high=64, integer=True, source="Schedule.pct()")
        check_number("length", length, low=1, high=10**7, integer=True, source="Schedule.pct()")
        return cls("pct", seed, depth=depth, length=length)

    @classmethod
    def random(cls, seed: int) -> Schedule:
        """A random walk from ``seed``: each decision uniformly at random."""
        _check_seed(seed, "Schedule.random()")
        return cls("random", seed)

    @classmethod
    def replay(cls, choices: str | Sequence[int], *, seed: int | None = None) -> Schedule:
        """The recorded decisions (a schedule's ``choices``, or the string its
        replay line shows); ``seed``: the run's seed, which a plan made from a list
        of fault models takes (the replay line gives it)."""
        if seed is not None:
            _check_seed(seed, "Schedule.replay()")
        if isinstance(choices, str):
            try:
                decoded = _decode(choices)
            except ValueError:
                raise InvalidArgument(
                    f"Schedule.replay() takes the digits of a recorded schedule (such as "
                    f"'0102'), or numbers separated by commas; got {choices!r}"
                ) from None
        else:
            check_type("choices", choices, (list, tuple), source="Schedule.replay()")
            decoded = tuple(choices)
            for c in decoded:
                check_number("a choice", c, low=0, integer=True, source="Schedule.replay()")
        return cls("replay", seed, choices=decoded)

    @classmethod
    def _prefix_of(cls, choices: Sequence[int], seed: int) -> Schedule:
        """A bounded search's run: ``choices``, then no preemption."""
        made = cls("replay", seed, choices=choices)
        made._prefix = True
        return made

    def _light(self) -> Schedule:
        """This recorded schedule without its steps (what many runs keep)."""
        light = Schedule(
            self.strategy, self.seed, depth=self.depth, length=self.length, choices=self.choices
        )
        light.steps, light.preemptions = self.steps, self.preemptions
        light.exact, light.notes, light._ran = self.exact, self.notes, self._ran
        return light

    @classmethod
    def _drawn(cls, rng: Any) -> Schedule:
        """Decisions drawn from ``rng`` (hypothesis' ``randoms()``: they shrink)."""
        return cls("drawn", None, _rng=rng)

    # -- using one -----------------------------------------------------------------

    @property
    def recorded(self) -> bool:
        """Whether a run used this schedule (then it replays that run)."""
        return self.choices is not None

    def strategy_for_run(self) -> Strategy:
        """The strategy a run uses: a replay of the recorded decisions, or a fresh
        one from the seed (or the drawing ``random.Random``)."""
        if self.choices is not None:
            return Replay(self.choices, prefix=self._prefix)
        if self.strategy == "pct":
            assert self.seed is not None
            return PCT(self.seed, self.depth, self.length)
        if self.strategy == "random":
            return RandomWalk(random.Random(self.seed))
        if self.strategy == "drawn":
            return Drawn(self._rng)
        raise InvalidArgument(f"Schedule(strategy={self.strategy!r}): not one of {_STRATEGIES}")

    def record(
        self, strategy: Strategy, events: list[Event], steps: int, notes: list[str]
    ) -> Schedule:
        """The recorded schedule of a run that used this one."""
        done = Schedule(
            self.strategy,
            self.seed,
            depth=self.depth,
            length=self.length,
            choices=strategy.choices,
        )
        done.events = tuple(events)
        done.steps = steps
        done._ran = True
        done.widths = tuple(strategy.widths)
        done.preemptions = strategy.preemptions
        notes = [note.split("\n", 1)[0] for note in notes]
        if strategy.diverged is not None:
            notes.append(
                f"the replay diverged at decision {strategy.diverged}: the run did not "
                "make the decisions it recorded (the handler or the clients changed, or "
                "something outside the schedule decides, such as real time or shared "
                "state left over from an earlier run)"
            )
        done.notes = tuple(notes)
        done.exact = not notes
        _last.schedule = done
        return done

    # -- showing one ---------------------------------------------------------------

    def spec(self) -> str:
        """The string that makes this schedule's decisions again, for ``schedule=``:
        ``"pct:7:depth=3:length=100"``, ``"random:7"``, ``"replay:0102:seed=7"``."""
        if self.strategy == "pct":
            return f"pct:{self.seed}:depth={self.depth}:length={self.length}"
        if self.strategy == "random":
            return f"random:{self.seed}"
        seed = "" if self.seed is None else f":seed={self.seed}"
        return f"replay:{_encode(self.choices or ())}{seed}"

    def replay_line(self) -> str:
        """``schedule=...`` that replays the run exactly: the recorded decisions (and
        the seed, which faults given as a list of models take)."""
        seed = "" if self.seed is None else f":seed={self.seed}"
        return f"schedule={f'replay:{_encode(self.choices or ())}{seed}'!r}"

    def __repr__(self) -> str:
        if not self._ran:
            return f"<Schedule {self.spec()!r}>"
        return (
            f"<Schedule {self.spec()!r}: {self.steps} steps, {len(self.choices or ())} "
            f"decisions, {self.preemptions} preemptions>"
        )

    def __str__(self) -> str:
        if not self._ran:
            return f"schedule {self.spec()!r} (not run yet)"
        lines = [
            f"schedule {self.spec()!r}: {self.steps} steps, {len(self.choices or ())} "
            f"decisions, {self.preemptions} preemption(s)"
        ]
        width = max((len(e.task) for e in self.events), default=6)
        previous = None
        for e in self.events:
            mark = " " if e.task == previous else ">"
            previous = e.task
            detail = _shown(e.detail)
            lines.append(
                f" {mark} t={e.time:<7g} {e.task:<{width}}  {e.op}"
                + (f" {detail}" if detail else "")
            )
        lines.extend(f"  not exact: {note}" for note in self.notes)
        lines.append(f"  replay: {self.replay_line()}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (
            self.choices == other.choices
            and [e.key() for e in self.events] == [e.key() for e in other.events]
            and (self.choices is not None or self.spec() == other.spec())
        )

    __hash__ = None  # type: ignore[assignment]


def _check_seed(seed: Any, source: str) -> None:
    check_seed(seed, source=source)

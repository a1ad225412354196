"""The controlled scheduler: one controlled thread runs at a time, and control
changes hands only at switch points the scheduler owns.

Every controlled thread is a real thread (handler code runs unmodified) holding a
*baton*, a lock it waits on while another thread runs. At a switch point the
running thread asks the strategy which enabled thread runs next and, if it is
another one, hands the baton over and waits for its own. A thread that must wait
(a read with nothing buffered, a lock someone holds, a virtual sleep) is
*blocked* on a predicate and, perhaps, a virtual deadline; it is enabled again
once its predicate holds. When no thread is enabled, virtual time jumps to the
earliest deadline; when none has a deadline either, the run is deadlocked and
every waiter without a deadline is woken with :class:`~sockshock.HandlerHangs`
(what a real server would do is wait forever).

The thread that started the run watches it: if the running thread reaches no
switch point within a bound (it blocks in C, on a lock made before the run, in a
real sleep, on a thread the scheduler did not start), the watcher reports that
thread's stack and location, and either ends the run (:class:`UncontrolledBlocking`)
or lets it go on uncontrolled, as the caller chose.

Prior art: CHESS (Musuvathi et al., OSDI 2008), AWS shuttle and loom (Rust),
Coyote (.NET), frontrun and interleave-test (Python).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from sockshock._util import HandlerHangs, UncontrolledBlocking

__all__ = [
    "Aborted",
    "Event",
    "Scheduler",
    "Task",
    "current_task",
]

_allocate_lock = threading._allocate_lock  # type: ignore[attr-defined]
_get_ident = threading.get_ident

RUNNABLE, BLOCKED, DONE, DETACHED = 0, 1, 2, 3

#: OS thread ident -> the task it runs, while it runs under control (any run).
TASKS: dict[int, Task] = {}

#: Switch points in one run before it is called a livelock (a handler spinning).
MAX_STEPS = 200_000
#: A running thread that the kernel reports runnable (computing, or waiting for a
#: CPU on a loaded machine) gets this many bounds before it counts as blocked.
STARVED_PATIENCE = 10
#: While every controlled thread waits for a detached (uncontrolled) one, virtual
#: time stands still for this many bounds; then it moves on without it.
DETACHED_PATIENCE = 3
_SCHED_DIR = os.path.dirname(os.path.abspath(__file__))
_THREADING_FILE = os.path.abspath(threading.__file__)


def current_task() -> Task | None:
    """The task the calling thread runs, if it runs under control of an active run
    -- and is not inside the scheduler itself (a finalizer that the garbage
    collector runs there must not reach a switch point)."""
    ident = _get_ident()
    task = TASKS.get(ident)
    if task is None or task.sched.ending or task.sched.lock.holder == ident:
        return None
    return task


class _Guard:
    """The scheduler's lock (a real one), knowing which thread holds it."""

    __slots__ = ("_lock", "holder")

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self.holder: int | None = None

    def __enter__(self) -> _Guard:
        self._lock.acquire()
        self.holder = _get_ident()
        return self

    def __exit__(self, *exc: object) -> None:
        self.holder = None
        self._lock.release()


class Strategy(Protocol):
    """What the scheduler asks of a strategy (``_strategy`` has them)."""

    def new_task(self, task: Task) -> None: ...
    def forced(self, sched: Scheduler, me: Task | None, chosen: Task) -> None: ...
    def choose(self, sched: Scheduler, me: Task | None, ordered: list[Task]) -> int: ...


class Aborted(BaseException):
    """Unwinds a controlled thread when its run is ended early (not an ``Exception``:
    handlers' ``except Exception`` must not swallow it)."""


class Event:
    """One step of a run: which thread ran, the operation it did, and with what."""

    __slots__ = ("detail", "op", "task", "time")

    def __init__(self, task: str, op: str, detail: Any, time: float) -> None:
        self.task = task
        self.op = op
        self.detail = detail
        self.time = time

    def key(self) -> tuple[str, str, Any]:
        return (self.task, self.op, self.detail)

    def __repr__(self) -> str:
        return f"Event({self.task!r}, {self.op!r}, {self.detail!r}, {self.time!r})"


class Task:
    """A controlled thread: its baton, its state and what it waits for."""

    __slots__ = (
        "baton",
        "deadline",
        "event",
        "hang",
        "ident",
        "index",
        "name",
        "native_id",
        "op",
        "priority",
        "ready",
        "sched",
        "state",
        "thread",
        "timed_out",
    )

    def __init__(self, sched: Scheduler, index: int, name: str) -> None:
        self.sched = sched
        self.index = index
        self.name = name
        self.baton = _allocate_lock()
        self.baton.acquire()
        self.state = RUNNABLE
        self.ready: Callable[[], bool] | None = None
        self.deadline: float | None = None
        self.timed_out = False
        self.hang: str | None = None
        self.ident: int | None = None
        self.native_id: int | None = None
        self.thread: threading.Thread | None = None
        self.op = "start"
        self.priority = 0.0
        #: The step of the operation in progress (a wait starts a new one).
        self.event: Event | None = None

    def __repr__(self) -> str:
        return f"<Task {self.name!r} state={self.state}>"


class Scheduler:
    """One scheduled run: its tasks, its virtual time and its strategy.

    Args:
        strategy: chooses the next thread at each decision.
        uncontrolled: ``"fail"`` or ``"continue"`` (see the module's docstring).
        bound: real seconds a running thread may go without a switch point.
    """

    def __init__(self, strategy: Strategy, *, uncontrolled: str = "fail", bound: float = 1.0):
        self.strategy = strategy
        self.uncontrolled = uncontrolled
        self.bound = bound
        self.lock = _Guard()  # the scheduler's state
        self.tasks: list[Task] = []
        self.current: Task | None = None
        self.now = 0.0
        self.steps = 0
        self.events: list[Event] = []
        # Not threading.Event(): made while another run is active, that would be a
        # controlled one, and setting it (in a task, under self.lock) a switch point.
        self.finished = _Done()
        self.failure: BaseException | None = None
        self.ending = False  # aborting: switch points no longer switch
        self.uncontrolled_reports: list[str] = []
        self.names: dict[str, int] = {}
        self.labels: dict[int, tuple[object, str]] = {}  # objects' names in this run

    # -- tasks ---------------------------------------------------------------------

    def add(self, name: str, *, numbered: bool = True) -> Task:
        """A new task, enabled at once (its thread is started by the caller);
        ``numbered``: its name gets the count of tasks of that name so far."""
        if numbered:
            count = self.names.get(name, 0) + 1
            self.names[name] = count
            name = f"{name} {count}"
        task = Task(self, len(self.tasks), name)
        self.tasks.append(task)
        self.strategy.new_task(task)
        return task

    def enter(self, task: Task) -> bool:
        """Called first by a task's own thread: wait for the first turn. False if
        the run ended before this task ever ran."""
        task.ident = _get_ident()
        task.native_id = threading.get_native_id()
        TASKS[task.ident] = task
        task.baton.acquire()
        if self.ending:
            TASKS.pop(task.ident, None)
            with self.lock:
                task.state = DONE
                self._end_if_done()
            return False
        return True

    def exit(self, task: Task) -> None:
        """Called last by a task's own thread: it is done; pass control on."""
        TASKS.pop(task.ident or -1, None)
        with self.lock:
            was_detached = task.state == DETACHED
            task.state = DONE
            if self.ending:
                self._end_if_done()
                return
            if was_detached and self.current is not None:
                return
            self._handoff(task)

    def start(self, first: list[tuple[Task, Callable[[], None]]]) -> None:
        """Start the first tasks' threads and give the first turn."""
        for task, body in first:
            thread = threading.Thread(
                target=self._body, args=(task, body), name=f"sockshock {task.name}", daemon=True
            )
            task.thread = thread
            thread.start()
        with self.lock:
            self._handoff(None)

    def _body(self, task: Task, body: Callable[[], None]) -> None:
        if not self.enter(task):
            return
        try:
            body()
        except Aborted:
            pass
        finally:
            self.exit(task)

    # -- switch points -------------------------------------------------------------

    def switch(self, task: Task, op: str, detail: Any = None, *, done: bool = False) -> Event:
        """A switch point: ``task`` is about to do ``op``; the strategy picks who runs
        next. Returns the step's event, recorded when ``task`` goes on (its
        ``detail`` may be set once the operation is done). ``done``: ``op`` has
        happened already (a thread started, a lock released): recorded at once."""
        event = Event(task.name, op, detail, 0.0)
        task.event = event
        if done:
            with self.lock:
                event.time = self.now
                self.events.append(event)
        with self.lock:
            if self.ending:
                raise Aborted
            task.op = op
            if task.state == DETACHED:  # back under control after running uncontrolled
                task.state = RUNNABLE
                if self.current is None:
                    self.current = task
                    if not done:
                        event.time = self.now
                        self.events.append(event)
                    return event
            else:
                self.steps += 1
                if self.steps > MAX_STEPS:
                    self._livelock(task)
                nxt = self._next(task)
                if nxt is task:
                    if not done:
                        event.time = self.now
                        self.events.append(event)
                    return event
                self._give(nxt)
        task.baton.acquire()
        if self.ending:
            raise Aborted
        if not done:
            with self.lock:
                event.time = self.now
                self.events.append(event)
        return event

    def block(
        self,
        task: Task,
        ready: Callable[[], bool],
        deadline: float | None,
        op: str,
    ) -> bool:
        """Wait until ``ready()`` (True) or virtual time reaches ``deadline``
        (False; ``None``: no deadline). Raises HandlerHangs if the run deadlocks."""
        with self.lock:
            if self.ending:
                raise Aborted
            if ready():
                return True
            was_detached = task.state == DETACHED
            task.state = BLOCKED
            task.ready = ready
            task.deadline = deadline
            task.timed_out = False
            task.op = op
            if not was_detached or self.current is None:
                if was_detached:
                    self.current = task
                self._handoff(task)
        task.baton.acquire()
        if self.ending:
            raise Aborted
        woke = Event(task.name, f"{op} (woke)", None, self.now)
        task.event = woke
        with self.lock:
            self.events.append(woke)
        if task.hang is not None:
            message, task.hang = task.hang, None
            woke.detail = "-> deadlock"
            raise HandlerHangs(message)
        if task.timed_out:
            if op != "sleep":
                woke.detail = "-> timed out"
            return False
        return True

    def sleep(self, task: Task, seconds: float, wake: Callable[[], bool] | None = None) -> bool:
        """A virtual sleep: blocked until time has moved ``seconds`` on (True if
        ``wake()`` first)."""
        deadline = self.now + seconds
        ready = wake if wake is not None else _never
        self.switch(task, "sleep", seconds)
        if ready():
            return True
        if self.now >= deadline:
            return False
        return self.block(task, ready, deadline, "sleep")

    # -- choosing ------------------------------------------------------------------

    def _enabled(self) -> list[Task]:
        enabled = []
        for task in self.tasks:
            state = task.state
            if state == RUNNABLE:
                enabled.append(task)
            elif state == BLOCKED:
                ready = task.ready
                if ready is not None and ready():
                    enabled.append(task)
        return enabled

    def _next(self, me: Task | None, *, past_detached: bool = False) -> Task | None:
        """The task to run next (the caller holds the lock); None: nothing can run
        under control now (everything is done, or waits for a detached thread:
        virtual time stands still while one runs, unless ``past_detached``)."""
        while True:
            enabled = self._enabled()
            if enabled:
                try:
                    if len(enabled) == 1:
                        chosen = enabled[0]
                        self.strategy.forced(self, me, chosen)
                    else:
                        if me is not None and me in enabled:
                            ordered = [me, *(t for t in enabled if t is not me)]
                        else:
                            ordered = enabled
                        chosen = ordered[self.strategy.choose(self, me, ordered)]
                except BaseException as exc:  # hypothesis' StopTest, when its data runs out
                    self.failure = exc
                    self._abort_locked()
                    return None
                if chosen.state == BLOCKED:
                    chosen.state = RUNNABLE
                    chosen.ready = None
                    chosen.deadline = None
                return chosen
            blocked = [t for t in self.tasks if t.state == BLOCKED]
            timed = [t.deadline for t in blocked if t.deadline is not None]
            detached = any(t.state == DETACHED for t in self.tasks)
            if detached and not (past_detached and timed):
                return None  # the detached thread takes over when it comes back
            if not blocked:
                return None  # all done
            if timed:
                self.now = max(self.now, min(timed))
                for t in blocked:
                    if t.deadline is not None and t.deadline <= self.now:
                        t.state = RUNNABLE
                        t.timed_out = True
                        t.ready = None
                        t.deadline = None
                continue
            report = self._deadlock_report(blocked)
            for t in blocked:
                t.state = RUNNABLE
                t.hang = report
                t.ready = None

    def _deadlock_report(self, blocked: list[Task]) -> str:
        waits = "; ".join(f"{t.name} in {t.op}" for t in blocked)
        return (
            f"deadlock at virtual t={self.now:g}: every controlled thread waits and none "
            f"has a timeout ({waits}); on a real server they would wait forever"
        )

    def _give(self, nxt: Task | None) -> None:
        self.current = nxt
        if nxt is None:
            self._end_if_done()
        else:
            nxt.baton.release()

    def _handoff(self, me: Task | None) -> None:
        """``me`` cannot go on (blocked, done, or the run starts): choose and give."""
        self._give(self._next(me))

    def _end_if_done(self) -> None:
        if all(t.state == DONE for t in self.tasks):
            self.current = None
            self.finished.set()

    def _livelock(self, task: Task) -> None:
        self.failure = HandlerHangs(
            f"{MAX_STEPS} switch points without the run ending (last: {task.name} "
            f"doing {task.op}): a thread spins, and on a real server it would spin forever"
        )
        self._abort_locked()
        raise Aborted

    # -- ending --------------------------------------------------------------------

    def _abort_locked(self) -> None:
        self.ending = True
        for task in self.tasks:
            if task.state != DONE and task.baton.locked():
                task.baton.release()  # parked threads wake and unwind (Aborted)
        self.current = None
        self._end_if_done()

    def abort(self) -> None:
        """End the run: every parked thread unwinds (:class:`Aborted`)."""
        with self.lock:
            if not self.ending:
                self._abort_locked()

    # -- watching ------------------------------------------------------------------

    def watch(self, limit: float) -> None:
        """In the thread that started the run: wait for it to finish, watching
        that the running thread keeps reaching switch points (see the module's
        docstring); ``limit`` bounds the whole run in real seconds."""
        bound = self.bound
        started = time.monotonic()
        last_steps, last_change = -1, started
        slice_ = max(0.005, min(0.05, bound / 4))
        while not self.finished.wait(slice_):
            if self.ending:  # ended early: give the threads a bounded time to unwind
                self.finished.wait(max(1.0, bound))
                return
            now = time.monotonic()
            steps = self.steps
            if steps != last_steps:
                last_steps, last_change = steps, now
            elif now - last_change >= bound and self._stuck(now - last_change):
                last_change = now
            if now - started > limit and not self.ending:
                with self.lock:
                    self.failure = UncontrolledBlocking(
                        f"the scheduled run did not end within {limit:g} real seconds "
                        f"({self.steps} switch points; {self._where_everyone()})"
                    )
                    self._abort_locked()

    def _stuck(self, waited: float) -> bool:
        """No switch point for ``waited`` (>= bound) seconds: report the thread that
        runs (or the uncontrolled one everything waits for), then fail or go on.
        False: nothing done yet (a detached thread gets more time)."""
        with self.lock:
            if self.ending:
                return True
            task = self.current
            if task is None:
                detached = [t for t in self.tasks if t.state == DETACHED]
                if not detached:
                    return True
                if waited < DETACHED_PATIENCE * self.bound:
                    return False  # it may still come back by itself
                task = detached[0]
            if task.state == DETACHED:  # still out: let virtual time move without it
                nxt = self._next(None, past_detached=True)
                if nxt is not None:
                    self._give(nxt)
                    return True
            if _runnable(task) and waited < STARVED_PATIENCE * self.bound:
                return False  # it runs (or waits for a CPU on a loaded machine): not blocked
            report = describe(task, self.bound)
            if task.state == DETACHED or self.uncontrolled == "fail":
                if task.state == DETACHED:  # nothing else can run: the run cannot go on
                    report = "every other controlled thread waits for this one. " + report
                self.uncontrolled_reports.append(report)
                self.failure = UncontrolledBlocking(report)
                self._abort_locked()
                return True
            self.uncontrolled_reports.append(report)
            task.state = DETACHED
            self.current = None
            self._give(self._next(None))
            return True

    def _where_everyone(self) -> str:
        return "; ".join(f"{t.name} in {t.op}" for t in self.tasks if t.state != DONE) or "-"


def _never() -> bool:
    return False


class _Done:
    """A one-shot event on a real lock: set once, waited on by the run's starter."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        if self._set:
            return True
        if self._lock.acquire(True, timeout):
            self._lock.release()
        return self._set


def _runnable(task: Task) -> bool:
    """Whether the kernel has ``task``'s thread running or ready to run (Linux's
    ``/proc``: state ``R``); False where that cannot be told."""
    try:
        with open(f"/proc/self/task/{task.native_id}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return bool(fields) and fields[0] == b"R"


def describe(task: Task, bound: float) -> str:
    """What a thread that passed no switch point is doing: its stack and location."""
    frame = sys._current_frames().get(task.ident or -1)
    stack = traceback.extract_stack(frame) if frame is not None else traceback.StackSummary()
    where = "an unknown place"
    for entry in reversed(stack):
        path = os.path.abspath(entry.filename)
        if not path.startswith(_SCHED_DIR) and path != _THREADING_FILE:
            where = f"{entry.filename}:{entry.lineno} in {entry.name}"
            break
    text = "".join(stack.format()) if stack else "  (no stack)\n"
    return (
        f"{task.name} reached no switch point for {bound:g} s: it blocks where the "
        f"scheduler cannot see (a C call, a lock made before the run, a real sleep, a "
        f"thread the scheduler did not start), at {where}.\n"
        f"Its stack (most recent call last):\n{text}"
        "Make locks, events and queues while the run is active (in the handler or "
        "the server's __init__, or let server_attrs carry them: drive() puts a "
        "controlled lock in the place of each unlocked lock it finds there), sleep "
        "on the server's clock, or pass uncontrolled='continue' to let the run go on "
        "without control over that thread."
    )

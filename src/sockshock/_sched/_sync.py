"""Controlled threads and synchronisation primitives, while a scheduled run is active.

:func:`install` puts :class:`ControlledLock`, :class:`ControlledRLock` and
:class:`ControlledCondition` in the place of ``threading.Lock``, ``RLock`` and
``Condition``, and wraps ``Thread.start``, ``join`` and ``is_alive``; the clock
that ``threading`` and ``queue`` measure timeouts on reads virtual time in a
controlled thread. Every
``threading.Event``, ``Semaphore``, ``BoundedSemaphore``, ``Barrier`` and
``queue.Queue`` made meanwhile is built on them (the standard library makes them
from those names), so all of them are controlled; those made before the run are
not (the watcher reports a thread blocked on one).

A controlled primitive keeps its state in a real lock and behaves exactly as the
real one for a thread that is not under control, so the objects made during a run
(by anyone in the process) keep working once it ends. For a controlled thread,
acquiring and releasing are switch points and waiting is the scheduler's: the
thread is blocked until the lock is free (or notified, or the thread ended) and
virtual time bounds the timeouts.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sockshock._sched._core import DONE, TASKS, Aborted, Scheduler, Task, current_task

__all__ = [
    "REAL_LOCK",
    "REAL_LOCK_TYPES",
    "ControlledCondition",
    "ControlledLock",
    "ControlledRLock",
    "install",
    "task_of_thread",
    "uncontrolled",
    "uninstall",
]

_allocate_lock = threading._allocate_lock  # type: ignore[attr-defined]
_get_ident = threading.get_ident
_RealCondition = threading.Condition
_real_monotonic = time.monotonic
_real_start = threading.Thread.start
_real_join = threading.Thread.join
_real_is_alive = threading.Thread.is_alive
#: A real lock, whatever is installed.
REAL_LOCK = _allocate_lock
#: The types of locks made by the real ``threading.Lock()`` and ``RLock()``.
REAL_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))

_install_lock = _allocate_lock()
_installed = 0


@contextlib.contextmanager
def uncontrolled(task: Task) -> Iterator[None]:
    """The calling thread's primitives behave as real ones meanwhile."""
    ident = _get_ident()
    TASKS.pop(ident, None)
    try:
        yield
    finally:
        TASKS[ident] = task


def _acquire(task: Task, real: Any, blocking: bool, timeout: float, what: str) -> bool:
    """A controlled thread acquires ``real``: a switch point, then (if it is held)
    blocked until it is free, within ``timeout`` virtual seconds."""
    sched = task.sched
    sched.switch(task, "acquire", what)
    if real.acquire(False):
        return True
    if not blocking:
        return False
    deadline = None if timeout is None or timeout < 0 else sched.now + timeout

    def free() -> bool:
        return not real.locked()

    while True:
        if not sched.block(task, free, deadline, f"acquire {what}"):
            return False
        if real.acquire(False):  # an uncontrolled thread may have taken it meanwhile
            return True


def _label(sched: Scheduler, obj: object, kind: str) -> str:
    """A name for ``obj`` that is the same in every run of the same code: its kind
    and the order in which the run first used it."""
    labels = sched.labels
    entry = labels.get(id(obj))
    if entry is None or entry[0] is not obj:
        count = sum(1 for _, name in labels.values() if name.startswith(kind)) + 1
        entry = labels[id(obj)] = (obj, f"{kind} {count}")
    return entry[1]


class ControlledLock:
    """``threading.Lock`` under a scheduled run (see the module's docstring)."""

    __slots__ = ("__weakref__", "_real")

    def __init__(self) -> None:
        self._real = _allocate_lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        task = current_task()
        if task is None:
            return bool(self._real.acquire(blocking, timeout))
        return _acquire(task, self._real, blocking, timeout, _label(task.sched, self, "lock"))

    def release(self) -> None:
        self._real.release()
        task = current_task()
        if task is not None:
            task.sched.switch(task, "release", _label(task.sched, self, "lock"), done=True)

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    def locked(self) -> bool:
        return bool(self._real.locked())

    def _at_fork_reinit(self) -> None:
        self._real = _allocate_lock()

    # What threading.Condition uses when it finds it.
    def _is_owned(self) -> bool:
        return bool(self._real.locked())

    def _release_save(self) -> None:
        self._real.release()

    def _acquire_restore(self, state: object) -> None:
        self.acquire()

    def __repr__(self) -> str:
        return f"<sockshock controlled {'locked' if self.locked() else 'unlocked'} lock>"


class ControlledRLock:
    """``threading.RLock`` under a scheduled run (see the module's docstring)."""

    __slots__ = ("__weakref__", "_count", "_owner", "_real")

    def __init__(self) -> None:
        self._real = _allocate_lock()
        self._owner: int | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _get_ident()
        if self._owner == me:
            self._count += 1
            return True
        task = current_task()
        if task is None:
            if not self._real.acquire(blocking, timeout):
                return False
        elif not _acquire(task, self._real, blocking, timeout, _label(task.sched, self, "rlock")):
            return False
        self._owner, self._count = me, 1
        return True

    def release(self) -> None:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count:
            return
        self._owner = None
        self._real.release()
        task = current_task()
        if task is not None:
            task.sched.switch(task, "release", _label(task.sched, self, "rlock"), done=True)

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    def locked(self) -> bool:
        return bool(self._real.locked())

    def _at_fork_reinit(self) -> None:
        self._real = _allocate_lock()
        self._owner, self._count = None, 0

    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> tuple[int, int | None]:
        state = (self._count, self._owner)
        self._owner, self._count = None, 0
        self._real.release()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        self.acquire()
        self._count, self._owner = state

    def __repr__(self) -> str:
        return f"<sockshock controlled rlock owner={self._owner} count={self._count}>"


class ControlledCondition(_RealCondition):
    """``threading.Condition`` under a scheduled run: ``wait()`` of a controlled
    thread is the scheduler's; everything else is the standard library's."""

    def wait(self, timeout: float | None = None) -> bool:
        task = current_task()
        if task is None:
            return super().wait(timeout)
        if not self._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = _allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)  # type: ignore[attr-defined]
        saved = self._release_save()  # type: ignore[attr-defined]
        sched = task.sched
        notified = False
        try:
            if timeout is not None and timeout <= 0:
                notified = waiter.acquire(False)
            else:
                deadline = None if timeout is None else sched.now + timeout
                notified = sched.block(
                    task,
                    lambda: not waiter.locked(),
                    deadline,
                    f"wait {_label(sched, self, 'condition')}",
                )
            return notified
        finally:
            if not notified:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)  # type: ignore[attr-defined]
            self._acquire_restore(saved)  # type: ignore[attr-defined]


# -- threads ---------------------------------------------------------------------


def _task_name(thread: threading.Thread) -> tuple[str, bool]:
    """A name for a thread's task that is the same in every run: (name, numbered)."""
    target = getattr(thread, "_target", None)
    name = getattr(target, "__name__", "")
    if name == "process_request_thread":
        return "handler", True
    if name == "_work":
        return "worker", True
    if not thread.name.startswith("Thread-"):
        return thread.name, False
    return "thread", True


def _start(self: threading.Thread) -> None:
    task = current_task()
    if task is None:
        _real_start(self)
        return
    sched = task.sched
    name, numbered = _task_name(self)
    child = sched.add(name, numbered=numbered)
    child.thread = self
    run = self.run

    def controlled_run() -> None:
        if not sched.enter(child):
            return
        try:
            run()
        except Aborted:
            pass
        finally:
            sched.exit(child)

    self.run = controlled_run  # type: ignore[method-assign]
    # On the thread itself (a cycle the collector takes), not in a WeakKeyDictionary,
    # whose values (the task, which knows its thread) would keep its keys alive.
    self._sockshock_task = child  # type: ignore[attr-defined]
    self.daemon = True  # a thread left stuck in C must not keep the process alive
    try:
        with uncontrolled(task):
            _real_start(self)
    except BaseException:
        with sched.lock:
            child.state = DONE
        raise
    sched.switch(task, "start", child.name, done=True)


def _join(self: threading.Thread, timeout: float | None = None) -> None:
    task = current_task()
    child = task_of_thread(self)
    if task is None or child is None or child.sched is not task.sched:
        _real_join(self, timeout)
        return
    if child is task:
        raise RuntimeError("cannot join current thread")
    sched = task.sched
    if child.state != DONE:
        deadline = None if timeout is None else sched.now + max(0.0, timeout)
        if not sched.block(task, lambda: child.state == DONE, deadline, f"join {child.name}"):
            return
    with uncontrolled(task):  # its thread is ending: only the standard library's part is left
        _real_join(self)


def _is_alive(self: threading.Thread) -> bool:
    child = task_of_thread(self)
    if child is not None and current_task() is not None:
        return child.state != DONE
    return _real_is_alive(self)


def task_of_thread(thread: threading.Thread) -> Task | None:
    task: Task | None = getattr(thread, "_sockshock_task", None)
    return task


def _monotonic() -> float:
    """``time.monotonic`` for the standard library's timeouts (``Condition.wait_for``,
    ``Semaphore.acquire``, ``Barrier``, ``queue.Queue``): virtual time for a
    controlled thread, so that their deadlines agree with their virtual waits."""
    task = current_task()
    if task is None:
        return _real_monotonic()
    return task.sched.now


_PATCHES: list[tuple[Any, str, Callable[..., Any] | type]] = [
    (threading, "_time", _monotonic),
    (queue, "time", _monotonic),
    (threading, "Lock", ControlledLock),
    (threading, "RLock", ControlledRLock),
    (threading, "Condition", ControlledCondition),
    (threading.Thread, "start", _start),
    (threading.Thread, "join", _join),
    (threading.Thread, "is_alive", _is_alive),
]
_ORIGINALS = [(owner, name, getattr(owner, name)) for owner, name, _ in _PATCHES]


def install() -> None:
    """Put the controlled primitives in place (counted: runs may overlap)."""
    global _installed
    with _install_lock:
        if _installed == 0:
            for owner, name, replacement in _PATCHES:
                setattr(owner, name, replacement)
        _installed += 1


def uninstall() -> None:
    """Undo :func:`install` (the last of the overlapping runs puts things back)."""
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed == 0:
            for owner, name, original in _ORIGINALS:
                setattr(owner, name, original)

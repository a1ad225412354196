"""Uncontrolled blocking in a scheduled run: a thread that reaches no switch point
within the bound (a lock made before the run, a real sleep, a queue fed by a thread
the scheduler did not start) is reported with its stack and location -- never a
hang -- and the run fails or goes on uncontrolled, as asked."""

from __future__ import annotations

import inspect
import queue
import threading
import time
from typing import Any

import pytest

import sockshock
from sockshock import socketserver
from sockshock.errors import HandlerHangs
from sockshock.scripts import Pause, Read, Send

BOUND = 0.1
ASKER = [Pause(1), Send(b"x\n"), Read(until=b"\n")]
HERE = __file__.rsplit("/", 1)[-1]


class OldLock(socketserver.StreamRequestHandler):
    lock = threading.Lock()  # made at import, long before any run: uncontrolled

    def handle(self) -> None:
        with self.lock:  # the second handler blocks here, in C
            self.wfile.write(self.rfile.readline())


def first_contended(uncontrolled: str) -> tuple[float, Any]:
    """The first seed whose run has the second handler wait for the old lock."""
    for seed in range(30):
        started = time.monotonic()
        try:
            ts = sockshock.drive(
                OldLock,
                [ASKER, ASKER],
                server="ThreadingTCPServer",
                schedule=seed,
                uncontrolled=uncontrolled,
                uncontrolled_after=BOUND,
            )
        except HandlerHangs as exc:
            return time.monotonic() - started, exc
        if not ts[0].schedule.exact:
            return time.monotonic() - started, ts
    raise AssertionError("no seed made the handlers contend for the lock")


def test_a_lock_made_before_the_run_is_reported_with_stack_and_location() -> None:
    took, error = first_contended("fail")
    assert isinstance(error, HandlerHangs)
    message = str(error)
    assert "reached no switch point for 0.1 s" in message
    assert "a lock made before the run" in message
    line = inspect.getsourcelines(OldLock.handle)[1] + 1  # the `with self.lock:` line
    assert f"{HERE}:{line} in handle" in message
    assert "Its stack (most recent call last):" in message
    assert "uncontrolled='continue'" in message
    notes = "\n".join(getattr(error, "__notes__", []))
    assert "replay: schedule='replay:" in notes
    assert took < BOUND + 1.5
    assert not OldLock.lock.locked()  # the threads unwound
    assert not [t for t in threading.enumerate() if t.name.startswith("sockshock ")]


def test_continue_lets_the_run_go_on_and_says_it_is_not_exact() -> None:
    took, ts = first_contended("continue")
    assert [t.received for t in ts] == [b"x\n", b"x\n"]
    schedule = ts[0].schedule
    assert not schedule.exact
    assert "reached no switch point" in schedule.notes[0]
    assert "not exact: handler" in str(schedule)
    assert took < BOUND + 1.5


def test_a_real_sleep_is_reported_where_it_sleeps() -> None:
    class Sleeps(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            time.sleep(BOUND * 8)  # a real sleep: no switch point for that long (margin: load)
            self.wfile.write(b"late\n")

    started = time.monotonic()
    with pytest.raises(HandlerHangs, match=r"handler 1 reached no switch point") as caught:
        sockshock.drive(Sleeps, [[Read(until=b"\n")]], schedule=0, uncontrolled_after=BOUND)
    assert f"{HERE}:" in str(caught.value)
    assert "in handle" in str(caught.value)
    assert time.monotonic() - started < BOUND * 8 + 1.5


def test_a_real_sleep_under_continue_finishes_the_run() -> None:
    class Sleeps(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            time.sleep(BOUND * 2)
            self.wfile.write(b"late\n")

    ts = sockshock.drive(
        Sleeps,
        [[Read(until=b"\n")], [Read(until=b"\n")]],
        schedule=0,
        uncontrolled="continue",
        uncontrolled_after=BOUND,
    )
    assert [t.received for t in ts] == [b"late\n", b"late\n"]
    assert not ts[0].schedule.exact


def test_a_queue_fed_by_a_thread_the_scheduler_did_not_start() -> None:
    inbox: queue.Queue[bytes] = queue.Queue()  # made before the run

    class Waits(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(inbox.get(timeout=5))

    feeder = threading.Timer(BOUND * 6, inbox.put, args=(b"fed\n",))  # margin: load
    feeder.start()
    try:
        with pytest.raises(HandlerHangs, match="reached no switch point") as caught:
            sockshock.drive(Waits, [[Read(until=b"\n")]], schedule=0, uncontrolled_after=BOUND)
        assert "queue.py" in str(caught.value)  # the stack goes down into the queue
    finally:
        feeder.cancel()
        inbox.put(b"unblock\n")
        feeder.join(5)
    assert not feeder.is_alive()

"""Clocks for the fault layer: real time, or virtual time that advances instantly."""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol, runtime_checkable

from sockshock._util._errors import InvalidArgument, check_number
from sockshock._util._public import exported_by

__all__ = ["Clock", "RealClock", "VirtualClock", "resolve_clock"]


def _check_seconds(seconds: object, source: str) -> None:
    """A time to sleep: a finite number >= 0 (checked on every sleep: the common
    case costs one type test and one comparison)."""
    if (type(seconds) is float or type(seconds) is int) and 0 <= seconds < math.inf:
        return
    check_number("seconds", seconds, low=0, source=source)


@runtime_checkable
class Clock(Protocol):
    """What the fault layer needs from a clock."""

    def now(self) -> float:
        """Seconds on this clock (monotonic)."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Let ``seconds`` pass; return True if ``wake`` was set first."""
        ...


class RealClock:
    """``time.monotonic``; sleeping waits on the socket's close event."""

    def now(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait ``seconds`` (a finite number >= 0), or until ``wake`` is set; True
        if it was."""
        _check_seconds(seconds, "RealClock.sleep()")
        if seconds <= 0:
            return bool(wake and wake.is_set())
        if wake is None:
            time.sleep(seconds)
            return False
        return wake.wait(seconds)

    def __repr__(self) -> str:
        return "RealClock()"


@exported_by("sockshock.layer")
class VirtualClock:
    """Virtual time: delays advance the clock instead of sleeping.

    A 60-second slow client against a 5-second socket timeout ends in
    milliseconds, with ``TimeoutError`` at virtual t=5 s. The clock is shared by
    all connections and each delay advances it, so concurrent delays add up
    instead of overlapping; outcomes compare each delay with its socket's
    timeout and do not depend on that.

    Args:
        start: the virtual time the clock starts at, in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        check_number("start", start, low=0, source="VirtualClock()")
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The virtual time: the start plus every sleep taken so far.

        Returns:
            Seconds, as ``time.monotonic()`` would give them.
        """
        return self._now  # one float read is atomic; advancing it takes the lock

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Advance the clock by ``seconds`` (a finite number >= 0) unless ``wake``
        is already set (then True).

        Args:
            seconds: how far to advance the clock.
            wake: an event that, if already set, makes the sleep a no-op.

        Returns:
            True if ``wake`` was set (nothing advanced), else False.
        """
        _check_seconds(seconds, "VirtualClock.sleep()")
        if wake is not None and wake.is_set():
            return True
        with self._lock:
            self._now += seconds
        return False

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now():g})"


def resolve_clock(clock: object, *, source: str) -> Clock:
    """``None``/``"real"`` -> RealClock, ``"virtual"`` -> VirtualClock, or a Clock."""
    if isinstance(clock, (RealClock, VirtualClock)):  # before the (slow) protocol check
        return clock
    if clock is None or clock == "real":
        return RealClock()
    if clock == "virtual":
        return VirtualClock()
    if isinstance(clock, type):  # clock=VirtualClock: the class has now() and sleep() too
        raise InvalidArgument(
            f"expected 'real', 'virtual' or a Clock instance but got "
            f"clock={clock!r}, a class (from {source}); give an instance: "
            f"clock={clock.__name__}()"
        )
    if isinstance(clock, Clock):
        return clock
    raise InvalidArgument(
        f"expected 'real', 'virtual' or a Clock (now(), sleep()) but got clock={clock!r} "
        f"(type={type(clock).__name__}) (from {source})"
    )

"""The exception hierarchy and the one place where arguments are checked.

Every exception sockshock raises on purpose derives from :class:`SockshockError`.
Configuration mistakes also derive from the built-in exception that existing code
already catches for them (``ValueError`` / ``TypeError``), in the manner of
hypothesis' ``InvalidArgument``. Faults injected on the data path never use these
classes: they are plain ``OSError`` instances, exactly as the kernel would report.
"""

from __future__ import annotations

import math
from typing import Any

from sockshock._util._public import exported_by

__all__ = [
    "FaultNeverFired",
    "HandlerError",
    "HandlerHangs",
    "InvalidArgument",
    "LayerConformanceError",
    "LeakError",
    "ProxyError",
    "ShutdownDeadlockError",
    "ShutdownTimeout",
    "ShutdownTooSlow",
    "SockshockError",
    "TLSUnavailable",
    "check_choice",
    "check_number",
    "check_type",
    "did_you_mean",
]


@exported_by("sockshock.errors")
class SockshockError(Exception):
    """Root of every exception sockshock raises deliberately."""


@exported_by("sockshock.errors")
class InvalidArgument(SockshockError, ValueError, TypeError):
    """A parameter, a scenario file, a server class or a command-line option was given
    a value sockshock cannot use.

    The message names the value, the problem, what is allowed and where the value
    came from. It is both a ``ValueError`` and a ``TypeError``, so that code which
    already catches either for a bad argument keeps working.
    """


@exported_by("sockshock.errors")
class ShutdownDeadlockError(SockshockError, RuntimeError):
    """``shutdown()`` was called where waiting for the serving loop would never end.

    The standard library hangs forever in this situation (gh-83978); sockshock
    raises instead. Like ``threading.Thread.join()`` on the current thread, this
    is a ``RuntimeError``.
    """


@exported_by("sockshock.errors")
class ShutdownTimeout(SockshockError):
    """A server did not stop within the harness's bound.

    The message says what was left behind (threads with their stacks, captured
    before the harness forced their connections closed; forked children, killed)
    so that the test run can go on: nothing sockshock started can keep the
    process alive.
    """


@exported_by("sockshock.errors")
class ShutdownTooSlow(SockshockError, AssertionError):
    """``assert_stops_within()``: stopping took longer than the stated bound."""


@exported_by("sockshock.errors")
class HandlerError(SockshockError):
    """A request handler failed in a forked child with an exception that could not
    be sent to the parent as itself; the message holds the child's traceback."""


@exported_by("sockshock.errors")
class HandlerHangs(SockshockError, RuntimeError):
    """A handler driven in memory (``sockshock.drive()``) would never return on a
    real socket: it waits for data that can never come (no timeout, and its peer
    has finished without closing), or keeps reading after its peer has finished
    (end of file, a reset or a timeout, a thousand times in a row). Raised inside
    the handler, from the read that would hang or spin. In a scheduled run
    (``drive(schedule=...)``) also a deadlock: every controlled thread waits and
    none has a timeout; it is raised in each of the waiting threads."""


class UncontrolledBlocking(HandlerHangs):
    """A thread of a scheduled run (``drive(schedule=...)``) reached no switch point
    within the bound: it blocks where the scheduler cannot see (a C call, a lock made
    before the run, a real sleep, a thread the scheduler did not start). The message
    holds that thread's stack and location; ``drive(uncontrolled="continue")`` lets
    the run go on without control over it instead. (A :class:`HandlerHangs`: the
    public surface has no name of its own for it.)"""


@exported_by("sockshock.errors")
class LeakError(SockshockError, AssertionError):
    """Something outlived the block it was created in (``report`` says what)."""

    def __init__(self, report: Any) -> None:
        super().__init__(str(report))
        self.report = report


class LayerConformanceError(SockshockError, AssertionError):
    """A socket layer does not behave like the operating system's sockets (raised by
    ``sockshock.layer.check_socket_layer``; catch it as ``AssertionError``)."""


@exported_by("sockshock.errors")
class ProxyError(SockshockError):
    """A :class:`~sockshock.FaultProxy` was used out of order (its address asked
    before ``start()``, a second ``start()``), or its I/O thread failed or would
    not stop (the cause is chained)."""


class TLSUnavailable(SockshockError, ImportError):
    """TLS was asked for but trustme, which makes its certificates, is not installed
    (catch it as ``ImportError``)."""


@exported_by("sockshock.errors")
class FaultNeverFired(UserWarning):
    """A fault model never fired while a server ran: the test did not test what it
    says (the model's scope missed every operation, or it cannot apply there)."""


def did_you_mean(name: Any, choices: Any, *, cutoff: float = 0.6) -> str:
    """``"did you mean 'X'? "`` for the closest of ``choices`` to ``name``, or ``""``."""
    import difflib

    if not isinstance(name, str):
        return ""
    names = [str(c) for c in choices]
    folded = {n.casefold(): n for n in names}  # 'tcpserver' -> 'TCPServer'
    if name.casefold() in folded and name not in names:
        return f"did you mean {folded[name.casefold()]!r}? "
    close = difflib.get_close_matches(name, names, n=1, cutoff=cutoff)
    return f"did you mean {close[0]!r}? " if close else ""


def _where(source: str | None) -> str:
    return f" (from {source})" if source else ""


def check_type(
    name: str, value: Any, expected: type | tuple[type, ...], *, source: str | None = None
) -> None:
    """Raise :class:`InvalidArgument` unless ``isinstance(value, expected)``.

    ``bool`` is never accepted where a number is expected.
    """
    types = expected if isinstance(expected, tuple) else (expected,)
    numeric = any(t in (int, float) for t in types)
    if isinstance(value, types) and not (numeric and isinstance(value, bool) and bool not in types):
        return
    wanted = " or ".join(t.__name__ for t in types)
    raise InvalidArgument(
        f"expected {wanted} but got {name}={value!r} (type={type(value).__name__}){_where(source)}"
    )


def _bound(value: float) -> str:
    """An int as written (16777216, not 1.67772e+07); a float compactly (3600, 1e+12)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    source: str | None = None,
) -> None:
    """Check that ``value`` is a finite number in the given range.

    The message names the parameter, the value and the allowed range, e.g.
    ``probability=1.5 must be in [0, 1]``.
    """
    kind = type(value)
    if (
        (kind is int or (kind is float and not integer and math.isfinite(value)))
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    ):
        return  # the common case, fast
    check_type(name, value, int if integer else (int, float), source=source)
    if not integer and not math.isfinite(value):
        raise InvalidArgument(f"{name}={value!r} must be a finite number{_where(source)}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else _bound(low)
        hi = "inf" if high is None else _bound(high)
        raise InvalidArgument(
            f"{name}={value!r} must be in {left}{lo}, {hi}{right}{_where(source)}"
        )


def check_choice(
    name: str, value: Any, choices: tuple[Any, ...], *, source: str | None = None
) -> None:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise InvalidArgument(f"{name}={value!r} must be one of {listed}{_where(source)}")

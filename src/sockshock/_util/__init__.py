"""Leaves every layer uses: the exceptions and the argument checks (``_errors``), the address rules (``_address``), clocks (``_clock``), the version."""

from sockshock._util._clock import Clock, RealClock, VirtualClock, resolve_clock
from sockshock._util._errors import (
    FaultNeverFired,
    HandlerError,
    HandlerHangs,
    InvalidArgument,
    LayerConformanceError,
    LeakError,
    ProxyError,
    ShutdownDeadlockError,
    ShutdownTimeout,
    ShutdownTooSlow,
    SockshockError,
    TLSUnavailable,
    UncontrolledBlocking,
    check_choice,
    check_number,
    check_type,
    did_you_mean,
)
from sockshock._util._version import __version__

__all__ = [
    "Clock",
    "FaultNeverFired",
    "HandlerError",
    "HandlerHangs",
    "InvalidArgument",
    "LayerConformanceError",
    "LeakError",
    "ProxyError",
    "RealClock",
    "ShutdownDeadlockError",
    "ShutdownTimeout",
    "ShutdownTooSlow",
    "SockshockError",
    "TLSUnavailable",
    "UncontrolledBlocking",
    "VirtualClock",
    "__version__",
    "check_choice",
    "check_number",
    "check_type",
    "did_you_mean",
    "resolve_clock",
]

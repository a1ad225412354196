"""Every exception and warning sockshock raises on purpose.

Faults injected on the data path never use these classes: they are plain
``OSError`` instances, exactly as the kernel would report them.
"""

from sockshock._util import (
    ConfigurationError,
    FaultNeverFired,
    HandlerError,
    HandlerHangs,
    InvalidArgument,
    InvalidType,
    LayerConformanceError,
    LeakError,
    ProxyError,
    ShutdownDeadlockError,
    ShutdownTimeout,
    ShutdownTooSlow,
    SockshockError,
    SockshockWarning,
    TLSUnavailable,
)

__all__ = [
    "ConfigurationError",
    "FaultNeverFired",
    "HandlerError",
    "HandlerHangs",
    "InvalidArgument",
    "InvalidType",
    "LayerConformanceError",
    "LeakError",
    "ProxyError",
    "ShutdownDeadlockError",
    "ShutdownTimeout",
    "ShutdownTooSlow",
    "SockshockError",
    "SockshockWarning",
    "TLSUnavailable",
]

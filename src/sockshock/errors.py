"""Every exception and warning sockshock raises on purpose.

* :class:`SockshockError` -- the root of them all.
* :class:`InvalidArgument` -- a value sockshock cannot use (a parameter, a scenario
  file, a server class, a command-line option); also a ``ValueError`` and a
  ``TypeError``.
* :class:`ShutdownTimeout` -- a server did not stop within its bound (what was stuck
  is in the message); :class:`ShutdownTooSlow` -- ``assert_stops_within()`` failed;
  :class:`ShutdownDeadlockError` -- ``shutdown()`` called where it could never return.
* :class:`HandlerError` -- a forked child's handler failed with an exception that
  could not cross the process boundary; :class:`HandlerHangs` -- a handler run by
  ``drive()`` would never return on a real socket.
* :class:`LeakError` -- threads, descriptors, children or socket files outlived
  their block.
* :class:`ProxyError` -- a fault proxy used out of order, or its I/O thread failed.
* :class:`FaultNeverFired` -- a warning: a fault model's scope took in no operation.

Faults injected on the data path never use these classes: they are plain
``OSError`` instances, exactly as the kernel would report them.
"""

from sockshock._util import (
    FaultNeverFired,
    HandlerError,
    HandlerHangs,
    InvalidArgument,
    LeakError,
    ProxyError,
    ShutdownDeadlockError,
    ShutdownTimeout,
    ShutdownTooSlow,
    SockshockError,
)

__all__ = [
    "FaultNeverFired",
    "HandlerError",
    "HandlerHangs",
    "InvalidArgument",
    "LeakError",
    "ProxyError",
    "ShutdownDeadlockError",
    "ShutdownTimeout",
    "ShutdownTooSlow",
    "SockshockError",
]

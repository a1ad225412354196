"""sockshock: find out how socket servers behave when the network misbehaves.

Layout (dependencies point down only; public modules re-export, the code lives in
``_private`` modules):

* ``sockshock.socketserver`` -- the drop-in ``socketserver`` (a public module in
  its own right, like the standard one) whose sockets come from a socket layer.
* ``sockshock.layer`` -- the socket-layer protocol, the default layer and the
  conformance check any layer can run.
* ``sockshock.faults`` -- pure, seeded fault models and the FaultPlan (``_faults``).
* ``_injection`` -- FaultLayer/FaultySocket, the only code that carries faults
  out on real sockets; ``_clock`` -- real and virtual clocks.
* ``_harness`` -- :func:`serving`, which runs any server for a ``with`` block and
  never hangs a test run.
* ``_audit`` -- the leak audit (threads, descriptors, children, socket files).
* ``pytest_plugin`` -- fixtures, markers and options (entry point ``pytest11``);
  ``cli`` -- ``sockshock run``.
* ``_catalog`` -- the server classes and their traits, for test matrices.
* ``_errors`` -- the exception hierarchy and argument checks.
"""

from sockshock._errors import (
    ConfigurationError,
    HandlerError,
    InvalidArgument,
    InvalidType,
    LeakError,
    ShutdownDeadlockError,
    ShutdownTimeout,
    ShutdownTooSlow,
    SockshockError,
)
from sockshock._harness._audit import LeakAudit, LeakReport, audit
from sockshock._harness._failures import HandlerFailure
from sockshock._harness._handle import ServerHandle
from sockshock._harness._serving import serving
from sockshock._injection._clock import Clock, RealClock, VirtualClock
from sockshock._injection._layer import FaultLayer
from sockshock._injection._socket import FaultySocket
from sockshock._servers._catalog import ServerKind, server_kinds

__all__ = [
    "Clock",
    "ConfigurationError",
    "FaultLayer",
    "FaultySocket",
    "HandlerError",
    "HandlerFailure",
    "InvalidArgument",
    "InvalidType",
    "LeakAudit",
    "LeakError",
    "LeakReport",
    "RealClock",
    "ServerHandle",
    "ServerKind",
    "ShutdownDeadlockError",
    "ShutdownTimeout",
    "ShutdownTooSlow",
    "SockshockError",
    "VirtualClock",
    "audit",
    "server_kinds",
    "serving",
]

__version__ = "0.1.0"

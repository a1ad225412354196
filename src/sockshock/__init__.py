"""sockshock: find out how socket servers behave when the network misbehaves.

Layout (dependencies point down only; public modules re-export, the code lives in
``_private`` modules):

* ``sockshock.socketserver`` -- the drop-in ``socketserver`` (a public module in
  its own right, like the standard one) whose sockets come from a socket layer.
* ``sockshock.layer`` -- the socket-layer protocol, the default layer and the
  conformance check any layer can run.
* ``_harness`` -- :func:`serving`, which runs any server for a ``with`` block and
  never hangs a test run.
* ``_catalog`` -- the server classes and their traits, for test matrices.
* ``_errors`` -- the exception hierarchy and argument checks.
"""

from sockshock._catalog import ServerKind, server_kinds
from sockshock._errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidType,
    ShutdownDeadlockError,
    SockshockError,
)
from sockshock._harness import HandlerError, HandlerFailure, ServerHandle, ShutdownTimeout, serving

__all__ = [
    "ConfigurationError",
    "HandlerError",
    "HandlerFailure",
    "InvalidArgument",
    "InvalidType",
    "ServerHandle",
    "ServerKind",
    "ShutdownDeadlockError",
    "ShutdownTimeout",
    "SockshockError",
    "server_kinds",
    "serving",
]

__version__ = "0.1.0"

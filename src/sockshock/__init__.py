"""sockshock: find out how socket servers behave when the network misbehaves.

Layout (dependencies point down only; public modules re-export, the code lives in
``_private`` modules):

* ``sockshock.socketserver`` -- the drop-in ``socketserver`` (a public module in
  its own right, like the standard one) whose sockets come from a socket layer.
* ``sockshock.layer`` -- the socket-layer protocol, the default layer and the
  conformance check any layer can run.
* ``_errors`` -- the exception hierarchy and argument checks.
"""

from sockshock._errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidType,
    ShutdownDeadlockError,
    SockshockError,
)

__all__ = [
    "ConfigurationError",
    "InvalidArgument",
    "InvalidType",
    "ShutdownDeadlockError",
    "SockshockError",
]

__version__ = "0.1.0"

"""The socket layer: where every socket of a sockshock server comes from.

See :class:`SocketLayer` for the protocol, :data:`SYSTEM_LAYER` for the default
(plain ``socket.socket`` objects, no wrapper) and :func:`check_socket_layer` for the
conformance kit any implementation can run.
"""

from sockshock._layer import (
    SYSTEM_LAYER,
    LayerConformanceError,
    SocketLayer,
    SystemSocketLayer,
    check_socket_layer,
)

__all__ = [
    "SYSTEM_LAYER",
    "LayerConformanceError",
    "SocketLayer",
    "SystemSocketLayer",
    "check_socket_layer",
]

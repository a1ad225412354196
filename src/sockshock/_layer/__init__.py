"""Beneath ``socketserver``: the socket-layer protocol and the system layer (``_protocol``), and the conformance kit any layer can run (``_kit``)."""

from sockshock._layer._kit import LayerConformanceError, check_socket_layer
from sockshock._layer._protocol import SYSTEM_LAYER, SocketLayer, SystemSocketLayer, validate_layer

__all__ = [
    "SYSTEM_LAYER",
    "LayerConformanceError",
    "SocketLayer",
    "SystemSocketLayer",
    "check_socket_layer",
    "validate_layer",
]

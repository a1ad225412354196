"""The socket layer: the one seam through which sockshock servers get sockets.

A *socket layer* is any object with a ``socket(family, type, proto)`` method that
returns a socket-like object (normally a ``socket.socket`` or a subclass of it).
Sockets returned by ``accept()`` on a layer's socket must come from the same layer,
so that a layer sees every connection a server handles.

The default, :data:`SYSTEM_LAYER`, hands out plain ``socket.socket`` objects: the
servers then run exactly the code path of the standard library, with no wrapper and
no per-call overhead. Prior art: ``trio.socket.set_custom_socket_factory``.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol, runtime_checkable

from sockshock._util import InvalidArgument, exported_by

__all__ = ["SYSTEM_LAYER", "SocketLayer", "SystemSocketLayer", "validate_layer"]


@exported_by("sockshock.layer")
@runtime_checkable
class SocketLayer(Protocol):
    """Where servers get their sockets.

    Implementations must return objects that behave like ``socket.socket``
    (``bind``, ``listen``, ``accept``, ``recv``/``send`` and friends, ``fileno`` for
    selectors, ``makefile``, ``close``...). ``accept()`` on a returned socket must
    return a connection socket that comes from the same layer.
    :func:`sockshock.layer.check_socket_layer` checks an implementation.
    """

    def socket(
        self,
        family: int = socket.AF_INET,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> socket.socket:
        """Return a new, unbound socket of the given family, type and protocol.

        Args:
            family: the address family (``socket.AF_INET``, ``AF_INET6``, ``AF_UNIX``).
            type: the socket type (``socket.SOCK_STREAM`` or ``SOCK_DGRAM``).
            proto: the protocol number (0: the default for the family and type).

        Returns:
            A ``socket.socket`` (or a subclass); sockets its ``accept()`` returns must
            come from the same layer.
        """
        ...


class SystemSocketLayer:
    """The default layer -- the operating system's sockets, unwrapped."""

    __slots__ = ()

    def socket(
        self,
        family: int = socket.AF_INET,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> socket.socket:
        return socket.socket(family, type, proto)

    def __repr__(self) -> str:
        return "SYSTEM_LAYER"

    def __reduce__(self) -> str:
        return "SYSTEM_LAYER"


#: The default socket layer of every sockshock server.
SYSTEM_LAYER = SystemSocketLayer()


def validate_layer(layer: Any, *, source: str) -> SocketLayer:
    """Return ``layer`` if it looks like a socket layer, else raise :class:`InvalidArgument`."""
    if not callable(getattr(layer, "socket", None)):
        raise InvalidArgument(
            f"socket_layer={layer!r} (type={type(layer).__name__}) from {source} has no "
            "callable socket(family, type, proto) method; pass an object implementing "
            "sockshock.layer.SocketLayer, e.g. sockshock.layer.SYSTEM_LAYER"
        )
    return layer  # type: ignore[no-any-return]

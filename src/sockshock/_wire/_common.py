"""What the stream and datagram paths share: the record of one connection, the
errors the kernel would report, and socket flags as plain ints."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sockshock._faults import Decision
    from sockshock._util import Clock

__all__ = ["DONTWAIT", "PEEK", "Connection", "LayerView", "os_error", "timed_out"]

DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))  # ints: enum flags are slow to combine
PEEK = int(getattr(socket, "MSG_PEEK", 0))


def os_error(code: int) -> OSError:
    """The exception the kernel's ``code`` becomes in Python (OSError picks the
    subclass: ConnectionResetError, BrokenPipeError, BlockingIOError...)."""
    return OSError(code, os.strerror(code))


def timed_out() -> TimeoutError:
    return TimeoutError("timed out")  # exactly what socket timeouts raise


class Connection:
    """What the layer knows about one connection (or one datagram peer)."""

    __slots__ = (
        "address",
        "count",
        "eof",
        "index",
        "last",
        "layer",
        "offset",
        "reset",
        "reset_read_reported",
        "reset_write_reported",
        "users",
    )

    def __init__(self, index: int, address: Any, layer: str = "wire") -> None:
        self.index = index
        self.address = address
        self.layer = layer  # "wire", or "plaintext": the bytes above TLS
        self.offset = {"in": 0, "out": 0}
        self.count = {"in": 0, "out": 0}
        self.reset = False
        self.reset_read_reported = False
        self.reset_write_reported = False
        self.eof = False
        self.users = 0  # sockets open on it (a dup() is one more): it ends at 0
        self.last = 0.0  # a datagram peer: when it was last seen (the layer's clock)


class LayerView(Protocol):
    """What a socket's stream and datagram paths ask of the layer that made it (the
    ``FaultLayer``), stated here so that they need not import it."""

    clock: Clock
    active: bool

    def ask(self, kind: str, connection: Connection | None, size: int = 0) -> Decision:
        """The plan's decision for one operation, logged."""
        ...

    def new_connection(self, address: Any) -> Connection:
        """The record of a new connection from ``address``."""
        ...

    def datagram_peer(self, address: Any) -> Connection:
        """The record of the datagram peer at ``address``."""
        ...

    def opened(self, connection: Connection) -> None:
        """A socket on ``connection`` opened (accepted, or a ``dup()``)."""
        ...

    def closed(self, connection: Connection) -> None:
        """A socket on ``connection`` closed: the last one ends the connection."""
        ...

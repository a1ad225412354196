"""The catalogue of server classes and their traits, for matrices of tests."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from sockshock import socketserver as _ss
from sockshock._errors import InvalidType, check_choice

__all__ = [
    "CONCURRENCY",
    "FAMILIES",
    "TRANSPORTS",
    "ServerKind",
    "kind_of",
    "server_kinds",
    "server_names",
]

TRANSPORTS = ("stream", "datagram")
FAMILIES = ("inet", "unix")
CONCURRENCY = ("sync", "threading", "forking", "pool")


@dataclass(frozen=True)
class ServerKind:
    """A concrete server class of ``sockshock.socketserver`` and what it is."""

    name: str
    transport: str  # "stream" or "datagram"
    family: str  # "inet" or "unix"
    concurrency: str  # "sync", "threading", "forking" or "pool"

    @property
    def server_class(self) -> type[Any]:
        cls: type[Any] = getattr(_ss, self.name)
        return cls


def _kind_of(name: str) -> ServerKind:
    return kind_of(getattr(_ss, name), name)


def kind_of(cls: Any, name: str | None = None) -> ServerKind:
    """The traits of any server class built on sockshock.socketserver."""
    transport = "datagram" if cls.socket_type == socket.SOCK_DGRAM else "stream"
    family = "unix" if cls.address_family == getattr(socket, "AF_UNIX", None) else "inet"
    if issubclass(cls, _ss.ThreadPoolMixIn):
        concurrency = "pool"
    elif issubclass(cls, _ss.ThreadingMixIn):
        concurrency = "threading"
    elif hasattr(os, "fork") and issubclass(cls, _ss.ForkingMixIn):
        concurrency = "forking"
    else:
        concurrency = "sync"
    return ServerKind(name or cls.__name__, transport, family, concurrency)


_ALL: tuple[ServerKind, ...] = tuple(
    _kind_of(name)
    for name in _ss.__all__
    if name.endswith("Server") and name != "BaseServer"
)
_ORDER = {c: i for i, c in enumerate(CONCURRENCY)}
_ALL = tuple(sorted(_ALL, key=lambda k: (TRANSPORTS.index(k.transport),
                                         FAMILIES.index(k.family), _ORDER[k.concurrency])))


def server_names() -> list[str]:
    """The names of every concrete server class of ``sockshock.socketserver``, sorted."""
    return sorted(k.name for k in _ALL)


def server_kinds(
    kind: str | None = None,
    family: str | None = None,
    concurrency: str | tuple[str, ...] | None = None,
    *,
    source: str = "server_kinds()",
) -> list[ServerKind]:
    """The concrete server classes, optionally filtered.

    Args:
        kind: ``"stream"`` or ``"datagram"``.
        family: ``"inet"`` or ``"unix"``.
        concurrency: one or several of ``"sync"``, ``"threading"``, ``"forking"``,
            ``"pool"``.
    """
    if kind is not None:
        check_choice("kind", kind, TRANSPORTS, source=source)
    if family is not None:
        check_choice("family", family, FAMILIES, source=source)
    wanted: tuple[str, ...] | None = None
    if concurrency is not None:
        if isinstance(concurrency, str):
            wanted = (concurrency,)
        elif isinstance(concurrency, (tuple, list)) and concurrency:
            wanted = tuple(concurrency)
        else:
            raise InvalidType(
                f"expected one of {', '.join(map(repr, CONCURRENCY))} or a non-empty tuple of "
                f"them but got concurrency={concurrency!r} (type={type(concurrency).__name__}) "
                f"(from {source})")
        for value in wanted:
            check_choice("concurrency", value, CONCURRENCY, source=source)
    return [
        k for k in _ALL
        if (kind is None or k.transport == kind)
        and (family is None or k.family == family)
        and (wanted is None or k.concurrency in wanted)
    ]

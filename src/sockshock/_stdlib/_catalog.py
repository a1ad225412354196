"""The catalogue of server classes and their traits, for matrices of tests."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from sockshock import socketserver as _ss
from sockshock._stdlib._graft import loop_mixin
from sockshock._stdlib._lookup import classes, stdlib_socketserver
from sockshock._util import InvalidArgument, check_choice, exported_by

__all__ = [
    "CONCURRENCY",
    "FAMILIES",
    "TRANSPORTS",
    "ServerKind",
    "kind_of",
    "server_kinds",
    "server_names",
    "variants",
]

TRANSPORTS = ("stream", "datagram")
FAMILIES = ("inet", "unix")
CONCURRENCY = ("sync", "threading", "forking", "pool")


@dataclass(frozen=True)
class ServerKind:
    """A concrete server class and what it is: its transport, address family and
    concurrency (for matrices of tests)."""

    name: str
    transport: str  # "stream" or "datagram"
    family: str  # "inet" or "unix"
    concurrency: str  # "sync", "threading", "forking" or "pool"
    server_class: type[Any] = field(compare=False, repr=False)


def kind_of(cls: Any, name: str | None = None) -> ServerKind:
    """The traits of any server class, built on sockshock's socketserver or the
    standard library's."""
    transport = "datagram" if cls.socket_type == socket.SOCK_DGRAM else "stream"
    family = "unix" if cls.address_family == getattr(socket, "AF_UNIX", None) else "inet"
    if issubclass(cls, _ss.ThreadPoolMixIn):
        concurrency = "pool"
    elif issubclass(cls, classes("ThreadingMixIn")):
        concurrency = "threading"
    elif hasattr(os, "fork") and issubclass(cls, classes("ForkingMixIn")):
        concurrency = "forking"
    else:
        concurrency = "sync"
    return ServerKind(name or cls.__name__, transport, family, concurrency, cls)


_ALL: tuple[ServerKind, ...] = tuple(
    kind_of(getattr(_ss, name))
    for name in _ss.__all__
    if name.endswith("Server") and name != "BaseServer"
)
_ORDER = {c: i for i, c in enumerate(CONCURRENCY)}
_ALL = tuple(
    sorted(
        _ALL,
        key=lambda k: (
            TRANSPORTS.index(k.transport),
            FAMILIES.index(k.family),
            _ORDER[k.concurrency],
        ),
    )
)


_NAMES = sorted(k.name for k in _ALL)


def server_names() -> list[str]:
    """The names of every concrete server class of ``sockshock.socketserver``, sorted."""
    return list(_NAMES)


_PREFIX = {"sync": "", "threading": "Threading", "forking": "Forking", "pool": "ThreadPool"}


# Settings of the concurrency mix-ins a class may set beside its mix-in
# (ThreadingHTTPServer: daemon_threads = True); its variants keep them.
_MIXIN_SETTINGS = frozenset(
    {"daemon_threads", "block_on_close", "max_children", "max_workers", "max_queued_requests"}
)


def _core(base: type[Any], source: str) -> tuple[type[Any], dict[str, Any]]:
    """The synchronous class under ``base`` -- itself, or what a concurrency mix-in
    was put in front of (``ThreadingHTTPServer`` -> ``HTTPServer``) -- and the
    mix-in settings ``base`` sets."""
    if kind_of(base).concurrency == "sync":
        return base, {}
    own = {name: value for name, value in vars(base).items() if not name.startswith("__")}
    if (
        len(base.__bases__) == 2
        and set(own) <= _MIXIN_SETTINGS
        and kind_of(base.__bases__[1]).concurrency == "sync"
    ):
        return base.__bases__[1], own
    raise InvalidArgument(
        f"base={base.__name__} (from {source}) mixes its concurrency with its own code; "
        "give its synchronous class (the one without a ThreadingMixIn/ForkingMixIn)"
    )


def variants(
    base: type[Any], concurrency: tuple[str, ...] = CONCURRENCY, *, source: str = "server_kinds()"
) -> list[ServerKind]:
    """``base`` under each concurrency: ``HTTPServer`` -> ``HTTPServer``,
    ``ThreadingHTTPServer`` (ThreadingMixIn), ``ForkingHTTPServer`` (ForkingMixIn),
    ``ThreadPoolHTTPServer`` (sockshock's pool). Mix-ins come from the module the
    class is built on; the pool runs on sockshock's loop either way."""
    core, settings = _core(base, source)
    namespace = {"__module__": core.__module__, **settings}
    stdlib_based = not issubclass(core, _ss.BaseServer)
    module: Any = stdlib_socketserver() if stdlib_based else _ss
    kinds = []
    for concurrency_name in concurrency:
        if concurrency_name == "forking" and not hasattr(os, "fork"):
            continue
        name = _PREFIX[concurrency_name] + core.__name__
        if concurrency_name == "sync":
            cls = core
        elif concurrency_name == "pool":
            bases = (
                (_ss.ThreadPoolMixIn, loop_mixin(), core)
                if stdlib_based
                else (_ss.ThreadPoolMixIn, core)
            )
            cls = type(name, bases, namespace)
        else:
            mixin = getattr(module, f"{_PREFIX[concurrency_name]}MixIn")
            cls = type(name, (mixin, core), namespace)
        kinds.append(kind_of(cls, name))
    return kinds


@exported_by("sockshock")
def server_kinds(
    transport: str | None = None,
    family: str | None = None,
    concurrency: str | tuple[str, ...] | None = None,
    *,
    base: type[Any] | None = None,
    source: str = "server_kinds()",
) -> list[ServerKind]:
    """The concrete server classes of ``sockshock.socketserver`` -- or ``base``
    under each concurrency (:func:`variants`) --, optionally filtered.

    Args:
        transport: ``"stream"`` or ``"datagram"``.
        family: ``"inet"`` or ``"unix"``.
        concurrency: one or several of ``"sync"``, ``"threading"``, ``"forking"``,
            ``"pool"``.
        base: your server class: it, under each concurrency, instead of sockshock's.
        source: what asked, for the error message.

    Returns:
        The matching classes as ``ServerKind`` records (``.name``, ``.transport``,
        ``.family``, ``.concurrency``), in catalogue order.
    """
    if transport is not None:
        check_choice("transport", transport, TRANSPORTS, source=source)
    if family is not None:
        check_choice("family", family, FAMILIES, source=source)
    wanted: tuple[str, ...] | None = None
    if concurrency is not None:
        if isinstance(concurrency, str):
            wanted = (concurrency,)
        elif isinstance(concurrency, (tuple, list)) and concurrency:
            wanted = tuple(concurrency)
        else:
            raise InvalidArgument(
                f"expected one of {', '.join(map(repr, CONCURRENCY))} or a non-empty tuple of "
                f"them but got concurrency={concurrency!r} (type={type(concurrency).__name__}) "
                f"(from {source})"
            )
        for value in wanted:
            check_choice("concurrency", value, CONCURRENCY, source=source)
    if base is not None:
        if not (
            isinstance(base, type)
            and issubclass(base, classes("BaseServer"))
            and hasattr(base, "socket_type")
        ):
            raise InvalidArgument(f"expected a server class but got base={base!r} (from {source})")
        candidates: Any = variants(base, CONCURRENCY, source=source)
    else:
        candidates = _ALL
    return [
        k
        for k in candidates
        if (transport is None or k.transport == transport)
        and (family is None or k.family == family)
        and (wanted is None or k.concurrency in wanted)
    ]

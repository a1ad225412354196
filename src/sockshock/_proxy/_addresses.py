"""The fault proxy's arguments: its transports, addresses (loopback and Unix paths
only), the plan checked against the transport, and addresses as the CLI prints them.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from sockshock._faults import FaultPlan, check_fit, make_plan
from sockshock._util import (
    InvalidArgument,
    check_number,
    check_seed,
    format_address,
    host_port_form,
    is_loopback,
)
from sockshock._util import unix_path as _unix_path

__all__ = [
    "SOURCE",
    "TRANSPORTS",
    "format_address",
    "host_port_form",
    "inet_address",
    "plan_for",
    "protocol_for",
    "transport_of",
    "unix_path",
]

TRANSPORTS = ("tcp", "udp", "unix")  # what the proxy relays (the CLI's and API's words)
SOURCE = "FaultProxy"  # what the argument errors name as their source


def transport_of(protocol: str) -> str:
    """The ``transport=`` of a proxy relaying ``protocol`` (``"tcp"``, ``"udp"``,
    ``"unix"``: the words of the CLI's flags and of the API's ``sockshock.transport``)."""
    return "datagram" if protocol == "udp" else "stream"


def protocol_for(upstream: Any, transport: Any, source: str = SOURCE) -> str:
    """What a proxy of ``transport`` (``"stream"`` or ``"datagram"``, sockshock's one
    vocabulary) in front of ``upstream`` relays: ``"tcp"`` or ``"udp"`` for a
    ``(host, port)``, ``"unix"`` (Unix stream) for a path."""
    if transport in TRANSPORTS:
        word = "datagram" if transport == "udp" else "stream"
        raise InvalidArgument(
            f"transport={transport!r} is transport={word!r} in sockshock (a path as "
            f"upstream makes it a Unix socket; a (host, port), TCP or UDP) (from {source})"
        )
    if transport not in ("stream", "datagram"):
        raise InvalidArgument(
            f"transport={transport!r} must be one of 'stream', 'datagram' (from {source})"
        )
    if isinstance(upstream, (str, bytes, os.PathLike)):
        if transport == "datagram":
            raise InvalidArgument(
                f"upstream={upstream!r} is a path, and the proxy relays Unix stream sockets "
                f"only: leave transport='datagram' out, or give a UDP (host, port) "
                f"(from {source})"
            )
        return "unix"
    return "udp" if transport == "datagram" else "tcp"


def inet_address(
    name: str, value: Any, transport: str, lowest_port: int, source: str
) -> tuple[int, tuple[Any, ...]]:
    """Check a (host, port) address; return its family and the address to use."""
    if isinstance(value, (str, bytes, os.PathLike)):
        what = "a path" if isinstance(value, os.PathLike) else "a string"
        raise InvalidArgument(
            f"{name}={value!r} is {what}, but transport={transport!r} needs a (host, port) "
            f"tuple such as ('127.0.0.1', 8000); give transport='unix' for a Unix socket "
            f"path (from {source})"
        )
    if not (isinstance(value, tuple) and len(value) in (2, 4) and isinstance(value[0], str)):
        raise InvalidArgument(
            f"expected a (host, port) tuple but got {name}={value!r} "
            f"(type={type(value).__name__}) (from {source})"
        )
    host, port = value[0], value[1]
    if not is_loopback(host):
        raise InvalidArgument(
            f"{name}={value!r}: the proxy only uses loopback addresses (127.0.0.0/8, ::1, "
            f"localhost) and Unix paths (from {source})"
        )
    check_number(
        "port",
        port,
        low=lowest_port,
        high=65535,
        integer=True,
        source=f"{name}={value!r} of {source}",
    )
    if host == "localhost":
        host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, port, *value[2:])


def unix_path(name: str, value: Any, source: str) -> str:
    """Check a Unix socket path (a str or an os.PathLike); return it as a str."""
    return _unix_path(name, value, source=source, accept_bytes=False)


def plan_for(transport: str, faults: Any, seed: Any) -> FaultPlan:
    """The plan: made by the one function that makes plans, and checked against the
    transport (a model that can never fire here is a mistake, as for ``serving()``)."""
    if seed is not None:
        check_seed(seed, source=SOURCE)
    plan = make_plan([] if faults is None else faults, seed=seed, source="faults", where=SOURCE)
    check_fit(
        plan.models,
        transport="datagram" if transport == "udp" else "stream",
        tls=False,
        accepts=transport != "udp",
        proxied=True,
        target=f"a {transport} proxy",
        where=SOURCE,
        fix="leave it out, or proxy the other transport",
    )
    return plan

"""Where a misbehaving client may connect, and socket errors as text.

:func:`resolve_address` takes loopback addresses (``127.0.0.0/8``, ``::1``,
``"localhost"`` resolved to loopback only) and Unix socket paths, and refuses
anything else with one clear error; :func:`describe_error` turns a socket error
into the text the results carry (``"ECONNRESET: Connection reset by peer"``).
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from typing import Any

from sockshock._util import InvalidArgument, check_number, ip_literal, is_loopback, unix_path

__all__ = [
    "Address",
    "Target",
    "describe_error",
    "resolve_address",
]

Address = tuple[str, int] | tuple[str, int, int, int] | str | os.PathLike[str]
"""A ``(host, port)`` tuple on loopback (4-tuple for IPv6) or a Unix socket path."""


def describe_error(exc: BaseException) -> str:
    """``"ECONNRESET: Connection reset by peer"`` for an OSError, else ``"Type: text"``."""
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{name}: {exc.strerror or os.strerror(exc.errno)}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Target:
    """A checked address: the family to use and what to pass to ``connect()``."""

    family: int
    sockaddr: Any

    @property
    def unix(self) -> bool:
        """Whether this is a Unix socket path."""
        return self.family == getattr(socket, "AF_UNIX", None)


def _refuse(address: Any, why: str, source: str) -> InvalidArgument:
    return InvalidArgument(
        f"address={address!r} {why}: sockshock's clients only connect to loopback "
        "addresses (127.0.0.0/8, ::1, 'localhost' resolved to loopback only) and Unix "
        f"socket paths (from {source})"
    )


def resolve_address(address: Any, *, source: str) -> Target:
    """Check ``address`` and say how to reach it, or raise one clear error.

    Args:
        address: ``(host, port)`` (or an IPv6 4-tuple) where ``host`` is a
            loopback literal or ``"localhost"``, or a Unix socket path.
        source: where the address came from, for the error message.

    Returns:
        The family and the address to connect to; ``"localhost"`` becomes the
        first loopback address the resolver gives for it (IPv4 preferred).

    Raises:
        InvalidArgument: a non-loopback address, another host name, a bad port
            or an empty path; the message names the address.
        InvalidArgument: neither a tuple nor a path.
    """
    if isinstance(address, (str, os.PathLike)):
        path = unix_path("address", address, source=source, accept_bytes=False)
        if not hasattr(socket, "AF_UNIX"):
            raise _refuse(address, "is a Unix socket path, which this platform lacks", source)
        return Target(socket.AF_UNIX, path)
    if not (isinstance(address, tuple) and len(address) in (2, 4)):
        raise InvalidArgument(
            "expected a (host, port) tuple or a Unix socket path but got "
            f"address={address!r} (type={type(address).__name__}) (from {source})"
        )
    host, port = address[0], address[1]
    if not isinstance(host, str):
        raise InvalidArgument(f"expected a str host but got address={address!r} (from {source})")
    check_number(
        "port", port, low=1, high=65535, integer=True, source=f"address={address!r}, {source}"
    )
    if len(address) == 4:
        check_number(
            "flowinfo",
            address[2],
            low=0,
            high=2**20 - 1,
            integer=True,
            source=f"address={address!r}, {source}",
        )
        check_number(
            "scope_id",
            address[3],
            low=0,
            high=2**32 - 1,
            integer=True,
            source=f"address={address!r}, {source}",
        )
    if host.lower() == "localhost":
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise _refuse(address, f"cannot be resolved ({describe_error(exc)})", source) from exc
        loopback = [
            (int(family), sockaddr)
            for family, _, _, _, sockaddr in infos
            if family in (socket.AF_INET, socket.AF_INET6) and is_loopback(str(sockaddr[0]))
        ]
        if not loopback:
            found = sorted({str(info[4][0]) for info in infos})
            raise _refuse(address, f"resolves to {', '.join(found)}, none of them loopback", source)
        loopback.sort(key=lambda pair: pair[0] != socket.AF_INET)
        return Target(*loopback[0])
    if not is_loopback(host):
        why = (
            "is not a loopback address"
            if ip_literal(host) is not None
            else "names a host; only 'localhost' is resolved"
        )
        raise _refuse(address, why, source)
    if len(address) == 4 and ":" not in host:
        raise InvalidArgument(
            f"address={address!r}: a 4-tuple (host, port, flowinfo, "
            f"scope_id) is for IPv6; {host!r} is IPv4 (from {source})"
        )
    if ":" in host:
        sockaddr = (host, port, *address[2:]) if len(address) == 4 else (host, port, 0, 0)
        return Target(socket.AF_INET6, sockaddr)
    return Target(socket.AF_INET, (host, port))

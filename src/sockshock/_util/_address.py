"""The one home of sockshock's address rules.

sockshock binds and connects on loopback addresses and Unix socket paths only. Every
route in -- ``serving()``'s ``address=``, the clients, the fault proxy, scenario
files, the command line -- checks its addresses here, so that ``::ffff:127.0.0.1``,
a 200-byte Unix path or ``"127.0.0.1:80"`` given as a path get the same answer
everywhere and on every Python (3.13 changed what ``ipaddress`` calls loopback for
IPv4-mapped IPv6 addresses; these rules do not depend on it).
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING, Any

from sockshock._util._errors import InvalidArgument

if TYPE_CHECKING:
    import ipaddress

__all__ = [
    "LOOPBACK_RULE",
    "UNIX_PATH_MAX",
    "cannot_listen",
    "format_address",
    "host_port_form",
    "ip_literal",
    "is_loopback",
    "unix_path",
]

#: The longest Unix socket path the platform takes, in bytes (``sun_path``).
UNIX_PATH_MAX = 108 if sys.platform.startswith("linux") else 104

#: How messages state the rule.
LOOPBACK_RULE = "loopback addresses (127.0.0.0/8, ::1, localhost) and Unix socket paths only"


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address (a ``%scope`` suffix ignored), or None for a name."""
    import ipaddress  # on first use: the pytest plugin loads this module at start

    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface.

    ``localhost`` (any case), ``127.0.0.0/8``, ``::1`` and the IPv4-mapped form of a
    loopback IPv4 address (``::ffff:127.0.0.1``), the same on Python 3.10-3.13.
    """
    if host.lower() == "localhost":
        return True
    ip = ip_literal(host)
    if ip is None:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def host_port_form(text: str) -> bool:
    """Whether ``text`` reads as ``HOST:PORT`` (``127.0.0.1:8000``, ``[::1]:80``,
    ``localhost:80``, ``example.com:80``) rather than as a Unix socket path: no
    ``/``, digits after the last ``:``, and an IP literal or a host name before it."""
    if "/" in text:
        return False
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ip_literal(host) is not None:
        return True
    return host.lower() == "localhost" or (
        "." in host and all(part and part.replace("-", "").isalnum() for part in host.split("."))
    )


def unix_path(
    name: str,
    value: Any,
    *,
    source: str,
    new: bool = False,
    bind: bool = False,
    accept_bytes: bool = True,
) -> str:
    """Check a Unix socket path and return it as a ``str``.

    Args:
        name: the parameter, as the message names it (``"address"``, ``"listen"``).
        value: a ``str``, ``bytes`` or ``os.PathLike``.
        source: where the value came from, for the message.
        new: the path must not exist yet (a server creates its socket file there).
        bind: the path will be bound: its directory must exist.
        accept_bytes: whether ``bytes`` paths are taken.

    Raises:
        InvalidArgument: not a path.
        InvalidArgument: empty, a NUL byte (the abstract namespace is not used), a
            ``HOST:PORT`` string, longer than :data:`UNIX_PATH_MAX` bytes, or (with
            ``bind``/``new``) a missing directory or a path that exists already.
    """
    kinds = (str, bytes, os.PathLike) if accept_bytes else (str, os.PathLike)
    path = os.fspath(value) if isinstance(value, kinds) else None
    if isinstance(path, bytes):
        path = os.fsdecode(path) if accept_bytes else None
    if not isinstance(path, str):
        raise InvalidArgument(
            f"expected a Unix socket path ({'str, bytes' if accept_bytes else 'str'} or "
            f"os.PathLike) but got {name}={value!r} (type={type(value).__name__}) "
            f"(from {source})"
        )
    if not path:
        raise InvalidArgument(f"{name}={value!r}: the Unix socket path is empty (from {source})")
    if "\0" in path:
        raise InvalidArgument(
            f"{name}={value!r}: a Unix socket path cannot contain a NUL byte (from {source})"
        )
    if host_port_form(path):
        host, _, port = path.rpartition(":")
        raise InvalidArgument(
            f"{name}={value!r} looks like HOST:PORT, not a Unix socket path; for TCP pass "
            f"a (host, port) tuple: {name}=({host.strip('[]')!r}, {int(port)}) (from {source})"
        )
    host = path.rpartition(":")[0] if ":" in path else path
    if "/" not in path and (ip_literal(path) or ip_literal(host.strip("[]"))):
        raise InvalidArgument(
            f"{name}={value!r} looks like a host address, not a Unix socket path; for "
            f"TCP pass a (host, port) tuple such as ('127.0.0.1', 8000) (from {source})"
        )
    size = len(os.fsencode(path))
    if size > UNIX_PATH_MAX:
        raise InvalidArgument(
            f"{name}={value!r} is {size} bytes long; Unix socket paths are at most "
            f"{UNIX_PATH_MAX} bytes here: use a shorter directory (say "
            f"tempfile.mkdtemp(dir='/tmp')) (from {source})"
        )
    if bind or new:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise InvalidArgument(
                f"{name}={value!r}: the directory {directory!r} does not exist (from {source})"
            )
    if new and os.path.lexists(path):
        what = "a directory" if os.path.isdir(path) else "a file"
        raise InvalidArgument(
            f"{name}={value!r}: {path!r} is {what} that exists already; give a path that "
            f"does not exist yet (the server creates its socket file there) (from {source})"
        )
    return path


def format_address(address: Any) -> str:
    """``127.0.0.1:8000``, ``[::1]:8000`` or a Unix path, as messages print them."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(address, bytes):
        return os.fsdecode(address)
    return str(address)


def cannot_listen(exc: OSError, address: Any, *, source: str | None = None) -> OSError:
    """What to raise when binding ``address`` failed with ``exc``: an ``OSError`` with
    the same errno (``except OSError`` and errno checks keep working), whose message
    names the address and, for ``EADDRINUSE``, what it means."""
    what = (
        "it is in use (another process or server listens there)"
        if exc.errno == errno.EADDRINUSE
        else exc.strerror or str(exc)
    )
    origin = f" (from {source})" if source else ""
    return OSError(exc.errno, f"cannot listen on {format_address(address)}: {what}{origin}")

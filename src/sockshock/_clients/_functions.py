"""The public client functions: one per kind, each returning a :class:`ClientRun`.

Each function checks its arguments and its address at once (:func:`prepare`) and
returns a run that has not started yet. The misbehaviour is the kernel's own (a
reset is ``SO_LINGER`` {1, 0}, a half-close is ``shutdown(SHUT_WR)``, a client
that never reads lets its receive window fill), so these clients work against any
server on this machine: sockshock's, the standard library's, one in another
process, one behind a proxy. The functions' signatures are also where every
option's default lives (:func:`defaults`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sockshock._clients._address import Address, resolve_address
from sockshock._clients._behaviour import RUNNERS
from sockshock._clients._control import Control
from sockshock._clients._limits import validate
from sockshock._clients._results import DatagramResult, StreamResult
from sockshock._clients._run import ClientRun
from sockshock._util import exported_by

__all__ = [
    "HTTP_REQUEST",
    "HTTP_REQUEST_HEAD",
    "HTTP_REQUEST_PART",
    "connect_and_idle",
    "connection_flood",
    "datagram_burst",
    "defaults",
    "drip_feed",
    "half_close",
    "never_reads",
    "prepare",
    "rst_on_close",
    "slowloris",
]

HTTP_REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
"""A whole HTTP request: the default for clients that send one."""
HTTP_REQUEST_HEAD = b"GET / HTTP/1.1\r\nHost: localhost\r\n"
"""The start of an HTTP request without its end: what ``slowloris`` sends first."""
HTTP_REQUEST_PART = b"GET / HTTP/1.0\r\nHost: loc"
"""Part of an HTTP request: what ``rst_on_close`` sends before resetting."""


def defaults(kind: str) -> dict[str, Any]:
    """Each option of client ``kind`` and its default: its function's keyword arguments."""
    params = list(inspect.signature(_FUNCTIONS[kind]).parameters.values())[1:]
    return {p.name: p.default for p in params}


def prepare(kind: str, address: Any, source: str | None, options: dict[str, Any]) -> ClientRun[Any]:
    """Check ``options`` and ``address`` and make client ``kind``'s run, not started.

    Errors name ``source``, or the function (``"slowloris()"``) if it is ``None``.
    """
    where = source or f"{kind}()"
    base = defaults(kind)
    values = {**base, **validate(kind, options, where, base)}
    target = resolve_address(address, source=where)
    control = Control(
        target,
        duration=values.pop("duration"),
        timeout=values.pop("timeout"),
        max_reply=values.pop("max_reply"),
    )
    runner = RUNNERS[kind]
    return ClientRun(kind, control, lambda c: runner(c, **values))


# -- the clients -----------------------------------------------------------------


@exported_by("sockshock.clients")
def slowloris(
    address: Address,
    *,
    count: int = 1,
    interval: float = 0.05,
    request: bytes = HTTP_REQUEST_HEAD,
    duration: float = 0.25,
    timeout: float = 1.0,
    max_reply: int = 65536,
) -> ClientRun[StreamResult]:
    """Headers dripped forever: the request's start, then one header line per ``interval``.

    The request never ends (no blank line), so a server that reads the whole
    request before answering is held for as long as the client keeps going -- a
    per-read timeout does not help when each line arrives in time. The client
    reads whatever the server sends and notes when it ends a connection.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        count: connections, opened one after the other (1 to 1,000).
        interval: seconds between header lines (0.001 to 60).
        request: sent once on connecting (up to 64 KiB); default an HTTP
            request line and ``Host`` header.
        duration: seconds the client keeps it up (0 to 300; default 0.25).
        timeout: the bound on each connect (0 to 60 s).
        max_reply: bytes of each connection's reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun`: ``.result()`` runs it here and returns a
        :class:`StreamResult`; ``with`` runs it in the background.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "slowloris",
        address,
        None,
        dict(
            count=count,
            interval=interval,
            request=request,
            duration=duration,
            timeout=timeout,
            max_reply=max_reply,
        ),
    )


@exported_by("sockshock.clients")
def drip_feed(
    address: Address,
    *,
    payload: bytes = HTTP_REQUEST,
    chunk: int = 1,
    pause: float = 0.01,
    until: bytes | None = None,
    duration: float = 2.0,
    timeout: float = 1.0,
    max_reply: int = 65536,
) -> ClientRun[StreamResult]:
    """Send ``payload`` ``chunk`` bytes at a time, ``pause`` seconds apart, then read the reply.

    Each chunk leaves as its own segment (``TCP_NODELAY``), so the server's
    ``recv`` really returns it alone -- a handler that assumes one ``recv`` is one
    message breaks, without any fault injection.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        payload: what to send (1 byte to 16 MiB); default a whole HTTP request.
        chunk: bytes per send (1 to 64 KiB).
        pause: seconds between chunks (0 to 60).
        until: stop reading the reply once it contains these bytes (e.g.
            ``b"\\n"``); default: read until the server closes or ``timeout``.
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on connecting, on each send and on the reply (0 to 60 s).
        max_reply: bytes of the reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "drip_feed",
        address,
        None,
        dict(
            payload=payload,
            chunk=chunk,
            pause=pause,
            until=until,
            duration=duration,
            timeout=timeout,
            max_reply=max_reply,
        ),
    )


@exported_by("sockshock.clients")
def never_reads(
    address: Address,
    *,
    request: bytes = HTTP_REQUEST,
    repeat: int = 1,
    rcvbuf: int | None = None,
    duration: float = 0.25,
    timeout: float = 1.0,
    max_reply: int = 65536,
) -> ClientRun[StreamResult]:
    """Send requests and never read the replies, so that the server's writes back up.

    The client's receive queue fills, then the server's send buffer, then the
    server's ``send``/``sendall`` blocks (until its timeout, if it has one). The
    result's ``unread`` says how much the server got through (what waits
    unread in the client) and ``unread_since`` when that stopped growing. On
    Linux the client also notices, without reading, that the server closed or
    reset the connection. At the end the client closes with data unread, so
    the kernel resets the connection: a server still writing then gets
    ``ConnectionResetError``/``BrokenPipeError``, as with a real client.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        request: sent ``repeat`` times, pipelined (at most 16 MiB in all).
        repeat: how many requests (1 to 100,000).
        rcvbuf: ``SO_RCVBUF`` for the client (1 to 16 MiB; the kernel doubles
            it and applies its minimum); small values make the server block
            sooner. Default: the system's.
        duration: seconds the client keeps not reading (0 to 300; default 0.25).
        timeout: the bound on connecting (0 to 60 s).
        max_reply: unused (the client reads nothing); accepted for uniformity.

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult` with ``unread``.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "never_reads",
        address,
        None,
        dict(
            request=request,
            repeat=repeat,
            rcvbuf=rcvbuf,
            duration=duration,
            timeout=timeout,
            max_reply=max_reply,
        ),
    )


@exported_by("sockshock.clients")
def half_close(
    address: Address,
    *,
    request: bytes = HTTP_REQUEST,
    duration: float = 2.0,
    timeout: float = 1.0,
    max_reply: int = 65536,
) -> ClientRun[StreamResult]:
    """Send ``request``, ``shutdown(SHUT_WR)``, then read the reply to end of file.

    The server reads end of file after the request while it can still answer:
    servers that read "until the client is done" depend on this; servers that
    treat end of file as "the client is gone" drop the reply.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        request: what to send before half-closing (up to 16 MiB).
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on connecting, sending, and on the reply (0 to 60 s).
        max_reply: bytes of the reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult` (outcome ``"eof"`` if
        the server answered and closed, ``"open"`` if it never closed in time).

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "half_close",
        address,
        None,
        dict(request=request, duration=duration, timeout=timeout, max_reply=max_reply),
    )


@exported_by("sockshock.clients")
def rst_on_close(
    address: Address,
    *,
    request: bytes = HTTP_REQUEST_PART,
    hold: float = 0.0,
    duration: float = 2.0,
    timeout: float = 1.0,
    max_reply: int = 65536,
) -> ClientRun[StreamResult]:
    """Send ``request`` (part or all of one), then close with a reset instead of a FIN.

    ``SO_LINGER`` {1, 0} makes ``close()`` send a TCP RST: the server's next
    ``recv`` (after any data already delivered) or ``send`` fails with
    ``ConnectionResetError``. Unix stream sockets have no reset: there the server
    sees end of file, or ECONNRESET only if the client closes with data it left
    unread (the kernel's rule; ``hold`` reads what arrives, so use ``hold=0``).

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        request: what to send first (up to 16 MiB); default an HTTP request
            cut off in its ``Host`` header. Send ``b""`` to reset at once.
        hold: seconds to stay connected after sending, reading what the server
            sends, before the reset (0 to 60; default 0).
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on connecting and on sending (0 to 60 s).
        max_reply: bytes of what the server sends during ``hold`` to keep.

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "rst_on_close",
        address,
        None,
        dict(request=request, hold=hold, duration=duration, timeout=timeout, max_reply=max_reply),
    )


@exported_by("sockshock.clients")
def connect_and_idle(
    address: Address,
    *,
    count: int = 1,
    duration: float = 0.25,
    timeout: float = 1.0,
    max_reply: int = 65536,
) -> ClientRun[StreamResult]:
    """Connect and send nothing, for ``duration`` seconds.

    A handler that reads without a timeout waits for as long as the client
    stays; one with a timeout closes the connection, which the result shows as
    outcome ``"eof"`` and ``closed_at``. Whatever the server sends (a banner, an
    error) is read and kept.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        count: connections (1 to 1,000).
        duration: seconds the client stays connected (0 to 300; default 0.25).
        timeout: the bound on each connect (0 to 60 s).
        max_reply: bytes of each connection's reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "connect_and_idle",
        address,
        None,
        dict(count=count, duration=duration, timeout=timeout, max_reply=max_reply),
    )


@exported_by("sockshock.clients")
def connection_flood(
    address: Address,
    *,
    count: int = 100,
    concurrency: int = 16,
    request: bytes | None = None,
    until: bytes | None = None,
    duration: float = 2.0,
    timeout: float = 1.0,
    max_reply: int = 1024,
) -> ClientRun[StreamResult]:
    """Open ``count`` connections as fast as possible, ``concurrency`` at a time.

    Each connection connects, sends ``request`` if one is given and reads the
    reply (until the server closes, ``until`` arrives, or ``timeout``), then
    closes. Connections that are refused or time out (a full listen backlog) are
    counted, not retried.

    Args:
        address: ``(host, port)`` on loopback or a Unix stream socket path.
        count: connections in all (1 to 10,000).
        concurrency: connections in progress at once (1 to 256; one thread each).
        request: what each connection sends (up to 64 KiB); default nothing.
        until: the end of a reply (e.g. ``b"\\n"``); needs ``request``.
        duration: the bound on the whole flood (0 to 300 s; default 2).
        timeout: the bound on each connect and each reply (0 to 60 s).
        max_reply: bytes of each connection's reply to keep (default 1 KiB).

    Returns:
        A :class:`ClientRun` giving a :class:`StreamResult` with one
        :class:`Connection` per connection tried.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "connection_flood",
        address,
        None,
        dict(
            count=count,
            concurrency=concurrency,
            request=request,
            until=until,
            duration=duration,
            timeout=timeout,
            max_reply=max_reply,
        ),
    )


@exported_by("sockshock.clients")
def datagram_burst(
    address: Address,
    *,
    count: int = 100,
    payload: bytes = b"ping",
    duration: float = 2.0,
    timeout: float = 0.25,
    max_reply: int = 65536,
) -> ClientRun[DatagramResult]:
    """Send ``count`` datagrams as fast as possible and count the replies.

    The client reads replies while it sends and then waits up to ``timeout``
    for the rest. Over UDP, datagrams the server's queue has no room for are
    lost (``unanswered``); a Unix datagram socket makes the client wait for room
    instead (up to ``timeout`` per datagram, then it counts it ``failed``).

    Args:
        address: ``(host, port)`` on loopback (UDP) or a Unix datagram socket path
            (the client binds a path of its own in a private temporary
            directory, removed at the end, so that the server can answer).
        count: datagrams (1 to 10,000).
        payload: each datagram's bytes (0 to 65,507).
        duration: the bound on the whole run (0 to 300 s; default 2).
        timeout: the bound on waiting for room to send one datagram, and for
            the replies after the last one (0 to 60 s; default 0.25).
        max_reply: bytes of the first reply to keep (up to 16 MiB).

    Returns:
        A :class:`ClientRun` giving a :class:`DatagramResult`.

    Raises:
        InvalidArgument: a value out of bounds, or an address that is not loopback.
    """
    return prepare(
        "datagram_burst",
        address,
        None,
        dict(count=count, payload=payload, duration=duration, timeout=timeout, max_reply=max_reply),
    )


_FUNCTIONS: dict[str, Callable[..., ClientRun[Any]]] = {
    "slowloris": slowloris,
    "drip_feed": drip_feed,
    "never_reads": never_reads,
    "half_close": half_close,
    "rst_on_close": rst_on_close,
    "connect_and_idle": connect_and_idle,
    "connection_flood": connection_flood,
    "datagram_burst": datagram_burst,
}

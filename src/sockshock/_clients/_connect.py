"""The one client: every in-process connection to a server under test starts here.

:func:`connect` makes a client socket of the right family and type for an address
-- TCP, UDP, Unix stream, Unix datagram -- connected to it, with TLS if asked;
:func:`request` sends a request on it and takes the reply. The handle's
``connect()``, the scenario runner's load, the built-in checks and scripted runs
(``ScriptRun`` on a connected client) all use them, and the misbehaving clients
open their sockets with :func:`open_socket`: one place knows that a Unix datagram
client needs a path of its own to be answered on (bound in a private temporary
directory, removed when the client closes), and one place checks addresses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import tempfile
import time
import weakref
from collections.abc import Callable

from sockshock._clients._address import resolve_address
from sockshock._util import UNIX_PATH_MAX, InvalidArgument, check_choice, check_seconds
from sockshock._wire import note_client_socket

__all__ = ["TRANSPORTS", "ClientSocket", "connect", "open_socket", "request"]

#: The transports a client speaks: a stream (TCP, Unix stream) or datagrams (UDP,
#: Unix datagram).
TRANSPORTS = ("stream", "datagram")
_KINDS = {"stream": socket.SOCK_STREAM, "datagram": socket.SOCK_DGRAM}
_AF_UNIX = getattr(socket, "AF_UNIX", None)
_MAX_DATAGRAM = 65536


class ClientSocket(socket.socket):
    """A client's socket: a plain ``socket.socket`` that, for a Unix datagram client,
    removes the path it was bound to (and its private directory) when it closes."""

    _directory: str | None = None

    def close(self) -> None:
        """Close the socket; remove the client's own Unix path, if it has one."""
        try:
            super().close()
        finally:
            cleanup = getattr(self, "_cleanup", None)
            if cleanup is not None:
                cleanup()


def _private_directory() -> str:
    """A new private directory short enough for a Unix socket path inside it."""
    directory = tempfile.mkdtemp(prefix="sockshock-client-")
    if len(os.fsencode(os.path.join(directory, "client.sock"))) <= UNIX_PATH_MAX:
        return directory
    os.rmdir(directory)  # a long TMPDIR: /tmp, where Unix sockets usually live
    return tempfile.mkdtemp(prefix="sockshock-client-", dir="/tmp")


def open_socket(family: int, kind: int) -> socket.socket:
    """A new client socket of ``family`` and ``kind``; a Unix datagram one is bound to
    a path of its own (so that the server can answer it) in a private temporary
    directory, removed when the socket closes (or is collected). Every one is noted
    (``_wire.note_client_socket``): a child a served server forks releases its copy,
    so that closing the client reaches the server as end of file."""
    sock = ClientSocket(family, kind)
    note_client_socket(sock)  # a forked server's child releases its copy
    if family != _AF_UNIX or kind != socket.SOCK_DGRAM:
        return sock
    try:
        directory = _private_directory()
    except BaseException:
        sock.close()
        raise
    sock._directory = directory
    sock._cleanup = weakref.finalize(sock, shutil.rmtree, directory, True)  # type: ignore[attr-defined]
    try:
        sock.bind(os.path.join(directory, "client.sock"))
    except BaseException:
        sock.close()
        raise
    return sock


def connect(
    address: object,
    transport: str = "stream",
    *,
    timeout: float | None = 5.0,
    tls: ssl.SSLContext | None = None,
    server_hostname: str = "localhost",
    source: str = "connect()",
    before_connect: Callable[[socket.socket], object] | None = None,
) -> socket.socket:
    """A client socket connected to ``address``.

    Args:
        address: a loopback ``(host, port)`` (or an IPv6 4-tuple) or a Unix socket
            path: the family follows from it.
        transport: ``"stream"`` or ``"datagram"``. A datagram client is connected
            too (``send``/``recv`` work); a Unix datagram client is bound to a path
            of its own, in a private temporary directory removed when it closes.
        timeout: the socket's timeout in seconds (``None``: blocking), connecting
            included.
        tls: a client ``ssl.SSLContext``: the result is an ``ssl.SSLSocket`` that has
            completed its handshake, verifying the server as ``server_hostname``
            (stream only).
        source: who asked, for error messages.
        before_connect: called with the new socket before it connects (a forking
            server may fork as soon as the kernel completes the handshake: its
            child must know the client's descriptor to close its copy).

    Raises:
        InvalidArgument: a bad address, transport, timeout or ``tls``.
        OSError: the connection failed (refused, timed out, the handshake failed).
    """
    target = resolve_address(address, source=source)
    check_choice("transport", transport, TRANSPORTS, source=source)
    check_seconds("timeout", timeout, source=source, allow_none=True)
    if tls is not None:
        if not isinstance(tls, ssl.SSLContext):
            raise InvalidArgument(
                f"expected an ssl.SSLContext or None but got tls={tls!r} "
                f"(type={type(tls).__name__}) (from {source})"
            )
        if transport == "datagram":
            raise InvalidArgument(
                f"tls={tls!r} (from {source}): TLS runs over stream connections, and "
                f"{address!r} is reached by datagrams"
            )
    sock = open_socket(target.family, _KINDS[transport])
    try:
        if before_connect is not None:
            before_connect(sock)
        sock.settimeout(timeout)
        sock.connect(target.sockaddr)
        if tls is not None:
            return tls.wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise
    return sock


def request(
    client: socket.socket,
    data: bytes,
    *,
    until: bytes | None = None,
    half_close: bool = False,
    resend: float | None = None,
    timeout: float | None = None,
    idle: float | None = None,
    at_least: int = 1,
) -> bytes:
    """Send ``data`` on a connected client and return the reply.

    On a stream: everything sent, then (``half_close``) the sending side shut down,
    then what arrives, until the server ends the connection, the reply ends with
    ``until``, or (``idle``) nothing more came for ``idle`` seconds once the reply
    has ``at_least`` bytes (with ``idle``, a reply cut short by ``timeout`` is
    returned as it is, not raised). On datagrams: one datagram sent and one
    received; with ``resend``, sent again every ``resend`` seconds until a reply
    comes (a lost datagram).

    Args:
        timeout: the bound on the whole exchange in seconds (default: the
            client's own timeout).

    Raises:
        TimeoutError: no (complete) reply within ``timeout``.
        OSError: the connection failed (a reset, say).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(
            f"expected bytes but got data={data!r} (type={type(data).__name__}) (from request())"
        )
    if resend is not None:
        check_seconds("resend", resend, source="request()")
    if idle is not None:
        check_seconds("idle", idle, source="request()")
    original = client.gettimeout()
    bound = timeout if timeout is not None else original
    deadline = None if bound is None else time.monotonic() + bound

    def left(cap: float | None = None) -> float | None:
        if deadline is None:
            return cap
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no reply within {bound:g} s")
        return remaining if cap is None else min(cap, remaining)

    try:
        if client.type == socket.SOCK_DGRAM:
            return _datagram_request(client, bytes(data), resend, left)
        client.settimeout(left())
        client.sendall(data)
        if half_close:
            if isinstance(client, ssl.SSLSocket):
                raise InvalidArgument(
                    "half_close=True (from request()): a TLS connection cannot end its "
                    "sending side alone"
                )
            with contextlib.suppress(OSError):  # the server may have closed already
                client.shutdown(socket.SHUT_WR)
        reply = bytearray()
        while until is None or not reply.endswith(until):
            quiet = idle is not None and len(reply) >= max(1, at_least)
            try:
                client.settimeout(left(idle if quiet else None))
                chunk = client.recv(_MAX_DATAGRAM)
            except TimeoutError:
                if idle is not None and reply:
                    break  # quiet, or out of time: what came is the reply, judged as is
                raise
            if not chunk:
                break
            reply += chunk
        return bytes(reply)
    finally:
        with contextlib.suppress(OSError):
            client.settimeout(original)


def _datagram_request(
    client: socket.socket,
    data: bytes,
    resend: float | None,
    left: Callable[[float | None], float | None],
) -> bytes:
    while True:
        client.settimeout(left(resend))
        client.send(data)
        try:
            return client.recv(_MAX_DATAGRAM)
        except TimeoutError:
            if resend is None:
                raise

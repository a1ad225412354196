"""The sockets under the misbehaving clients (:mod:`sockshock.clients`).

Where a client may connect (:func:`resolve_address`: loopback and Unix sockets
only), the state a run shares between its connections (:class:`Control`: limits,
deadline, stop flag, progress events, every socket it opened), and one stream
connection's bookkeeping (:class:`Conn`: bytes each way, the reply, how the server
ended it), summed up as a frozen :class:`Connection`.

Sockets are non-blocking throughout and every wait is cut into slices of at most
:data:`SLICE` seconds, so that a run honours its deadline and ``stop()`` within a
slice whatever the server does.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import math
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sockshock._errors import InvalidArgument, InvalidType, check_number

__all__ = [
    "CLOSED",
    "READ",
    "SLICE",
    "WRITE",
    "Address",
    "Conn",
    "Connection",
    "Control",
    "Outcome",
    "Target",
    "describe_error",
    "resolve_address",
    "wait",
    "watch",
]

SLICE = 0.02
"""The longest a client waits on a socket before it looks at its deadline and stop flag."""

Address = tuple[str, int] | tuple[str, int, int, int] | str | os.PathLike[str]
"""A ``(host, port)`` tuple on loopback (4-tuple for IPv6) or a Unix socket path."""

Outcome = Literal["eof", "reset", "open", "refused", "failed", "error"]
"""How a connection ended, from the client's side:

* ``"eof"`` -- the server closed it (an orderly end of file).
* ``"reset"`` -- the connection was reset (ECONNRESET, EPIPE, ECONNABORTED).
* ``"open"`` -- still open when the client ended it.
* ``"refused"`` -- connect() was refused (ECONNREFUSED).
* ``"failed"`` -- connect() failed otherwise (timed out, no such socket file,
  stopped before the connection was made).
* ``"error"`` -- any other socket error after connecting (in ``error``).
"""

_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
_MAX_READS_PER_PUMP = 64  # one pump reads at most this many buffers, then lets the run go on


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


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _refuse(address: Any, why: str, source: str) -> InvalidArgument:
    return InvalidArgument(
        f"address={address!r} {why}: sockshock's clients only connect to loopback "
        "addresses (127.0.0.0/8, ::1, 'localhost' resolved to loopback only) and Unix "
        f"socket paths (from {source})")


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
        InvalidType: neither a tuple nor a path.
    """
    if isinstance(address, (str, os.PathLike)):
        path = os.fspath(address)
        if not isinstance(path, str):
            raise InvalidType(f"expected a str Unix socket path but got address={address!r} "
                              f"(type={type(address).__name__}) (from {source})")
        if not path:
            raise _refuse(address, "is an empty Unix socket path", source)
        if not hasattr(socket, "AF_UNIX"):
            raise _refuse(address, "is a Unix socket path, which this platform lacks", source)
        return Target(socket.AF_UNIX, path)
    if not (isinstance(address, tuple) and len(address) in (2, 4)):
        raise InvalidType(
            "expected a (host, port) tuple or a Unix socket path but got "
            f"address={address!r} (type={type(address).__name__}) (from {source})")
    host, port = address[0], address[1]
    if not isinstance(host, str):
        raise InvalidType(f"expected a str host but got address={address!r} (from {source})")
    check_number("port", port, low=1, high=65535, integer=True,
                 source=f"address={address!r}, {source}")
    if host.lower() == "localhost":
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise _refuse(address, f"cannot be resolved ({describe_error(exc)})", source) from exc
        loopback = [(int(family), sockaddr) for family, _, _, _, sockaddr in infos
                    if family in (socket.AF_INET, socket.AF_INET6)
                    and _is_loopback(str(sockaddr[0]))]
        if not loopback:
            found = sorted({str(info[4][0]) for info in infos})
            raise _refuse(address, f"resolves to {', '.join(found)}, none of them loopback",
                          source)
        loopback.sort(key=lambda pair: pair[0] != socket.AF_INET)
        return Target(*loopback[0])
    if not _is_loopback(host):
        why = ("is not a loopback address" if _host_is_literal(host)
               else "names a host; only 'localhost' is resolved")
        raise _refuse(address, why, source)
    if ":" in host:
        sockaddr = (host, port, *address[2:]) if len(address) == 4 else (host, port, 0, 0)
        return Target(socket.AF_INET6, sockaddr)
    return Target(socket.AF_INET, (host, port))


def _host_is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


# -- waiting ---------------------------------------------------------------------

READ, WRITE, CLOSED = 1, 2, 4
"""Flags for :func:`wait`: readable (or at end of file), writable, and (Linux) the
peer closed or reset the connection -- seen without reading."""

_HAS_POLL = hasattr(select, "poll")
_RDHUP = getattr(select, "POLLRDHUP", 0)


def wait(socks: Sequence[tuple[socket.socket, int]], timeout: float) -> dict[int, int]:
    """Wait up to ``timeout`` seconds for any of ``socks`` to be ready.

    Args:
        socks: ``(socket, flags)`` pairs, flags from ``READ | WRITE | CLOSED``.
        timeout: seconds; 0 polls.

    Returns:
        ``{fileno: flags}`` for the sockets that are ready. ``CLOSED`` is only
        reported where the platform has ``POLLRDHUP`` (Linux).
    """
    if not socks:
        return {}
    if _HAS_POLL:
        poller = select.poll()
        for sock, flags in socks:
            events = ((select.POLLIN if flags & READ else 0)
                      | (select.POLLOUT if flags & WRITE else 0)
                      | (_RDHUP if flags & CLOSED else 0))
            poller.register(sock.fileno(), events)
        ready: dict[int, int] = {}
        trouble = select.POLLHUP | select.POLLERR | select.POLLNVAL
        for fd, revents in poller.poll(math.ceil(max(0.0, timeout) * 1000)):
            flags = 0
            if revents & (select.POLLIN | trouble):
                flags |= READ
            if revents & (select.POLLOUT | trouble):
                flags |= WRITE
            if revents & (_RDHUP | trouble):
                flags |= CLOSED
            ready[fd] = flags
        return ready
    readers = [s for s, f in socks if f & (READ | CLOSED)]
    writers = [s for s, f in socks if f & WRITE]
    r, w, _ = select.select(readers, writers, [], max(0.0, timeout))
    result: dict[int, int] = {}
    for sock in r:
        result[sock.fileno()] = result.get(sock.fileno(), 0) | READ
    for sock in w:
        result[sock.fileno()] = result.get(sock.fileno(), 0) | WRITE
    return result


# -- a run's shared state --------------------------------------------------------


class Control:
    """What a run's connections share: where to go, the limits, stop and progress.

    Attributes:
        target: where to connect.
        duration: the run's bound in seconds (its deadline is ``duration`` after
            :meth:`begin`).
        timeout: the bound on each wait for the server (connect, a reply).
        max_reply: how many bytes of each connection's reply to keep.
        stop: set by ``ClientRun.stop()``; every wait looks at it.
        connected: set once the client made its connections.
        sent: set once the client sent what it sends up front.
    """

    def __init__(self, target: Target, *, duration: float, timeout: float,
                 max_reply: int) -> None:
        self.target = target
        self.duration = duration
        self.timeout = timeout
        self.max_reply = max_reply
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.sent = threading.Event()
        self.started = time.monotonic()
        self.deadline = self.started + duration
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def begin(self) -> None:
        """Start the clock: the deadline is ``duration`` from now."""
        self.started = time.monotonic()
        self.deadline = self.started + self.duration

    def elapsed(self) -> float:
        """Seconds since :meth:`begin`."""
        return time.monotonic() - self.started

    def over(self, until: float | None = None) -> bool:
        """Whether the run was stopped or reached ``until`` / its deadline."""
        end = self.deadline if until is None else min(until, self.deadline)
        return self.stop.is_set() or time.monotonic() >= end

    def bound(self) -> float:
        """The end of one wait for the server: ``timeout`` from now, within the deadline."""
        return min(time.monotonic() + self.timeout, self.deadline)

    def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped first; False if stopped or past the deadline."""
        end = min(time.monotonic() + seconds, self.deadline)
        if self.stop.wait(max(0.0, end - time.monotonic())):
            return False
        return time.monotonic() < self.deadline

    def open_socket(self, kind: int) -> socket.socket:
        """A new non-blocking socket of the target's family, closed by :meth:`close_all`."""
        sock = socket.socket(self.target.family, kind)
        with self._lock:
            self._sockets.append(sock)
        try:
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def shutdown_all(self) -> None:
        """Wake whatever waits on this run's sockets (from another thread)."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close_all(self) -> None:
        """Close every socket the run opened (idempotent)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


# -- one stream connection -------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """What happened on one connection of a stream client.

    Attributes:
        index: the connection's number within the run (0-based).
        outcome: how it ended (see :data:`Outcome`): ``"eof"`` or ``"reset"`` if
            the server ended it, ``"open"`` if the client did, ``"refused"`` or
            ``"failed"`` if it never connected, ``"error"`` otherwise.
        sent: bytes the client sent.
        received: bytes the client received (all of them, kept or not).
        reply: the first ``max_reply`` bytes received.
        closed_at: seconds after the run started when the client saw the server
            end the connection (``None`` if it did not).
        error: the socket error seen, as ``"ECONNRESET: Connection reset by
            peer"`` (``None`` if none).
    """

    index: int
    outcome: Outcome
    sent: int
    received: int
    reply: bytes
    closed_at: float | None
    error: str | None

    @property
    def connected(self) -> bool:
        """Whether the connection was established."""
        return self.outcome not in ("refused", "failed")


class Conn:
    """One stream connection being driven: the socket and what happened on it."""

    def __init__(self, index: int, control: Control) -> None:
        self.index = index
        self.control = control
        self.sock: socket.socket | None = None
        self.connected = False
        self.closed = False
        self.outcome: Outcome = "open"
        self.sent = 0
        self.received = 0
        self.reply = bytearray()
        self.closed_at: float | None = None
        self.error: str | None = None

    @property
    def alive(self) -> bool:
        """Connected, not ended by either side, and not closed."""
        return (self.connected and self.outcome == "open" and self.sock is not None
                and not self.closed)

    def _fail(self, outcome: Outcome, error: str) -> bool:
        self.outcome = outcome
        self.error = error
        self.close()
        return False

    def connect(self, *, rcvbuf: int | None = None) -> bool:
        """Connect within ``timeout`` (and the deadline); record a failure otherwise.

        Args:
            rcvbuf: ``SO_RCVBUF`` to set before connecting (``None``: the default).

        Returns:
            Whether the connection was established.
        """
        control = self.control
        try:
            sock = self.sock = control.open_socket(socket.SOCK_STREAM)
        except OSError as exc:  # the client's own limits: EMFILE, ENOBUFS
            return self._fail("failed", describe_error(exc))
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if not control.target.unix:
            # Each chunk a client sends leaves as it was sent (no Nagle batching).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        end = control.bound()
        while True:
            code = sock.connect_ex(control.target.sockaddr)
            if code in (errno.EINPROGRESS, errno.EALREADY):
                while not control.over(end):
                    if wait([(sock, WRITE)], min(SLICE, end - time.monotonic())):
                        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        break
                else:
                    return self._timed_out(end)
            elif code in (errno.EAGAIN, errno.EWOULDBLOCK):  # a full Unix backlog: retry
                if control.over(end) or control.stop.wait(0.002):
                    return self._timed_out(end)
                continue
            if code in (0, errno.EISCONN):
                self.connected = True
                return True
            outcome: Outcome = "refused" if code == errno.ECONNREFUSED else "failed"
            return self._fail(outcome, describe_error(OSError(code, os.strerror(code))))

    def _timed_out(self, end: float) -> bool:
        if self.control.stop.is_set():
            return self._fail("failed", "stopped before the connection was established")
        return self._fail("failed", f"connect() did not complete within "
                                    f"{self.control.timeout:g} s (or the run's duration)")

    def _lost(self, exc: OSError) -> None:
        if self.outcome == "open":
            self.outcome = "reset" if exc.errno in _RESET_ERRNOS else "error"
            self.closed_at = self.control.elapsed()
            self.error = describe_error(exc)

    def _got(self, data: bytes) -> None:
        self.received += len(data)
        room = self.control.max_reply - len(self.reply)
        if room > 0:
            self.reply += data[:room]

    def send_all(self, data: bytes, until: float) -> bool:
        """Send all of ``data`` before ``until`` (and the deadline, unless stopped).

        Returns:
            Whether everything was sent; a reset or error is recorded.
        """
        sock = self.sock
        view = memoryview(data)
        while view and self.alive and sock is not None:
            try:
                count = sock.send(view[:65536])
            except BlockingIOError:
                if self.control.over(until):
                    return False
                wait([(sock, WRITE)], min(SLICE, until - time.monotonic()))
                continue
            except OSError as exc:
                self._lost(exc)
                return False
            self.sent += count
            view = view[count:]
        return not view

    def pump(self) -> None:
        """Read what has arrived, without waiting; note end of file or a reset."""
        sock = self.sock
        for _ in range(_MAX_READS_PER_PUMP):
            if not self.alive or sock is None:
                return
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(exc)
                return
            if not data:
                self.outcome = "eof"
                self.closed_at = self.control.elapsed()
                return
            self._got(data)

    def read_reply(self, until: float, marker: bytes | None = None) -> None:
        """Read until the server ends the connection, ``marker`` has arrived, or ``until``."""
        while self.alive and self.sock is not None:
            self.pump()
            if marker is not None and marker in self.reply:
                return
            if not self.alive or self.control.over(until):
                return
            wait([(self.sock, READ)], min(SLICE, until - time.monotonic()))

    def shutdown_write(self) -> None:
        """Half-close: the server reads end of file; the client can still read."""
        if self.alive and self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                self._lost(exc)

    def unread(self) -> int | None:
        """Bytes waiting in the receive queue, unread (``None`` if the platform cannot say)."""
        if self.sock is None:
            return None
        try:
            import fcntl
            import termios

            raw = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (ImportError, OSError, AttributeError):
            return None
        return int(struct.unpack("i", raw)[0])

    def notice_close(self) -> None:
        """Note whether the server ended the connection, without reading (Linux)."""
        if not self.alive or self.sock is None or not _RDHUP:
            return
        if wait([(self.sock, CLOSED)], 0):
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._lost(OSError(code, os.strerror(code)))
            else:
                self.outcome = "eof"
                self.closed_at = self.control.elapsed()

    def reset(self) -> None:
        """Close with ``SO_LINGER`` {1, 0}: the kernel sends a reset, not a FIN."""
        if self.sock is not None and self.connected:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        """Close the socket (idempotent); the outcome stays what was seen."""
        self.closed = True
        if self.sock is not None:
            self.sock.close()

    def summary(self) -> Connection:
        """The frozen record of this connection."""
        return Connection(self.index, self.outcome, self.sent, self.received,
                          bytes(self.reply), self.closed_at, self.error)


def watch(conns: Iterable[Conn], until: float, control: Control) -> bool:
    """Keep reading the live connections (replies, end of file, resets) until ``until``.

    Returns:
        True when ``until`` came with the run still going and some connection
        alive; False if the run was stopped, reached its deadline, or every
        connection ended.
    """
    conns = list(conns)
    while True:
        live = [c for c in conns if c.alive and c.sock is not None]
        if not live or control.stop.is_set():
            return False
        now = time.monotonic()
        if now >= control.deadline:
            return False
        if now >= until:
            return True
        by_fd = {c.sock.fileno(): c for c in live if c.sock is not None}
        ready = wait([(c.sock, READ) for c in live if c.sock is not None],
                     min(SLICE, until - now, control.deadline - now))
        for fd in ready:
            by_fd[fd].pump()

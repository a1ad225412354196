"""One stream connection and watching several.

:class:`Conn` drives one stream connection and keeps its bookkeeping (bytes each
way, the reply, how the server ended it), summed up as a frozen
:class:`Connection`; :func:`watch` keeps reading a run's live connections until a
given time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sockshock._clients._address import describe_error
from sockshock._clients._control import (
    CLOSED,
    READ,
    SEES_CLOSED,
    SLICE,
    WRITE,
    Control,
    wait,
)

__all__ = [
    "Conn",
    "Connection",
    "Outcome",
    "watch",
]

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
        return (
            self.connected and self.outcome == "open" and self.sock is not None and not self.closed
        )

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
        return self._fail(
            "failed",
            f"connect() did not complete within {self.control.timeout:g} s (or the run's duration)",
        )

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
        if not self.alive or self.sock is None or not SEES_CLOSED:
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
        return Connection(
            self.index,
            self.outcome,
            self.sent,
            self.received,
            bytes(self.reply),
            self.closed_at,
            self.error,
        )


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
        ready = wait(
            [(c.sock, READ) for c in live if c.sock is not None],
            min(SLICE, until - now, control.deadline - now),
        )
        for fd in ready:
            by_fd[fd].pump()

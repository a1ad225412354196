"""Bounded waiting, and the state a client's run shares between its connections.

Sockets are non-blocking throughout and every wait is cut into slices of at most
:data:`SLICE` seconds (:func:`wait`), so that a run honours its deadline and
``stop()`` within a slice whatever the server does. :class:`Control` holds what a
run's connections share: the target, the limits, the deadline, the stop flag, the
progress events and every socket the run opened.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import threading
import time
from collections.abc import Sequence

from sockshock._clients._address import Target
from sockshock._clients._connect import open_socket

__all__ = [
    "CLOSED",
    "JOIN_GRACE",
    "READ",
    "SEES_CLOSED",
    "SLICE",
    "WRITE",
    "Control",
    "wait",
]

SLICE = 0.02
"""The longest a client waits on a socket before it looks at its deadline and stop flag."""

JOIN_GRACE = 5.0
"""Seconds beyond a run's duration to wait for its threads (they end within a slice of stop())."""

# -- waiting ---------------------------------------------------------------------

READ, WRITE, CLOSED = 1, 2, 4
"""Flags for :func:`wait`: readable (or at end of file), writable, and (Linux) the
peer closed or reset the connection -- seen without reading."""

_HAS_POLL = hasattr(select, "poll")
_RDHUP = getattr(select, "POLLRDHUP", 0)

SEES_CLOSED = bool(_RDHUP)
"""Whether :func:`wait` can report ``CLOSED`` here (``POLLRDHUP``: Linux)."""


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
            events = (
                (select.POLLIN if flags & READ else 0)
                | (select.POLLOUT if flags & WRITE else 0)
                | (_RDHUP if flags & CLOSED else 0)
            )
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

    def __init__(self, target: Target, *, duration: float, timeout: float, max_reply: int) -> None:
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
        """A new non-blocking socket of the target's family, closed by :meth:`close_all`
        (a Unix datagram one bound to a path of its own: ``_connect.open_socket``)."""
        sock = open_socket(self.target.family, kind)
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

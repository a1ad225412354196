"""The fault proxy's I/O loop, and what forwarding asks of the proxy that runs it.

One I/O thread waits in epoll(7) (poll(2) where there is none) over non-blocking
sockets -- no thread per connection, no busy waiting, one system call per wake-up
and no per-event objects. Delays are timers in a heap that bounds the wait; a
socket pair wakes the loop from other threads (and signal handlers). Readiness is
reported in poll(2) bits; an error or a hang-up is reported as both readable and
writable, so that the next read or write finds out what happened.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import select
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from sockshock._faults import Decision

__all__ = ["BATCH", "CHUNK", "EPOLL", "READ", "WRITE", "Hub", "Loop"]

READ = select.POLLIN
WRITE = select.POLLOUT
_TROUBLE = select.POLLERR | select.POLLHUP
EPOLL = hasattr(select, "epoll")
CHUNK = 256 * 1024  # the scratch buffer every stream read lands in
BATCH = 64  # accepts or datagrams per readiness report, then the others get a turn


class Loop:
    """Readiness callbacks per descriptor and timers, run on one thread.

    Other threads only set :attr:`stopping` and call :meth:`wake`.
    """

    def __init__(self) -> None:
        #: Set (then :meth:`wake`) to end :meth:`run`.
        self.stopping = False
        self.poller: Any = None  # select.epoll, or select.poll
        self.callbacks: dict[int, Callable[[int], None]] = {}
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        #: Every stream read lands here (one I/O thread, one buffer).
        self.scratch = memoryview(bytearray(CHUNK))

    def open(self) -> None:
        """Make the poller and the wake-up socket pair."""
        self.poller = select.epoll() if EPOLL else select.poll()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.watch(self._wake_r, 0, READ, self._on_wake)

    def run(self) -> None:
        """Dispatch readiness and due timers until :attr:`stopping` is set (an
        exception from a callback ends it too, and propagates)."""
        poller = self.poller
        callbacks = self.callbacks
        timers = self.timers
        while not self.stopping:
            timeout: float | None = None
            if timers:
                timeout = max(0.0, timers[0][0] - time.monotonic())
                if not EPOLL:  # poll(2) counts milliseconds
                    timeout = math.ceil(timeout * 1000)
            for fd, events in poller.poll(timeout):
                callback = callbacks.get(fd)
                if callback is None:  # closed earlier in this batch
                    continue
                callback(events | READ | WRITE if events & _TROUBLE else events)
                if self.stopping:
                    break
            if timers and not self.stopping:
                now = time.monotonic()
                while timers and timers[0][0] <= now and not self.stopping:
                    heapq.heappop(timers)[2]()

    def watch(
        self, sock: socket.socket, old: int, new: int, callback: Callable[[int], None]
    ) -> None:
        """Poll ``sock`` for ``new`` (poll bits; 0: not at all) instead of ``old``."""
        fd = sock.fileno()
        if not old:
            self.poller.register(fd, new)
            self.callbacks[fd] = callback
        elif not new:
            self.callbacks.pop(fd, None)
            with contextlib.suppress(KeyError, ValueError, OSError):  # closed already
                self.poller.unregister(fd)
        else:
            self.poller.modify(fd, new)
            self.callbacks[fd] = callback

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O thread after ``delay`` seconds."""
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self._sequence), callback))

    def wake(self) -> None:
        """Interrupt the wait (safe from any thread, and in a signal handler)."""
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _on_wake(self, mask: int) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def close(self) -> None:
        """Drop the timers and the callbacks and close the poller; the wake-up pair
        stays open (other threads may still :meth:`wake`) until :meth:`release`."""
        self.timers.clear()
        self.callbacks.clear()
        if EPOLL and self.poller is not None:
            self.poller.close()

    def release(self) -> None:
        """Close the wake-up socket pair."""
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()


class Hub(Protocol):
    """What stream connections and the datagram relay ask of the proxy that runs them."""

    upstream: Any
    _concerns: dict[str, bool]
    _loop: Loop

    def _ask(
        self, kind: str, index: int, address: Any, size: int, offset: int, count: int
    ) -> Decision:
        """The plan's decision for one forwarding step or datagram (logged)."""
        ...

    def _abrupt_shutdown(self) -> None:
        """AbruptShutdown: reset everything, stop listening."""
        ...

    def _ended(self, index: int) -> None:
        """A connection (or a datagram client) ended: what was kept for it can go."""
        ...

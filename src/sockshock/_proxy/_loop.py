"""The fault proxy's I/O loop, and what forwarding asks of the proxy that runs it.

One I/O thread waits in epoll(7) (poll(2) where there is none) over non-blocking
sockets -- no thread per connection, no busy waiting, one system call per wake-up
and no per-event objects. Delays are timers in a heap that bounds the wait; a
socket pair wakes the loop from other threads (and signal handlers), which hand it
work with :meth:`Loop.call_soon`. Readiness is reported in poll(2) bits; an error or
a hang-up is reported as both readable and writable, so that the next read or
write finds out what happened.

The loop also owns the one kernel pipe every spliced stream direction goes
through (:attr:`Loop.pipe`): a direction splices what it reads into it and at once
out of it, and takes back into memory whatever the destination could not take, so
the pipe is empty between events and a connection costs two descriptors, not six.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import heapq
import itertools
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sockshock._faults import Decision

__all__ = ["BATCH", "CHUNK", "EPOLL", "READ", "SPLICE", "WRITE", "Hub", "Loop"]

READ = select.POLLIN
WRITE = select.POLLOUT
_TROUBLE = select.POLLERR | select.POLLHUP
EPOLL = hasattr(select, "epoll")
CHUNK = 256 * 1024  # the scratch buffer every copied stream read lands in
BATCH = 64  # accepts or datagrams per readiness report, then the others get a turn
#: Whether stream directions no model looks at are spliced (Linux): their bytes
#: never enter Python unless the destination is full.
SPLICE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")
_PIPE_SIZE = 1024 * 1024


class Loop:
    """Readiness callbacks per descriptor and timers, run on one thread.

    Other threads only set :attr:`stopping`, call :meth:`wake` and
    :meth:`call_soon`.
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
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        self._soon_lock = threading.Lock()
        #: Every copied stream read lands here (one I/O thread, one buffer).
        self.scratch = memoryview(bytearray(CHUNK))
        #: The kernel pipe spliced directions pass through (read end, write end),
        #: and how much it holds; None where splice(2) is not available.
        self.pipe: tuple[int, int] | None = None
        self.pipe_size = CHUNK
        #: The I/O thread, once :meth:`run` runs.
        self.thread: threading.Thread | None = None

    def open(self) -> None:
        """Make the poller, the wake-up socket pair and the splice pipe."""
        self.poller = select.epoll() if EPOLL else select.poll()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.watch(self._wake_r, 0, READ, self._on_wake)
        if SPLICE:
            try:
                r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:  # out of descriptors: copy instead
                return
            self.pipe = (r, w)
            try:
                self.pipe_size = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default size
                self.pipe_size = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)

    def run(self) -> None:
        """Dispatch readiness and due timers until :attr:`stopping` is set (an
        exception from a callback ends it too, and propagates)."""
        self.thread = threading.current_thread()
        poller = self.poller
        callbacks = self.callbacks
        timers = self.timers
        soon = self._soon
        while not self.stopping:
            timeout: float | None = None
            if soon:
                timeout = 0.0
            elif timers:
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
            while soon and not self.stopping:
                soon.popleft()()
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

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O thread at ``when`` (``time.monotonic()``)."""
        heapq.heappush(self.timers, (when, next(self._sequence), callback))

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O thread as soon as it is free (from any thread)."""
        with self._soon_lock:
            self._soon.append(callback)
        self.wake()

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
        """Drop the timers and the callbacks and close the poller and the splice
        pipe; the wake-up pair stays open (other threads may still :meth:`wake`)
        until :meth:`release`."""
        self.timers.clear()
        self.callbacks.clear()
        self._soon.clear()
        if EPOLL and self.poller is not None:
            self.poller.close()
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None

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
        self, kind: str, index: int, address: Any, size: int, offset: int, count: int, now: float
    ) -> Decision:
        """The plan's decision for one forwarding step or datagram (logged)."""
        ...

    def _abrupt_shutdown(self) -> None:
        """AbruptShutdown: reset everything, stop listening."""
        ...

    def _ended(self, index: int) -> None:
        """A connection (or a datagram client) ended: what was kept for it can go."""
        ...

    def _loop_detected(self, address: Any) -> None:
        """A client came from this proxy's own upstream side (it forwards to itself)."""
        ...

"""A client script carried out in memory, in virtual time (for ``drive()``).

The client is lazy: it acts only when asked -- right after connecting, up to its
first read or pause (stream: before the handler starts), then when the handler
waits for it (stream), or when ``drive()`` runs it (datagram, where the server
takes what is waiting whenever the client waits) -- and then as far as it can go
without waiting for a reply, or until a deadline.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from sockshock._clients import (
    MAX_READ,
    ClientScript,
    Close,
    HalfClose,
    Pause,
    Read,
    Reset,
    Send,
    StepResult,
    outcome_of,
    wanted,
)
from sockshock._memory._buffers import MemoryEndpoint, never
from sockshock._util import Clock
from sockshock._wire import DONTWAIT

__all__ = ["MemoryClient"]


class MemoryClient:
    """A script carried out on an in-memory endpoint, in virtual time, as far as it
    can go each time it is asked (see the module's docstring)."""

    def __init__(
        self,
        script: ClientScript,
        endpoint: MemoryEndpoint,
        clock: Clock,
        serve: Callable[[], None] | None = None,
    ) -> None:
        self.steps = script.steps
        self.timeout = script.timeout
        self.endpoint = endpoint
        self.clock = clock
        self.serve = serve  # datagram: the server takes what is waiting
        self.results: list[StepResult] = []
        self.finished = False
        self._next = 0
        self._resume_at = 0.0  # the end of a pause
        self._read_deadline: float | None = None  # the read in progress
        self._got = bytearray()
        self._closed = False
        self._busy = False

    @property
    def received(self) -> bytes:
        return b"".join(result.data for result in self.results)

    def advance(self, deadline: float | None, ready: Callable[[], bool]) -> bool:
        """Carry steps out until the client must wait -- for a reply, or at a pause
        while ``ready()`` -- or the clock reaches ``deadline`` (``None``: as far as
        the script goes); True if the client may act again."""
        if self._busy:  # the server waits inside a datagram handler the client runs
            return not self.finished
        self._busy = True
        try:
            clock = self.clock
            while not self.finished:
                now = clock.now()
                if self._resume_at > now:  # pausing
                    if ready():
                        break
                    if deadline is not None and self._resume_at > deadline:
                        clock.sleep(max(0.0, deadline - now))
                        break
                    clock.sleep(self._resume_at - now)
                    now = self._resume_at
                if not self._step(now, deadline, ready):
                    break  # waiting for a reply
            return not self.finished
        finally:
            self._busy = False

    def act_first(self) -> None:
        """Right after connecting, before the handler starts: the steps up to the
        first read or pause (sends, a half-close, a reset, a close)."""
        steps = self.steps
        while self._next < len(steps) and not isinstance(steps[self._next], (Read, Pause)):
            self._step(self.clock.now(), None, never)

    def _done(self, result: StepResult) -> None:
        self.results.append(result)
        self._next += 1
        if self._next >= len(self.steps):
            self.finished = True
            self._close()
            if self.serve is not None:
                self.serve()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self.endpoint.close()

    def _step(self, now: float, deadline: float | None, ready: Callable[[], bool]) -> bool:
        """Carry the next step out, or part of a read; False if the read must wait:
        while ``ready()`` (the server has work), or past ``deadline`` (the clock is
        then at the deadline)."""
        if self._next >= len(self.steps):
            self.finished = True
            self._close()
            return True
        step = self.steps[self._next]
        if isinstance(step, Pause):
            if self.serve is not None:
                self.serve()
            self._resume_at = now + step.seconds
            self._done(StepResult(step, "ok"))
            return True
        if self._closed:
            self._done(StepResult(step, "closed"))
            return True
        if isinstance(step, Read):
            return self._read(step, now, deadline, ready)
        endpoint = self.endpoint
        try:
            if isinstance(step, Send):
                endpoint.sendall(step.data)
            elif isinstance(step, HalfClose):
                endpoint.shutdown(socket.SHUT_WR)
            elif isinstance(step, Reset):
                self._closed = True
                endpoint.reset()
            elif isinstance(step, Close):
                self._close()
        except OSError as exc:
            self._done(StepResult(step, outcome_of(exc)))
            return True
        self._done(StepResult(step, "ok"))
        return True

    def _read(
        self, step: Read, now: float, deadline: float | None, ready: Callable[[], bool]
    ) -> bool:
        if self._read_deadline is None:
            self._read_deadline = now + self.timeout
            self._got = bytearray()
            if self.serve is not None:
                self.serve()
        outcome = self._pull(step)
        if outcome is None:  # nothing more until the server acts
            if ready():
                return False
            # ... and the server waits for us too: the first deadline ends it
            if deadline is not None and deadline < self._read_deadline:
                self.clock.sleep(max(0.0, deadline - now))
                return False
            self.clock.sleep(max(0.0, self._read_deadline - now))
            outcome = "timeout"
        self._read_deadline = None
        self._done(StepResult(step, outcome, bytes(self._got)))
        return True

    def _pull(self, step: Read) -> str | None:
        """Take what the read wants of what is waiting; its outcome, or ``None``
        while it is incomplete."""
        endpoint, got = self.endpoint, self._got
        try:
            if self.serve is not None:  # datagram: one datagram
                got += endpoint.recv(min(step.size or MAX_READ, MAX_READ), DONTWAIT)
                return "ok"
            while True:
                chunk = endpoint._waiting()
                if chunk is None:
                    return None
                if not chunk:
                    return "eof"
                take, complete = wanted(step, got, chunk)
                got += endpoint._take(take, 0)
                if complete:
                    return "ok"
        except BlockingIOError:
            return None
        except OSError as exc:
            return outcome_of(exc)

"""A scripted client as a controlled thread of a scheduled run.

Unlike ``drive()``'s lazy single client, each client here is a thread of its own:
it carries its steps out one by one, every operation a switch point, and waits
(the scheduler's way: blocked until the server's bytes, its end, or the script's
read timeout in virtual time) when a read finds nothing. Outcomes are those of
the single-client ``drive()`` and of real sockets: ``"ok"``, ``"eof"``,
``"timeout"``, ``"closed"``, or the name of the error.
"""

from __future__ import annotations

import socket
from typing import Any

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
from sockshock._memory import MemoryEndpoint
from sockshock._sched._core import Scheduler, Task
from sockshock._sched._net import SchedListener, SchedSocket, outcome
from sockshock._wire import DONTWAIT

__all__ = ["ScheduledClient", "ScriptedClient"]


def _show(task: Task, detail: Any) -> None:
    """What the operation in progress got (its step is the latest of the task)."""
    if task.event is not None:
        if task.event.detail is None:
            task.event.detail = detail
        elif isinstance(detail, tuple):
            task.event.detail = (task.event.detail, *detail[1:])
        else:
            task.event.detail = (task.event.detail, detail)


class ScriptedClient:
    """A client script carried out step by step as a controlled thread: what the
    in-memory and the real-socket clients share. Subclasses connect, read, act and
    close."""

    sched: Scheduler
    index: int
    name: str
    script: ClientScript
    stream: bool

    def __init__(self, sched: Scheduler, index: int, script: ClientScript, stream: bool) -> None:
        self.sched = sched
        self.index = index
        self.name = f"client {index + 1}"
        self.script = script
        self.stream = stream
        self.results: list[StepResult] = []
        self.finished = False
        self._closed = False

    @property
    def received(self) -> bytes:
        return b"".join(result.data for result in self.results)

    def run(self, task: Task) -> None:
        """The thread's body: every step, then a close if the script left it open."""
        try:
            refused = self._connect(task) if self.stream else None
            for step in self.script.steps:
                if isinstance(step, Pause):
                    self.sched.sleep(task, step.seconds)
                    self.results.append(StepResult(step, "ok"))
                elif refused is not None:
                    self.results.append(StepResult(step, refused))
                    refused = "closed"
                elif self._closed:
                    self.results.append(StepResult(step, "closed"))
                elif isinstance(step, Read):
                    self.results.append(self._read(task, step))
                else:
                    self.results.append(self._act(task, step))
            if not self._closed and refused is None:
                self._closed = True
                self._close(task)
        finally:
            self.finished = True

    def _connect(self, task: Task) -> str | None:
        """Connect; the outcome of every step if that failed."""
        raise NotImplementedError

    def _read(self, task: Task, step: Read) -> StepResult:
        raise NotImplementedError

    def _act(self, task: Task, step: Any) -> StepResult:
        raise NotImplementedError

    def _close(self, task: Task) -> None:
        raise NotImplementedError


class ScheduledClient(ScriptedClient):
    """One client of a scheduled run on in-memory sockets (see the module's docstring).

    Args:
        index: its place among the run's clients (steps show ``"client <index + 1>"``).
        script: what it does.
        endpoint: its in-memory socket.
        server: the listening socket (stream) or the server's address (datagram).
    """

    def __init__(
        self,
        sched: Scheduler,
        index: int,
        script: ClientScript,
        endpoint: MemoryEndpoint,
        address: Any,
        server: SchedListener | Any,
    ) -> None:
        super().__init__(sched, index, script, endpoint.type == socket.SOCK_STREAM)
        self.endpoint = endpoint
        self.address = address
        self.server = server
        self.connection: SchedSocket | None = None  # stream: the server's end

    def _close(self, task: Task) -> None:
        self.sched.switch(task, "close")
        self.endpoint.close()

    def _connect(self, task: Task) -> str | None:
        event = self.sched.switch(task, "connect")
        try:
            self.connection = self.server.connect(
                self.endpoint, self.address, self.name, lambda: self.finished
            )
        except OSError as exc:
            event.detail = outcome(exc)
            self._closed = True
            return outcome_of(exc)
        self.connection.client_index = self.index
        return None

    def _act(self, task: Task, step: Any) -> StepResult:
        endpoint = self.endpoint
        if isinstance(step, Send):
            stream = endpoint.type == socket.SOCK_STREAM
            event = self.sched.switch(task, "send" if stream else "sendto", step.data)
        else:
            name = {HalfClose: "half-close", Reset: "reset", Close: "close"}[type(step)]
            event = self.sched.switch(task, name)
        try:
            if isinstance(step, Send):
                if endpoint.type == socket.SOCK_STREAM:
                    endpoint.sendall(step.data)
                else:
                    endpoint.sendto(step.data, self.server)
            elif isinstance(step, HalfClose):
                endpoint.shutdown(socket.SHUT_WR)
            elif isinstance(step, Reset):
                self._closed = True
                endpoint.reset()
            else:
                self._closed = True
                endpoint.close()
        except OSError as exc:
            event.detail = outcome(exc)
            return StepResult(step, outcome_of(exc))
        return StepResult(step, "ok")

    def _read(self, task: Task, step: Read) -> StepResult:
        sched, endpoint, stream = self.sched, self.endpoint, self.stream
        sched.switch(task, "recv" if stream else "recvfrom")
        deadline = sched.now + self.script.timeout
        got = bytearray()
        while True:
            if not stream:
                if endpoint._queue:
                    got += endpoint._raw_recvfrom(step.size or MAX_READ, DONTWAIT)[0]
                    _show(task, bytes(got))
                    return StepResult(step, "ok", bytes(got))
                if not sched.block(task, lambda: bool(endpoint._queue), deadline, "recvfrom"):
                    return StepResult(step, "timeout", bytes(got))
                continue
            try:
                chunk = endpoint._waiting()
            except OSError as exc:
                _show(task, (b"", outcome(exc)))
                return StepResult(step, outcome_of(exc), bytes(got))
            if chunk is None:
                if not sched.block(task, endpoint._readable, deadline, "recv"):
                    return StepResult(step, "timeout", bytes(got))
                continue
            if not chunk:
                _show(task, (b"", "-> eof"))
                return StepResult(step, "eof", bytes(got))
            take, complete = wanted(step, got, chunk)
            data = endpoint._take(take, 0)
            got += data
            _show(task, data)
            if complete:
                return StepResult(step, "ok", bytes(got))

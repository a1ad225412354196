"""Real sockets under the scheduler: loopback TCP and UDP, and Unix sockets in a
temporary directory, for ``drive(..., schedule=..., sockets="real")``.

:class:`RealSchedSocket` is a ``socket.socket`` whose descriptor is non-blocking
and whose operations are switch points: an operation that would block makes its
thread wait in the scheduler until ``poll()`` says the descriptor is ready (or the
socket's timeout passes, in virtual time). That is deterministic because on
loopback and Unix sockets the kernel delivers synchronously: what one thread sent
is readable by the other the moment ``send()`` returns (measured: 100,000 of
100,000, docs/howto/interleavings.md), and every sender and receiver here is a
controlled thread. The kernel, not memory buffers, decides what a read returns:
sends coalesce, as on a real network. Connecting is done blocking (on loopback the
handshake completes within ``connect()``).

:class:`RealLayer` hands them to a sockshock server; :class:`RealClient` runs a
client script on one.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import tempfile
from collections.abc import Callable
from typing import Any

from sockshock._clients import (
    MAX_READ,
    ClientScript,
    Close,
    HalfClose,
    Read,
    Reset,
    Send,
    StepResult,
    outcome_of,
    wanted,
)
from sockshock._sched._client import ScriptedClient
from sockshock._sched._core import Scheduler, Task, current_task
from sockshock._sched._net import outcome
from sockshock._wire import timed_out

__all__ = ["RealClient", "RealLayer", "RealSchedSocket", "readable"]

_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_IN = select.POLLIN | select.POLLERR | select.POLLHUP
_OUT = select.POLLOUT | select.POLLERR | select.POLLHUP
_Socket = socket.socket


def readable(sock: _Socket) -> bool:
    """Whether a read on ``sock`` would not block (or it is closed)."""
    return _ready(sock.fileno(), _IN)


def _waiter(fd: int, events: int) -> Callable[[], bool]:
    return lambda: _ready(fd, events)


def _ready(fd: int, events: int) -> bool:
    if fd < 0:
        return True  # closed: the operation fails at once
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(0))


class RealSchedSocket(_Socket):
    """A real socket whose operations are switch points (see the module's docstring).

    Its ``settimeout()`` value is kept here and waited out on the virtual clock; the
    descriptor itself never blocks."""

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
        *,
        sched: Scheduler,
    ) -> None:
        super().__init__(family, type, proto, fileno)
        _Socket.setblocking(self, False)
        self._sched = sched
        self._vtimeout: float | None = None
        self._in_op = False
        self.peer_name = ""
        self.names: dict[Any, str] = {}
        self.client_index: int | None = None
        #: Every byte a send took (stream); what ``sendto`` sent, and where to.
        self.written = bytearray()
        self.sent_to: list[tuple[bytes, Any]] = []
        self._write_shut = False
        self.handler_closed = False
        self.handler_half_closed = False
        #: The listening socket's clients: their address -> (index, name).
        self.clients: dict[Any, tuple[int, str]] = {}
        self.accepted: dict[int, RealSchedSocket] = {}

    # -- timeouts, kept virtual ------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        self._vtimeout = None if value is None else float(value)

    def gettimeout(self) -> float | None:
        return self._vtimeout

    def setblocking(self, flag: bool) -> None:
        self._vtimeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._vtimeout != 0.0

    # -- the operations ----------------------------------------------------------------

    def _op(self, name: str, events: int, call: Callable[[], Any], flags: int = 0) -> Any:
        """``call()`` after a switch point; while it would block, wait in the
        scheduler for ``events`` (within the virtual timeout; not with
        ``MSG_DONTWAIT`` in ``flags``, or on a non-blocking socket)."""
        task = current_task()
        if task is None or self._in_op:
            return call()
        sched = task.sched
        sched.switch(task, f"{name} {self.peer_name}".strip())
        deadline = None
        self._in_op = True
        try:
            while True:
                try:
                    return call()
                except BlockingIOError:
                    if self._vtimeout == 0.0 or flags & _DONTWAIT:
                        raise
                    if deadline is None and self._vtimeout is not None:
                        deadline = sched.now + self._vtimeout
                    if not sched.block(task, _waiter(self.fileno(), events), deadline, name):
                        raise timed_out() from None
        except Exception as exc:
            _show(task, outcome(exc))
            raise
        finally:
            self._in_op = False

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data: bytes = self._op("recv from", _IN, lambda: _Socket.recv(self, bufsize, flags), flags)
        _shown(data)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        n: int = self._op(
            "recv from", _IN, lambda: _Socket.recv_into(self, buffer, nbytes, flags), flags
        )
        _shown(bytes(memoryview(buffer).cast("B")[:n]))
        return n

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        result: tuple[bytes, Any] = self._op(
            "recvfrom", _IN, lambda: _Socket.recvfrom(self, bufsize, flags), flags
        )
        _shown(result[0])
        return result

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        result: tuple[int, Any] = self._op(
            "recvfrom", _IN, lambda: _Socket.recvfrom_into(self, buffer, nbytes, flags), flags
        )
        _shown(bytes(memoryview(buffer).cast("B")[: result[0]]))
        return result

    def send(self, data: Any, flags: int = 0) -> int:
        n: int = self._op("send to", _OUT, lambda: _Socket.send(self, data, flags), flags)
        sent = bytes(memoryview(data).cast("B")[:n])
        self.written += sent
        _shown(sent)
        return n

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        task = current_task()
        if task is None or self._in_op:
            _Socket.sendall(self, data, flags)
            return
        sent = 0
        while sent < view.nbytes:
            sent += self.send(view[sent:], flags)

    def sendto(self, data: Any, *args: Any) -> int:
        address = args[-1]
        n: int = self._op(
            f"sendto {self.names.get(address, address)}",
            _OUT,
            lambda: _Socket.sendto(self, data, *args),
        )
        self.sent_to.append((bytes(data), address))
        _shown(bytes(data))
        return n

    def accept(self) -> tuple[RealSchedSocket, Any]:
        fd, address = self._op("accept", _IN, self._accept)  # type: ignore[attr-defined]
        sock = RealSchedSocket(self.family, self.type, self.proto, fileno=fd, sched=self._sched)
        index, name = self.clients.get(address, (None, str(address)))
        sock.peer_name = name
        sock.client_index = index
        if index is not None:
            self.accepted[index] = sock
        task = current_task()
        if task is not None and task.event is not None:
            task.event.detail = name
        return sock, address

    def shutdown(self, how: int) -> None:
        self._op("shutdown", _OUT, lambda: _Socket.shutdown(self, how))
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self._write_shut = True

    def close(self) -> None:
        task = current_task()
        if task is not None and not self._closed and not self._in_op:  # type: ignore[attr-defined]
            task.sched.switch(task, f"close {self.peer_name}".strip())
        _Socket.close(self)


def _show(task: Task, detail: Any) -> None:
    if task.event is not None and task.event.detail is None:
        task.event.detail = detail


def _shown(data: bytes) -> None:
    task = current_task()
    if task is not None:
        _show(task, data)


class RealLayer:
    """The socket layer of a scheduled run on real sockets: Unix sockets live in a
    temporary directory, removed by :meth:`close`."""

    def __init__(self, sched: Scheduler) -> None:
        self.sched = sched
        self.directory = tempfile.mkdtemp(prefix="sockshock-sched-")
        self.sockets: list[RealSchedSocket] = []

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> RealSchedSocket:
        made = RealSchedSocket(family, type, proto, sched=self.sched)
        self.sockets.append(made)
        return made

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def close(self) -> None:
        for sock in self.sockets:
            _Socket.close(sock)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return "RealLayer()"


class RealClient(ScriptedClient):
    """A client script on a real socket, as a controlled thread (outcomes as in
    memory: ``"ok"``, ``"eof"``, ``"timeout"``, ``"closed"`` or the error's name)."""

    def __init__(
        self,
        layer: RealLayer,
        index: int,
        script: ClientScript,
        family: int,
        type: int,
        server: RealSchedSocket,
    ) -> None:
        super().__init__(layer.sched, index, script, type == socket.SOCK_STREAM)
        self.server = server
        self.sock = layer.socket(family, type)
        if family == getattr(socket, "AF_UNIX", None):
            self.sock.bind(layer.path(f"client-{index + 1}.sock"))
        else:
            self.sock.bind((server.getsockname()[0], 0))
        self.address = self.sock.getsockname()
        self.sock.names[server.getsockname()] = "server"  # not its port or path: those vary
        server.clients[self.address] = (index, self.name)
        server.names[self.address] = self.name

    @property
    def connection(self) -> RealSchedSocket | None:
        return self.server.accepted.get(self.index)

    def _close(self, task: Task) -> None:
        self.sock.close()

    def _connect(self, task: Task) -> str | None:
        event = self.sched.switch(task, "connect")
        sock = self.sock
        try:  # blocking: on loopback the handshake completes within connect()
            _Socket.setblocking(sock, True)
            _Socket.connect(sock, self.server.getsockname())
        except OSError as exc:
            event.detail = outcome(exc)
            self._closed = True
            _Socket.close(sock)
            return outcome_of(exc)
        finally:
            if not sock._closed:  # type: ignore[attr-defined]
                _Socket.setblocking(sock, False)
        return None

    def _act(self, task: Task, step: Any) -> StepResult:
        sock, stream = self.sock, self.stream
        try:
            if isinstance(step, Send):
                if stream:
                    sock.sendall(step.data)
                else:
                    sock.sendto(step.data, self.server.getsockname())
            elif isinstance(step, HalfClose):
                sock.shutdown(socket.SHUT_WR)
            elif isinstance(step, Reset):
                self.sched.switch(task, "reset")
                self._closed = True
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                _Socket.close(sock)
            elif isinstance(step, Close):
                self._closed = True
                sock.close()
        except OSError as exc:
            return StepResult(step, outcome_of(exc))
        return StepResult(step, "ok")

    def _read(self, task: Task, step: Read) -> StepResult:
        sched, sock, stream = self.sched, self.sock, self.stream
        sched.switch(task, "recv" if stream else "recvfrom")
        deadline = sched.now + self.script.timeout
        fd = sock.fileno()
        got = bytearray()
        while True:
            try:
                if not stream:
                    got += _Socket.recv(sock, step.size or MAX_READ)
                    _show(task, bytes(got))
                    return StepResult(step, "ok", bytes(got))
                chunk = _Socket.recv(sock, MAX_READ, socket.MSG_PEEK)
            except BlockingIOError:
                if not sched.block(task, lambda: _ready(fd, _IN), deadline, "recv"):
                    return StepResult(step, "timeout", bytes(got))
                continue
            except OSError as exc:
                _show(task, outcome(exc))
                return StepResult(step, outcome_of(exc), bytes(got))
            if not chunk:
                _show(task, "-> eof")
                return StepResult(step, "eof", bytes(got))
            take, complete = wanted(step, got, chunk)
            data = _Socket.recv(sock, take)
            got += data
            if task.event is not None:
                task.event.detail = bytes(got)
            if complete:
                return StepResult(step, "ok", bytes(got))

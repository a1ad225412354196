"""In-memory sockets whose every operation is a switch point, a listening socket,
the socket layer a server gets them from, and the run's virtual clock.

:class:`SchedSocket` is a :class:`~sockshock._memory.MemorySocket` -- the fault
layer's own paths over buffers with the kernel's semantics -- whose public
operations first pass a switch point (the step records the operation and, once
done, its bytes), and whose waits are the scheduler's (blocked until the data, the
peer's end or the virtual deadline). :class:`SchedListener` holds connections in
a backlog until ``accept()``. :class:`SchedLayer` hands them to a sockshock
server (its ``socket_layer``). :class:`SchedClock` is the fault layer's clock: a
delay is a virtual sleep of the thread that meets it.
"""

from __future__ import annotations

import collections
import errno
import io
import socket
from collections.abc import Callable
from typing import Any

from sockshock._memory import MemoryEndpoint, MemorySocket, never
from sockshock._sched._core import Scheduler, current_task
from sockshock._wire import Connection, FaultLayer, os_error, timed_out

__all__ = ["SchedClock", "SchedLayer", "SchedListener", "SchedSocket", "outcome"]


def outcome(exc: BaseException) -> str:
    """An operation's failure as a step shows it."""
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "-> timed out"
    if isinstance(exc, OSError) and exc.errno:
        return f"-> {errno.errorcode.get(exc.errno, exc.errno)}"
    return f"-> {type(exc).__name__}"


class SchedClock:
    """The run's virtual time: ``sleep()`` of a controlled thread blocks it until
    time has moved on (time moves when every controlled thread waits)."""

    def __init__(self, sched: Scheduler) -> None:
        self._sched = sched

    def now(self) -> float:
        return self._sched.now

    def sleep(self, seconds: float, wake: Any = None) -> bool:
        if wake is not None and wake.is_set():
            return True
        task = current_task()
        if task is None or task.sched is not self._sched:
            self._sched.now += seconds  # the harness, outside the run
            return False
        return self._sched.sleep(task, seconds, None if wake is None else wake.is_set)

    def __repr__(self) -> str:
        return f"SchedClock(now={self.now():g})"


def _data(args: tuple[Any, ...], result: Any) -> Any:
    return bytes(result) if isinstance(result, (bytes, bytearray)) else result


def _sent(args: tuple[Any, ...], result: Any) -> Any:
    view = memoryview(args[0]).cast("B")
    return bytes(view if result is None else view[:result])


def _into(args: tuple[Any, ...], result: Any) -> Any:
    count = result[0] if isinstance(result, tuple) else result
    return bytes(memoryview(args[0]).cast("B")[:count])


def _first(args: tuple[Any, ...], result: Any) -> Any:
    return bytes(result[0])


def _none(args: tuple[Any, ...], result: Any) -> Any:
    return None


def _switching(name: str, op: str, shown: Callable[[tuple[Any, ...], Any], Any]) -> Any:
    base = getattr(MemorySocket, name)

    def method(self: SchedSocket, *args: Any) -> Any:
        task = current_task()
        if task is None or self._in_op:
            return base(self, *args)
        self._op_name = f"{op} {self.peer_name}".strip()
        task.sched.switch(task, self._op_name)
        self._in_op = True
        try:
            result = base(self, *args)
        except Exception as exc:
            task.event.detail = outcome(exc)  # type: ignore[union-attr]
            raise
        finally:
            self._in_op = False
        task.event.detail = shown(args, result)  # type: ignore[union-attr]
        return result

    method.__name__ = name
    method.__doc__ = f"``{name}`` after a switch point."
    return method


class SchedSocket(MemorySocket):
    """The server's end of an in-memory connection, or its datagram socket (see the
    module's docstring).

    Args:
        peer_name: who is at the other end, as steps show it (``"client 1"``).
        peer_done: whether the peer can never act again.
    """

    def __init__(
        self,
        layer: FaultLayer,
        sched: Scheduler,
        type: int,
        address: Any,
        connection: Connection | None = None,
        *,
        peer_name: str = "",
        peer_done: Callable[[], bool] = never,
        family: socket.AddressFamily = socket.AF_INET,
    ) -> None:
        super().__init__(layer, type, address, connection)
        self._family = family
        self._sched = sched
        self._in_op = False
        self._op_name = ""  # the operation in progress, as its waits show it
        self.peer_name = peer_name
        self.peer_done = peer_done
        self.waiter = self._block
        #: What the handler's ``sendto`` sent, and where to (datagram).
        self.sent_to: list[tuple[bytes, Any]] = []
        #: The handler's own close and half-close, when its handler returned.
        self.handler_closed = False
        self.handler_half_closed = False
        #: Datagram: client address -> name, for the steps.
        self.names: dict[Any, str] = {}
        #: Stream: the index of the client at the other end.
        self.client_index: int | None = None

    def _block(self, deadline: float | None, ready: Callable[[], bool]) -> bool:
        if ready is never:  # a question: may the peer still act?
            return not self.peer_done()
        task = current_task()
        if task is None:
            return False
        what = self._op_name or ("recv" if self._type == socket.SOCK_STREAM else "recvfrom")
        return self._sched.block(task, ready, deadline, what)

    recv = _switching("recv", "recv from", _data)
    recv_into = _switching("recv_into", "recv from", _into)
    recvfrom = _switching("recvfrom", "recvfrom", _first)
    recvfrom_into = _switching("recvfrom_into", "recvfrom", _into)
    send = _switching("send", "send to", _sent)
    sendall = _switching("sendall", "send to", _sent)
    shutdown = _switching("shutdown", "shutdown", _none)
    close = _switching("close", "close", _none)

    def sendto(self, data: Any, *args: Any) -> int:
        address = args[-1]
        task = current_task()
        if task is None or self._in_op:
            self.sent_to.append((bytes(data), address))
            return int(MemorySocket.sendto(self, data, *args))
        event = task.sched.switch(task, f"sendto {self.names.get(address, address)}")
        self._in_op = True
        try:
            self.sent_to.append((bytes(data), address))
            n = int(MemorySocket.sendto(self, data, *args))
        except Exception as exc:
            event.detail = outcome(exc)
            raise
        finally:
            self._in_op = False
        event.detail = bytes(data)
        return n

    def bind(self, address: Any) -> None:
        """A datagram socket joins the in-memory network at ``address``."""
        self._address = address

    def listen(self, backlog: int = 0) -> None:
        """Nothing to do in memory."""

    def setsockopt(self, *args: Any) -> None:
        """Options change nothing in memory."""

    def fileno(self) -> int:
        if self._closed:
            return -1
        raise io.UnsupportedOperation(
            "an in-memory socket has no file descriptor: select() and poll() need real "
            "sockets; a scheduled drive() runs the serving loop itself"
        )


class SchedListener:
    """A listening stream socket in memory: a backlog of connections."""

    def __init__(
        self,
        layer: FaultLayer,
        sched: Scheduler,
        family: int,
        send_buffer: int | None = None,
        max_output: int | None = None,
    ) -> None:
        self._layer = layer
        self._sched = sched
        self._send_buffer = send_buffer
        self._max_output = max_output
        self.family = socket.AddressFamily(family)
        self.type = socket.SOCK_STREAM
        self.proto = 0
        self.address: Any = None
        self.backlog: collections.deque[tuple[SchedSocket, Any]] = collections.deque()
        self.closed = False
        self._timeout: float | None = None

    def bind(self, address: Any) -> None:
        self.address = address

    def listen(self, backlog: int = 0) -> None:
        """Nothing to do in memory: the backlog is unbounded."""

    def getsockname(self) -> Any:
        return self.address

    def setsockopt(self, *args: Any) -> None:
        """Options change nothing in memory."""

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def fileno(self) -> int:
        if self.closed:
            return -1
        raise io.UnsupportedOperation("an in-memory listening socket has no file descriptor")

    def connect(
        self, endpoint: MemoryEndpoint, address: Any, name: str, done: Callable[[], bool]
    ) -> SchedSocket:
        """A client's connection arrives: the server's end waits in the backlog."""
        if self.closed or self.address is None:
            raise os_error(errno.ECONNREFUSED)
        sock = SchedSocket(
            self._layer,
            self._sched,
            socket.SOCK_STREAM,
            self.address,
            self._layer.new_connection(address),
            peer_name=name,
            peer_done=done,
            family=self.family,
        )
        sock.send_buffer = self._send_buffer  # the handler's writes wait for the client
        sock.max_output = self._max_output
        sock.connect_pair(endpoint)
        self.backlog.append((sock, address))
        return sock

    def accept(self) -> tuple[SchedSocket, Any]:
        task = current_task()
        if task is None:
            if not self.backlog:
                raise os_error(errno.EAGAIN)
            return self.backlog.popleft()
        sched = self._sched
        event = sched.switch(task, "accept")
        if not self.backlog:
            if self._timeout == 0.0:
                event.detail = "-> EAGAIN"
                raise os_error(errno.EAGAIN)
            deadline = None if self._timeout is None else sched.now + self._timeout
            if not sched.block(task, lambda: bool(self.backlog), deadline, "accept"):
                raise timed_out()
        sock, address = self.backlog.popleft()
        if task.event is not None:
            task.event.detail = sock.peer_name
        return sock, address

    def close(self) -> None:
        if self.closed:
            return
        task = current_task()
        if task is not None:
            self._sched.switch(task, "close listening socket")
        self.closed = True
        while self.backlog:  # never accepted: the kernel resets them
            sock, _ = self.backlog.popleft()
            MemoryEndpoint.reset(sock)

    def __enter__(self) -> SchedListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SchedLayer:
    """The socket layer of a scheduled run's server: in-memory sockets whose
    operations are switch points."""

    def __init__(
        self,
        layer: FaultLayer,
        sched: Scheduler,
        network: dict[Any, Any],
        send_buffer: int | None = None,
        max_output: int | None = None,
    ) -> None:
        self.fault_layer = layer
        self.sched = sched
        self.network = network
        self.send_buffer = send_buffer
        self.max_output = max_output
        self.sockets: list[Any] = []

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> Any:
        made: Any
        if type == socket.SOCK_STREAM:
            made = SchedListener(
                self.fault_layer, self.sched, family, self.send_buffer, self.max_output
            )
        else:
            made = _DatagramServerSocket(
                self.fault_layer,
                self.sched,
                socket.SOCK_DGRAM,
                None,
                family=socket.AddressFamily(family),
            )
            made.network = self.network
        self.sockets.append(made)
        return made

    def __repr__(self) -> str:
        return "SchedLayer()"


class _DatagramServerSocket(SchedSocket):
    network: dict[Any, Any]

    def bind(self, address: Any) -> None:
        self._address = address
        self.join(self.network)

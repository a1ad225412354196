"""In-memory sockets, the handler's part: the fault layer's paths over buffers.

:class:`MemorySocket` carries fault decisions out with the very mix-ins a
:class:`~sockshock.FaultySocket` uses (:class:`StreamFaults`,
:class:`DatagramFaults`); only its "kernel" -- :class:`MemoryEndpoint`, the raw
operations -- is a pair of buffers instead of a descriptor. So a handler driven
in memory sees what it would see on a real socket under the same plan, with no
descriptor, no serving loop and no thread. :class:`MemoryLayer` is the fault
layer for it: the same decisions, without what only real sockets need.
"""

from __future__ import annotations

import io
import socket
import threading
from typing import TYPE_CHECKING, Any

from sockshock._memory._buffers import MemoryEndpoint, never
from sockshock._util import HandlerHangs
from sockshock._wire import Connection, DatagramFaults, FaultLayer, StreamFaults

if TYPE_CHECKING:
    from sockshock._faults import FaultPlan
    from sockshock._util import Clock

__all__ = ["MemoryLayer", "MemorySocket", "WantsDescriptor"]

_REINJECTED = object()  # the "address" of a datagram a MemorySocket put back itself
_SPIN_LIMIT = 1000  # fruitless reads in a row after which a handler is spinning


class WantsDescriptor(BaseException):
    """Raised by ``fileno()`` of a socket in ``drive(sockets="auto")`` whose handler
    asks for its descriptor before any read or write: ``drive()`` then runs it on a
    real socket pair. A ``BaseException``, so that a handler's ``except Exception``
    does not swallow it."""


class _NoChannel:
    """Forked children never report to a memory layer: nothing forks."""

    in_child = False

    def collect(self) -> None:
        """Nothing to collect."""

    def close(self) -> None:
        """Nothing to close."""


class MemoryLayer(FaultLayer):
    """The fault layer of in-memory sockets: the same decisions, logging and
    connection numbering as :class:`~sockshock.FaultLayer`'s, without what only
    real sockets need -- no channel from forked children, no registry of live
    layers, and a plain flag for ``shutdown_triggered`` (one thread, virtual time).

    Args:
        plan: the fault plan.
        clock: a virtual clock.
    """

    def __init__(self, plan: FaultPlan, clock: Clock) -> None:  # not FaultLayer's
        self.plan = plan
        self.clock = clock
        self.active = bool(plan.models)
        self._lock = threading.Lock()
        self._init_connections()
        self._channel = _NoChannel()  # type: ignore[assignment]
        self.shutdown_triggered = _Flag()  # type: ignore[assignment]
        self.on_abrupt_shutdown = None
        self._shutdown_fired = False

    def __repr__(self) -> str:
        return f"MemoryLayer({self.plan!r}, clock={self.clock!r})"


class MemorySocket(StreamFaults, DatagramFaults, MemoryEndpoint):
    """An in-memory socket whose data path obeys a :class:`~sockshock.FaultLayer`,
    through the same code as :class:`~sockshock.FaultySocket`'s.

    Args:
        layer: the fault layer; its clock must be virtual (a VirtualClock).
        connection: the layer's record of this connection (stream) or ``None``
            (datagram: each peer gets one as it appears).
    """

    def __init__(
        self, layer: FaultLayer, type: int, address: Any, connection: Connection | None = None
    ) -> None:
        MemoryEndpoint.__init__(self, type, layer.clock, address)
        self._sockshock_layer = layer
        self._sockshock_conn = connection
        if connection is not None:  # it ends when this socket closes
            layer.opened(connection)
        self._sockshock_stream = (
            layer.active and connection is not None and type == socket.SOCK_STREAM
        )
        self._sockshock_datagram = layer.active and type == socket.SOCK_DGRAM
        self._sockshock_closing = _Flag()  # type: ignore[assignment]
        self._sockshock_read_shut = False
        self._sockshock_pending = {}
        self._sockshock_datagram_init()
        #: What the handler passed to ``sendto`` (before faults on the way out).
        self.sent_datagrams: list[bytes] = []
        self.taken = bytearray()  # what the handler's reads took
        self._fruitless = 0  # reads in a row that gave nothing, with the peer finished
        #: ``fileno()`` before any read or write raises :class:`WantsDescriptor`.
        self.auto_descriptor = False
        #: The handler asked for its descriptor in time (``auto_descriptor``).
        self.wanted_descriptor = False
        self._used = False  # a read or a write happened

    def fileno(self) -> int:
        if self._closed:
            return -1
        if self.auto_descriptor and not self._used:
            self.wanted_descriptor = True
            raise WantsDescriptor
        raise io.UnsupportedOperation(
            "an in-memory socket has no file descriptor (select(), poll() and fcntl() "
            "need one): run the handler with drive(..., sockets='real'), on a real "
            "connected socket pair"
        )

    def send(self, data: Any, flags: int = 0) -> int:
        self._used = True
        return StreamFaults.send(self, data, flags)

    # -- a handler that would spin forever ---------------------------------------

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._used = True
        try:
            if self._sockshock_stream or self._sockshock_datagram:
                data = StreamFaults.recv(self, bufsize, flags)
            else:  # no fault applies: the kernel's part alone
                data = self._raw_recv(bufsize, flags)
        except TimeoutError:
            self._timed_out()
            raise
        if data or bufsize <= 0:
            self._fruitless = 0
        else:
            self._spun()
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._used = True
        try:
            if self._sockshock_stream or self._sockshock_datagram:
                n = StreamFaults.recv_into(self, buffer, nbytes, flags)
            else:  # no fault applies: the kernel's part alone
                n = self._raw_recv_into(buffer, nbytes, flags)
        except TimeoutError:
            self._timed_out()
            raise
        if n or not (nbytes or memoryview(buffer).nbytes):
            self._fruitless = 0
        else:
            self._spun()
        return n

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._used = True
        if self._sockshock_stream:
            return StreamFaults.sendall(self, data, flags)
        self._raw_sendall(data, flags)
        return None

    def _timed_out(self) -> None:
        """A timeout counts as fruitless once the peer can never act again."""
        waiter = self.waiter
        if waiter is None or not waiter(self._clock.now(), never):
            self._spun()

    def _spun(self) -> None:
        """Count a read that gave nothing and never will (end of file is final)."""
        self._fruitless += 1
        if self._fruitless > _SPIN_LIMIT:
            raise HandlerHangs(
                f"the handler read {_SPIN_LIMIT} times in a row after its peer "
                "had finished (end of file, a reset or a timeout each time): "
                "on a real socket it would spin forever"
            )

    # Datagrams put back into the queue (duplicates, held ones) go straight in.
    def _sockshock_reinject(self, data: bytes, address: Any) -> None:
        self._sockshock_reinjected.append(address)
        self._queue.append((data, _REINJECTED))

    def _sockshock_was_reinjected(self, address: Any) -> bool:
        return address is _REINJECTED

    def _sockshock_peer_gone(self, events: int) -> bool:
        """A stall without a timeout ends when the peer hangs up: let it act until
        it has (in virtual time)."""
        if not (self._fin or self._done) and self.waiter is not None:
            self.waiter(None, lambda: self._fin or self._done)
        return self._fin or self._done or self._closed

    def sendto(self, data: Any, *args: Any) -> int:
        self.sent_datagrams.append(bytes(data))
        return DatagramFaults.sendto(self, data, *args)

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._sockshock_read_shut = True
            self._sockshock_closing.set()
        MemoryEndpoint.shutdown(self, how)

    def close(self) -> None:
        if not self._closed:  # as FaultySocket's: held datagrams leave first
            self._sockshock_closing.set()
            if self._sockshock_held_out:
                self._sockshock_release_held_out(everything=True)
            if self._sockshock_conn is not None:
                self._sockshock_layer.closed(self._sockshock_conn)
        MemoryEndpoint.close(self)


class _Flag:
    """What the fault paths need of a ``threading.Event`` (a MemorySocket is used
    by one thread, and waits are virtual): set by ``shutdown(SHUT_RD)`` and
    ``close()``."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True

    def wait(self, timeout: float | None = None) -> bool:
        return self._set

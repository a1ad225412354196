"""FaultySocket: a ``socket.socket`` whose data path obeys a FaultLayer.

A FaultySocket *is* a ``socket.socket`` (a subclass sharing the same file
descriptor), so ``isinstance`` checks, selectors, ``makefile()``, ``settimeout()``
and the standard library's handlers keep working. It adds the stream path
(:class:`~sockshock._wire._stream.StreamFaults`) and the datagram path
(:class:`~sockshock._wire._datagram.DatagramFaults`) over the kernel's own
operations, numbers accepted connections through its layer, and carries
``AcceptErrors`` out. Never a sockshock exception on the data path; a closed
FaultySocket fails like a closed socket (``OSError(EBADF)``).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from sockshock._faults import ACCEPT, ERROR, Decision
from sockshock._wire._common import Connection, LayerView, os_error
from sockshock._wire._datagram import DatagramFaults
from sockshock._wire._stream import StreamFaults

__all__ = ["Connection", "FaultySocket"]


class FaultySocket(StreamFaults, DatagramFaults, socket.socket):
    """A ``socket.socket`` whose data path obeys a :class:`~sockshock.layer.FaultLayer`."""

    # The kernel's operations, for the fault paths.
    _raw_recv = socket.socket.recv
    _raw_recv_into = socket.socket.recv_into
    _raw_send = socket.socket.send
    _raw_recvfrom = socket.socket.recvfrom
    _raw_recvfrom_into = socket.socket.recvfrom_into
    _raw_sendto = socket.socket.sendto  # type: ignore[assignment]

    def _sockshock_attach(self, layer: LayerView, connection: Connection | None) -> None:
        self._sockshock_layer = layer
        self._sockshock_conn = connection
        self._sockshock_open = connection is not None  # counted in connection.users
        if connection is not None:
            layer.opened(connection)
        kind = self.type  # a property that builds an enum: read it once
        # The data-path overrides test these two flags first: a layer whose plan
        # is empty costs one attribute check per call.
        self._sockshock_stream = (
            layer.active and connection is not None and kind == socket.SOCK_STREAM
        )
        self._sockshock_datagram = layer.active and kind == socket.SOCK_DGRAM
        self._sockshock_closing = threading.Event()
        self._sockshock_read_shut = False
        self._sockshock_pending: dict[str, tuple[Decision, float]] = {}
        self._sockshock_datagram_init()

    def accept(self) -> tuple[socket.socket, Any]:
        layer = self._sockshock_layer
        decision = layer.ask(ACCEPT, None)
        if decision.action == ERROR and decision.errno:
            raise os_error(decision.errno)
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = FaultySocket(self.family, self.type, self.proto, fileno=fd)
        conn._sockshock_attach(layer, layer.new_connection(address))
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        return conn, address

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._sockshock_read_shut = True
            self._sockshock_closing.set()
        super().shutdown(how)

    def _sockshock_cleanup(self) -> None:
        closing = getattr(self, "_sockshock_closing", None)
        if closing is None:  # never attached
            return
        closing.set()
        self._sockshock_datagram_cleanup()
        if self._sockshock_open:  # once per socket: the last one ends the connection
            self._sockshock_open = False
            self._sockshock_layer.closed(self._sockshock_conn)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.fileno() != -1:
            self._sockshock_cleanup()
        super().close()

    def dup(self) -> FaultySocket:
        duplicate = super().dup()
        assert isinstance(duplicate, FaultySocket)
        duplicate._sockshock_attach(self._sockshock_layer, self._sockshock_conn)
        return duplicate

    def detach(self) -> int:
        self._sockshock_cleanup()
        return super().detach()

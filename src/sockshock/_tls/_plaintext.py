"""Faults above TLS: the plaintext a handler reads and writes through a TLSSocket.

:class:`PlaintextFaults` is the :class:`~sockshock._tls._socket.PlaintextHook`
that asks a FaultLayer about each plaintext read and write (models with
``layer="plaintext"``) and carries the decision out as a real ``SSLSocket`` would
show it: short reads and writes, end of file, ``ConnectionResetError``,
``TimeoutError`` when a delay or a stall outlasts the socket's timeout.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sockshock._faults import EOF, RECV, RESET, SEND, STALL
from sockshock._wire import Connection, os_error

if TYPE_CHECKING:
    from sockshock._wire import FaultLayer

__all__ = ["PlaintextFaults"]


class PlaintextFaults:
    """The plaintext hook of one TLS connection.

    Args:
        layer: the FaultLayer whose plan decides.
        connection: the plaintext record of the connection
            (:meth:`FaultLayer.plaintext_connection`).
        timeout: returns the TLS socket's timeout now (for delays and stalls).
        closing: set when the connection is being shut down or closed (a stall
            without a timeout waits for it).
    """

    def __init__(
        self,
        layer: FaultLayer,
        connection: Connection,
        timeout: Callable[[], float | None],
        closing: threading.Event | None = None,
    ) -> None:
        self._layer = layer
        self._conn = connection
        self._timeout = timeout
        self._closing = closing or threading.Event()
        self._reset = False

    def _wait(self, seconds: float | None) -> bool:
        """Wait out a delay (``None``: a stall) as the socket's timeout allows; True
        if the connection was shut down meanwhile."""
        timeout = self._timeout()
        if timeout == 0.0:
            raise os_error(errno.EAGAIN)
        if seconds is None and timeout is None:
            self._closing.wait()  # real time: only a shutdown or close ends it
            return True
        if seconds is None or (timeout is not None and seconds > timeout):
            if not self._layer.clock.sleep(timeout, self._closing):  # type: ignore[arg-type]
                raise TimeoutError("The read operation timed out")  # as SSLSocket says
            return True
        return self._layer.clock.sleep(seconds, self._closing)

    def before_read(self, size: int) -> int | None:
        if self._reset:
            return 0
        decision = self._layer.ask(RECV, self._conn, size)
        if decision.delay:
            self._wait(decision.delay)
        if decision.action == RESET:
            self._reset = True
            raise os_error(errno.ECONNRESET)
        if decision.action == EOF:
            return 0
        if decision.action == STALL and self._wait(None):
            return 0  # shut down while stalled: end of file
        return decision.limit

    def after_read(self, count: int) -> None:
        self._conn.offset["in"] += count

    def before_write(self, size: int) -> int | None:
        if self._reset:
            raise os_error(errno.EPIPE)
        decision = self._layer.ask(SEND, self._conn, size)
        if decision.delay:
            self._wait(decision.delay)
        if decision.action == RESET:
            self._reset = True
            raise os_error(errno.ECONNRESET)
        return decision.limit

    def after_write(self, count: int) -> None:
        self._conn.offset["out"] += count

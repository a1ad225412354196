"""The stream data path: reads and writes under fault decisions.

:class:`StreamFaults` is a mix-in for a socket-like class that provides the raw
operations (``_raw_recv``, ``_raw_recv_into``, ``_raw_send``: the kernel's for a
:class:`~sockshock.FaultySocket`) and ``gettimeout()``. It makes the handler see
exactly what the operating system would show: short counts, ``b""`` for end of
file, ``ConnectionResetError`` then ``BrokenPipeError``, ``TimeoutError("timed
out")`` when a delay outlasts the socket's timeout (for ``sendall``, the timeout
bounds the whole call, as in CPython), ``BlockingIOError`` on non-blocking sockets.
"""

from __future__ import annotations

import errno
import select
import threading
import time
from typing import TYPE_CHECKING, Any

from sockshock._faults import EOF, RECV, RESET, SEND, STALL, Decision
from sockshock._util import RealClock
from sockshock._wire._common import (
    PEEK,
    Connection,
    LayerView,
    effective_timeout,
    os_error,
    timed_out,
)

__all__ = ["StreamFaults"]

# What ends a wait early: a reset (or full hang-up) ends any delay; the peer closing
# its side ends a stall too (a silent peer that then closes is seen as end of file),
# but not a delay: a slow client's bytes arrive before its end of file does.
_RESET = select.POLLHUP | select.POLLERR
_CLOSED = _RESET | getattr(select, "POLLRDHUP", 0)
_WAIT_SLICE = 0.05  # seconds between looks at the real peer during a long wait


class StreamFaults:
    """Reads and writes of a connected stream socket that obey a FaultLayer."""

    _sockshock_layer: LayerView
    _sockshock_conn: Connection | None
    _sockshock_stream: bool  # faults apply to this socket's stream path
    _sockshock_datagram: bool
    _sockshock_closing: threading.Event  # set by shutdown(SHUT_RD*) and close()
    _sockshock_read_shut: bool
    _sockshock_pending: dict[str, tuple[Decision, float]]

    if TYPE_CHECKING:

        def _raw_recv(self, bufsize: int, flags: int = 0, /) -> bytes: ...
        def _raw_recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int: ...
        def _raw_send(self, data: Any, flags: int = 0, /) -> int: ...
        def gettimeout(self) -> float | None: ...
        def fileno(self) -> int: ...
        def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]: ...
        def recvfrom_into(
            self, buffer: Any, nbytes: int = 0, flags: int = 0
        ) -> tuple[int, Any]: ...
        def _sendfile_use_send(self, file: Any, offset: int, count: int | None) -> int: ...

        _closed: bool

    # -- waiting -----------------------------------------------------------------

    def _sockshock_peer_gone(self, events: int) -> bool:
        """Whether the real peer reset the connection (``events`` also: closed it)."""
        fd = self.fileno()
        if fd < 0:
            return True
        poller = select.poll()
        poller.register(fd, events)
        return bool(poller.poll(0))

    def _sockshock_wait(self, seconds: float | None, events: int = _RESET) -> bool:
        """Let ``seconds`` pass on the layer's clock (``None``: until woken); True if
        cut short because the socket is being shut down or the real peer went away
        (``events``, see above)."""
        closing = self._sockshock_closing
        clock = self._sockshock_layer.clock
        if seconds is not None and not isinstance(clock, RealClock):
            return clock.sleep(seconds, closing)  # virtual time: no real wait
        end = None if seconds is None else time.monotonic() + seconds
        while True:
            if closing.is_set() or self._sockshock_peer_gone(events):
                return True
            step = _WAIT_SLICE if end is None else min(_WAIT_SLICE, end - time.monotonic())
            if step <= 0:
                return False
            if closing.wait(step):
                return True

    def _sockshock_delay(self, kind: str, decision: Decision, timeout: float | None) -> Decision:
        """Wait out ``decision.delay`` as the OS would show it against ``timeout``;
        return the decision to apply (for a non-blocking socket, one deferred from
        an earlier call)."""
        if decision.delay <= 0:
            return decision
        if timeout == 0.0:  # non-blocking: the data is not there yet
            ready_at = self._sockshock_layer.clock.now() + decision.delay
            self._sockshock_pending[kind] = (decision, ready_at)
            raise os_error(errno.EAGAIN)
        if timeout is not None and decision.delay > timeout:
            if not self._sockshock_wait(timeout):
                raise timed_out()
            return decision
        self._sockshock_wait(decision.delay)
        return decision

    def _sockshock_decide(self, kind: str, size: int, timeout: float | None) -> Decision:
        pending = self._sockshock_pending.pop(kind, None)
        if pending is not None:
            decision, ready_at = pending
            clock = self._sockshock_layer.clock
            early = ready_at - clock.now()
            if early > 0 and timeout == 0.0:
                if isinstance(clock, RealClock):  # not there yet: EAGAIN again
                    self._sockshock_pending[kind] = pending
                    raise os_error(errno.EAGAIN)
                # Virtual time passes only when someone waits: the poll or select
                # that woke this retry would have waited until the data came.
                clock.sleep(early)
            return Decision(limit=decision.limit, action=decision.action, errno=decision.errno)
        decision = self._sockshock_layer.ask(kind, self._sockshock_conn, size)
        return self._sockshock_delay(kind, decision, timeout)

    def _sockshock_stall(self, close_after: float | None, flags: int = 0) -> None:
        """The peer is silent: block until the timeout, a shutdown, a close, the
        real peer hanging up, or ``close_after`` (``Stall(timeout=...)``: the
        connection is closed) -- all but the timeout end in end of file. A
        non-blocking read (``O_NONBLOCK``, ``MSG_DONTWAIT``) gets EAGAIN."""
        timeout = effective_timeout(self, flags)
        if timeout == 0.0:
            raise os_error(errno.EAGAIN)
        closes = close_after is not None and (timeout is None or close_after <= timeout)
        wait = close_after if closes else timeout
        if not self._sockshock_wait(wait, _CLOSED) and timeout is not None and not closes:
            raise timed_out()

    # -- reads -----------------------------------------------------------------------

    def _sockshock_read_limit(self, size: int, flags: int = 0) -> int | None:
        """Decide a read; return how many bytes to read, or None for end of file."""
        conn = self._sockshock_conn
        assert conn is not None
        if conn.reset:
            if not conn.reset_read_reported:
                conn.reset_read_reported = True
                raise os_error(errno.ECONNRESET)
            return None
        if conn.eof or self._sockshock_read_shut:
            return None
        decision = self._sockshock_decide(RECV, size, effective_timeout(self, flags))
        action = decision.action
        if action == RESET:
            conn.reset = conn.reset_read_reported = True
            raise os_error(errno.ECONNRESET)
        if action == EOF:
            conn.eof = True
            return None
        if action == STALL:
            self._sockshock_stall(decision.close_after, flags)
            return None  # woken by a shutdown, a close or the peer: end of file
        return size if decision.limit is None else max(1, min(size, decision.limit))

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if not self._sockshock_stream or flags & PEEK or bufsize <= 0 or self._closed:
            if self._sockshock_datagram:
                return self.recvfrom(bufsize, flags)[0]
            return self._raw_recv(bufsize, flags)
        limit = self._sockshock_read_limit(bufsize, flags)
        if limit is None:
            return b""
        data = self._raw_recv(limit, flags)
        self._sockshock_conn.offset["in"] += len(data)  # type: ignore[union-attr]
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if not self._sockshock_stream or flags & PEEK or self._closed:
            if self._sockshock_datagram:
                return self.recvfrom_into(buffer, nbytes, flags)[0]
            return self._raw_recv_into(buffer, nbytes, flags)
        size = nbytes or memoryview(buffer).nbytes
        if size <= 0:
            return self._raw_recv_into(buffer, nbytes, flags)
        limit = self._sockshock_read_limit(size, flags)
        if limit is None:
            return 0
        n = self._raw_recv_into(buffer, limit, flags)
        self._sockshock_conn.offset["in"] += n  # type: ignore[union-attr]
        return n

    # -- writes ------------------------------------------------------------------------

    def _sockshock_send(self, data: Any, flags: int, timeout: float | None) -> int:
        conn = self._sockshock_conn
        assert conn is not None
        if conn.reset:
            if not conn.reset_write_reported and not conn.reset_read_reported:
                conn.reset_write_reported = True
                raise os_error(errno.ECONNRESET)
            raise os_error(errno.EPIPE)
        view = memoryview(data).cast("B")
        if not view.nbytes:
            return self._raw_send(view, flags)
        decision = self._sockshock_decide(SEND, view.nbytes, timeout)
        if decision.action == RESET:
            conn.reset = conn.reset_write_reported = True
            raise os_error(errno.ECONNRESET)
        if decision.limit is not None:
            view = view[: max(1, decision.limit)]
        n = self._raw_send(view, flags)
        conn.offset["out"] += n
        return n

    def send(self, data: Any, flags: int = 0) -> int:
        if not self._sockshock_stream or self._closed:
            return self._raw_send(data, flags)
        return self._sockshock_send(data, flags, self.gettimeout())

    def sendall(self, data: Any, flags: int = 0) -> None:
        if not self._sockshock_stream or self._closed:
            return super().sendall(data, flags)  # type: ignore[misc,no-any-return]
        view = memoryview(data).cast("B")
        timeout = self.gettimeout()
        clock = self._sockshock_layer.clock
        deadline = None if not timeout else clock.now() + timeout
        sent = 0
        if timeout == 0.0:  # non-blocking: as much as goes now, then EAGAIN
            while sent < view.nbytes:
                sent += self._sockshock_send(view[sent:], flags, 0.0)
            return None
        while sent < view.nbytes:
            # As CPython's: the timeout bounds the whole call, not each send.
            remaining = timeout if deadline is None else deadline - clock.now()
            if remaining is not None and remaining <= 0:
                raise timed_out()
            sent += self._sockshock_send(view[sent:], flags, remaining)
        return None

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        # os.sendfile() would bypass the faults: go through send().
        return self._sendfile_use_send(file, offset, count)

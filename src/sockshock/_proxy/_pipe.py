"""One direction of a proxied stream connection: the fault proxy's per-direction pump.

A pipe reads what its source sends, asks the plan about it -- one forwarding step
is one operation of the fault layer's vocabulary (``recv`` for the client's bytes,
``send`` for the server's) -- and writes what the decision lets through. A
direction no model looks at moves through a kernel pipe with splice(2): its bytes
never enter Python. Everything runs on the proxy's one I/O thread; a pipe only asks
its connection (:class:`Ends`) and, through it, the proxy (:class:`Hub`) to decide,
set timers, close or re-register.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import itertools
import os
import socket
from typing import Any, Protocol

from sockshock._faults import EOF, NOTHING, RECV, RESET, SHUTDOWN, STALL
from sockshock._proxy._loop import Hub

__all__ = ["BUFFER", "Ends", "Pipe"]

#: Bytes one direction of a stream connection holds before the proxy stops reading
#: its source (one read more at most).
BUFFER = 1024 * 1024

_IOV = 64  # buffers per sendmsg()
# Directions that no model looks at move through a kernel pipe with splice(2): the
# bytes never enter Python (Linux; elsewhere, or if splice fails, recv_into/send).
_SPLICE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_NO_SPLICE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM}


class Ends(Protocol):
    """What a pipe needs from the connection it is one direction of."""

    proxy: Hub
    index: int
    address: Any
    closed: bool
    connected: bool

    def close(self, *, reset: bool) -> None:
        """Close both sockets (``reset``: with a TCP RST)."""
        ...

    def update(self) -> None:
        """Poll for what the pipes need now; close once both are finished."""
        ...


_OPEN, _STALLED, _SHUT = 0, 1, 2


class Pipe:
    """One direction of a proxied stream connection: what was read from ``src`` and
    not yet decided (``queue``), what was decided and not yet written to ``dst``
    (``out``)."""

    __slots__ = (
        "blocked",
        "concerned",
        "conn",
        "count",
        "dst",
        "dst_fd",
        "eof_asked",
        "fin_next",
        "inpipe",
        "kind",
        "offset",
        "out",
        "outlen",
        "pipe",
        "pipe_size",
        "queue",
        "queued",
        "splice",
        "src",
        "src_eof",
        "src_fd",
        "state",
        "waiting",
    )

    def __init__(
        self, conn: Ends, kind: str, src: socket.socket, dst: socket.socket, concerned: bool
    ) -> None:
        self.conn = conn
        self.kind = kind
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        self.dst_fd = dst.fileno()
        self.concerned = concerned  # whether any model looks at this kind at all
        # Nothing to decide: the bytes can go through a kernel pipe (made on first use).
        self.splice = _SPLICE and not concerned
        self.pipe: tuple[int, int] | None = None
        self.pipe_size = BUFFER
        self.inpipe = 0  # bytes in the kernel pipe
        self.queue: collections.deque[bytes | memoryview] = collections.deque()
        self.queued = 0
        self.out: collections.deque[bytes | memoryview] = collections.deque()
        self.outlen = 0
        self.offset = 0  # bytes decided (the layer's offset in this direction)
        self.count = 0  # operations so far (the layer's index)
        self.state = _OPEN
        self.src_eof = False
        self.eof_asked = False
        self.fin_next = False  # an end of file follows the bytes in ``out``
        self.waiting = False  # a delay is running
        self.blocked = False  # ``dst`` was full: wait until it is writable

    @property
    def wants_read(self) -> bool:
        if self.splice:
            return not self.src_eof and self.inpipe < self.pipe_size
        return not self.src_eof and self.queued + self.outlen < BUFFER

    @property
    def finished(self) -> bool:
        """Nothing more will ever move this way (and nothing is left to write)."""
        return (
            self.src_eof
            and self.state != _OPEN
            and not self.fin_next
            and not self.outlen
            and not self.inpipe
        )

    def read(self) -> None:
        if self.splice:
            self._splice_read()
            return
        scratch = self.conn.proxy._loop.scratch
        try:
            n = self.src.recv_into(scratch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the peer reset: so does the proxy, towards the other side
            self.conn.close(reset=True)
            return
        if not n:
            self.src_eof = True
        elif self.state != _SHUT:  # after an injected end of file: discarded
            self.queue.append(bytes(scratch[:n]))
            self.queued += n
        self.pump()

    def _splice_read(self) -> None:
        if self.pipe is None and not self._open_pipe():
            self.read()
            return
        assert self.pipe is not None
        try:
            n = os.splice(
                self.src_fd, self.pipe[1], self.pipe_size - self.inpipe, flags=_SPLICE_FLAGS
            )
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in _NO_SPLICE and not self.inpipe:  # this kernel cannot: copy
                self.close_pipe()
                self.splice = False
                self.read()
            else:
                self.conn.close(reset=True)
            return
        if not n:
            self.src_eof = True
        else:
            self.inpipe += n
        self.pump()

    def _open_pipe(self) -> bool:
        try:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # out of descriptors: copy instead
            self.splice = False
            return False
        self.pipe = (r, w)
        try:
            self.pipe_size = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, BUFFER)
        except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default size
            self.pipe_size = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        return True

    def close_pipe(self) -> None:
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None

    def writable(self) -> None:
        self.blocked = False
        self.pump()

    def resume(self) -> None:
        """A delay ran out."""
        if self.conn.closed:
            return
        self.waiting = False
        self.pump()
        self.conn.update()

    def pump(self) -> None:
        """Move data on as far as decisions, delays and the destination allow."""
        conn = self.conn
        while not conn.closed:
            if self.waiting or self.blocked or not conn.connected:
                return
            if self.inpipe:
                if not self._splice_write():
                    return
            elif self.outlen:
                if not self._flush():
                    return
            elif self.fin_next:
                self.fin_next = False
                self.state = _SHUT
                try:
                    self.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    conn.close(reset=True)
                return
            elif self.state != _OPEN:
                return
            elif self.queued:
                self._decide(self.queued)
            elif self.src_eof and not self.eof_asked:
                self.eof_asked = True
                if self.kind == RECV:
                    self._decide(0)  # the server's recv() that returns b""
                else:
                    self.fin_next = True
            else:
                return

    def _decide(self, size: int) -> None:
        conn = self.conn
        decision = NOTHING
        if self.concerned:
            decision = conn.proxy._ask(
                self.kind, conn.index, conn.address, size, self.offset, self.count
            )
        self.count += 1
        action = decision.action
        if action in (RESET, SHUTDOWN):
            if decision.delay > 0:  # as in the layer: the wait first, then the blow
                self.waiting = True
                conn.proxy._loop.call_later(decision.delay, lambda: self._carry_out(action))
            else:
                self._carry_out(action)
            return
        if action == STALL:
            self.state = _STALLED
            return
        if action == EOF:
            self.queue.clear()
            self.queued = 0
            self.state = _SHUT
            self.fin_next = True
        elif size == 0:
            self.fin_next = True
        else:
            take = size if decision.limit is None else max(1, min(size, decision.limit))
            self._move(take)
            self.offset += take
        if decision.delay > 0:
            self.waiting = True
            conn.proxy._loop.call_later(decision.delay, self.resume)

    def _carry_out(self, action: str) -> None:
        if self.conn.closed:
            return
        if action == SHUTDOWN:
            self.conn.proxy._abrupt_shutdown()
        else:
            self.conn.close(reset=True)

    def _move(self, n: int) -> None:
        if n == self.queued:
            self.out.extend(self.queue)
            self.queue.clear()
        else:
            remaining = n
            while remaining:
                chunk = self.queue[0]
                if len(chunk) <= remaining:
                    self.out.append(self.queue.popleft())
                    remaining -= len(chunk)
                else:
                    view = memoryview(chunk)
                    self.out.append(view[:remaining])
                    self.queue[0] = view[remaining:]
                    remaining = 0
        self.queued -= n
        self.outlen += n

    def _splice_write(self) -> bool:
        """Move the pipe's bytes on; True if all of them went out."""
        assert self.pipe is not None
        try:
            sent = os.splice(self.pipe[0], self.dst_fd, self.inpipe, flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            self.blocked = True
            return False
        except OSError:
            self.conn.close(reset=True)
            return False
        self.inpipe -= sent
        if self.inpipe:
            self.blocked = True
            return False
        return True

    def _flush(self) -> bool:
        """Write what was decided; True if all of it went out."""
        out = self.out
        try:
            if len(out) == 1:
                offered = len(out[0])
                sent = self.dst.send(out[0])
            else:
                batch = list(itertools.islice(out, _IOV))
                offered = sum(len(chunk) for chunk in batch)
                sent = self.dst.sendmsg(batch)
        except (BlockingIOError, InterruptedError):
            self.blocked = True
            return False
        except OSError:  # the destination is gone or reset: reset the other side
            self.conn.close(reset=True)
            return False
        self.outlen -= sent
        short = sent < offered  # the destination's buffer is full: wait until writable
        while sent:
            chunk = out[0]
            if len(chunk) <= sent:
                out.popleft()
                sent -= len(chunk)
            else:
                out[0] = memoryview(chunk)[sent:]
                sent = 0
        if short:
            self.blocked = True
            return False
        return True

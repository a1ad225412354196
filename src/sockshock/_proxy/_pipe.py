"""One direction of a proxied stream connection: the fault proxy's per-direction pump.

A pipe reads what its source sends, asks the plan about it -- one forwarding step
is one operation of the fault layer's vocabulary (``recv`` for the client's bytes,
``send`` for the server's), one step per chunk read, as toxiproxy's links take one
chunk at a time -- and writes what the decision lets through. Everything runs on
the proxy's one I/O thread; a pipe only asks its connection (:class:`Ends`) and,
through it, the proxy (:class:`Hub`) to decide, set timers, close or re-register.

Timing (toxiproxy's): a decision that moves the whole chunk (``Latency``) delays
it from its *arrival* -- chunks that came 20 ms apart leave 20 ms apart, each
``delay`` late, and never before the chunk ahead of them; a decision that limits
what moves (``PartialReads``, ``SlowClient``, ``Bandwidth``) paces: the rest is
decided when the part before it has gone.

A direction no model looks at is spliced through the loop's kernel pipe
(:attr:`~sockshock._proxy._loop.Loop.pipe`): its bytes never enter Python. When
the destination is full, what it could not take moves (still in the kernel) to a
pipe of the direction's own, which also takes what the source sends meanwhile,
up to its size, and is closed once drained: an idle or keeping-up connection
costs two descriptors, one whose reader lags four for as long as it lags. A stalled
direction discards what it reads (the sender is not held back, as toxiproxy's
``timeout`` drops data); it ends when its sender closes: the receiver gets end of
file, as the in-process layer's stall ends when the real peer closes.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import itertools
import os
import socket
import time
from typing import Any, Protocol

from sockshock._faults import EOF, NOTHING, RESET, SHUTDOWN, STALL, Decision
from sockshock._proxy._loop import SPLICE, Hub

__all__ = ["BUFFER", "Ends", "Pipe"]

#: Bytes one direction of a stream connection holds before the proxy stops reading
#: its source (one read more at most). Under latency it bounds the bytes in
#: flight: a bulk transfer delayed by L moves at most BUFFER / L bytes a second.
BUFFER = 4 * 1024 * 1024

_IOV = 64  # buffers per sendmsg()
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


def _drain(fd: int, n: int) -> bytes:
    """Take ``n`` bytes back out of the kernel pipe (they are all there)."""
    first = os.read(fd, n)
    if len(first) == n:
        return first
    parts = [first]
    n -= len(first)
    while n:
        chunk = os.read(fd, n)
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class Pipe:
    """One direction of a proxied stream connection: what was read from ``src`` and
    not yet decided (``queue``: ``[arrival, bytes]`` per read), what was decided and
    not yet written to ``dst`` (``out``)."""

    __slots__ = (
        "asks_close",
        "blocked",
        "concerned",
        "conn",
        "count",
        "delaying",
        "dst",
        "dst_fd",
        "eof_asked",
        "eof_at",
        "fin_next",
        "generation",
        "inpipe",
        "kind",
        "loop",
        "offset",
        "out",
        "outlen",
        "own",
        "own_size",
        "queue",
        "queued",
        "released",
        "splice",
        "src",
        "src_eof",
        "src_fd",
        "state",
        "waiting",
    )

    def __init__(
        self,
        conn: Ends,
        kind: str,
        src: socket.socket,
        dst: socket.socket,
        concerned: bool,
        asks_close: bool,
    ) -> None:
        self.conn = conn
        self.kind = kind
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        self.dst_fd = dst.fileno()
        self.loop = conn.proxy._loop
        self.concerned = concerned  # whether any model looks at this kind at all
        self.asks_close = asks_close  # whether the source's end of file is an operation
        # Nothing to decide: the bytes go through the loop's kernel pipe.
        self.splice = SPLICE and not concerned and self.loop.pipe is not None
        self.queue: collections.deque[list[Any]] = collections.deque()
        self.queued = 0
        self.out: collections.deque[bytes | memoryview] = collections.deque()
        self.outlen = 0
        self.offset = 0  # bytes decided (the layer's offset in this direction)
        self.count = 0  # operations so far (the layer's index)
        self.state = _OPEN
        self.src_eof = False
        self.eof_at = 0.0
        self.eof_asked = False
        self.fin_next = False  # an end of file follows the bytes in ``out``
        self.waiting = False  # a delay is running
        self.delaying = False  # ... and it is a decision's delay, not a delayed reset
        self.blocked = False  # ``dst`` was full: wait until it is writable
        self.released = 0.0  # when the last decided step may leave
        self.generation = 0  # the plan's: a stall's timer outlives no plan change
        self.own: tuple[int, int] | None = None  # this direction's pipe, while it lags
        self.own_size = 0
        self.inpipe = 0  # bytes in it (they go before ``out``)

    @property
    def wants_read(self) -> bool:
        if self.src_eof:
            return False
        if self.state != _OPEN:
            return True  # discarded
        if self.own is not None and self.splice and not (self.queued or self.outlen):
            return self.inpipe < self.own_size  # read ahead, in the kernel
        return self.queued + self.outlen + self.inpipe < BUFFER

    @property
    def plain(self) -> bool:
        """Whether this direction has nothing held back (the connection's fast path:
        what arrives is decided -- or, with no model concerned, spliced -- and
        written at once)."""
        return self.state == _OPEN and not (
            self.src_eof
            or self.outlen
            or self.queued
            or self.blocked
            or self.waiting
            or self.inpipe
        )

    @property
    def finished(self) -> bool:
        """Nothing more will ever move this way (and nothing is left to write)."""
        return (
            self.src_eof
            and self.state == _SHUT
            and not self.fin_next
            and not self.outlen
            and not self.inpipe
            and not self.waiting
        )

    def replan(self, concerned: bool, asks_close: bool) -> None:
        """A new plan took over: it decides from here on, counting afresh. What the
        old plan held back goes on at once, as a toxiproxy toxic that is removed
        lets what it holds go (latency: "don't drop any data on the floor"): a delay
        ends now (the data and end of file it held are written; what follows is the
        new plan's), a stall ends (what arrived meanwhile was discarded). A reset
        the old plan scheduled still comes: toxiproxy's ``reset_peer`` cannot be
        interrupted either."""
        self.generation += 1
        self.concerned = concerned
        self.asks_close = asks_close
        self.splice = SPLICE and not concerned and self.loop.pipe is not None
        self.offset = 0
        self.count = 0
        if self.state == _STALLED:
            self.state = _OPEN
        if self.delaying:  # its timer finds the generation moved on and does nothing
            self.delaying = self.waiting = False
        self.released = 0.0
        self.pump()

    # -- reading ------------------------------------------------------------------------

    def forward(self) -> bool:
        """The fast path of a plain direction: move what is there on to the
        destination at once. True if nothing else needs doing (no re-registration)."""
        if not self.splice:
            return self._forward_decided()
        pipe = self.loop.pipe
        if pipe is None:
            self.splice = False
            return self._forward_decided()
        try:
            n = os.splice(self.src_fd, pipe[1], self.loop.pipe_size, flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            if exc.errno in _NO_SPLICE:  # this kernel cannot: copy from now on
                self.splice = False
                self.read()
                return False
            self.conn.close(reset=True)  # the peer reset: so does the proxy
            return True
        if not n:
            self.src_eof = True
            self.eof_at = time.monotonic()
            self.pump()
            return False
        try:
            sent = os.splice(pipe[0], self.dst_fd, n, flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the destination is gone or reset: reset the other side
            _drain(pipe[0], n)
            self.conn.close(reset=True)
            return True
        if sent == n:
            return True
        self._hold(pipe[0], n - sent)
        self.blocked = True
        return False

    def _hold(self, shared: int, n: int) -> None:
        """The destination is full: the ``n`` bytes left in the shared pipe move to
        this direction's own pipe (made now), or, failing that, into memory."""
        if self.own is None:
            self._open_own()
        if self.own is not None:
            try:
                moved = os.splice(shared, self.own[1], n, flags=_SPLICE_FLAGS)
            except OSError:
                moved = 0
            self.inpipe += moved
            n -= moved
        if n:
            rest = _drain(shared, n)
            self.out.append(rest)
            self.outlen += len(rest)

    def _open_own(self) -> None:
        try:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # out of descriptors: memory instead
            return
        self.own = (r, w)
        try:
            self.own_size = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, self.loop.pipe_size)
        except OSError:
            self.own_size = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)

    def close_own(self) -> None:
        """Close this direction's own pipe (drained, or the connection closed)."""
        if self.own is not None:
            for fd in self.own:
                os.close(fd)
            self.own = None
            self.inpipe = 0

    def _splice_own(self) -> bool:
        """Write what this direction's own pipe holds; True if all of it went out
        (the pipe is then closed)."""
        assert self.own is not None
        try:
            sent = os.splice(self.own[0], self.dst_fd, self.inpipe, flags=_SPLICE_FLAGS)
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
        self.close_own()
        return True

    def _forward_decided(self) -> bool:
        """The fast path of a direction a model looks at: read a chunk, decide it,
        and when the decision lets it pass untouched write it from the scratch
        buffer (no copy, no queue); anything else goes the slow way."""
        scratch = self.loop.scratch
        try:
            n = self.src.recv_into(scratch)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:  # the peer reset: so does the proxy, towards the other side
            self.conn.close(reset=True)
            return True
        now = time.monotonic()
        if not n:
            self.src_eof = True
            self.eof_at = now
            self.pump()
            return False
        decision = NOTHING
        conn = self.conn
        if self.concerned:
            decision = conn.proxy._ask(
                self.kind, conn.index, conn.address, n, self.offset, self.count, now
            )
        if decision is not NOTHING:
            self.queue.append([now, bytes(scratch[:n])])
            self.queued += n
            self._decide(decision, now)
            self.pump()
            return False
        self.count += 1
        self.offset += n
        try:
            sent = self.dst.send(scratch[:n])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the destination is gone or reset: reset the other side
            conn.close(reset=True)
            return True
        if sent == n:
            return True
        self.out.append(bytes(scratch[sent:n]))
        self.outlen += n - sent
        self.blocked = True
        return False

    def read(self) -> None:
        if self.conn.connected and self.plain:
            self.forward()
            return
        if (
            self.own is not None
            and self.splice
            and self.state == _OPEN
            and not (self.queued or self.outlen)
        ):
            self._read_ahead()
            return
        scratch = self.loop.scratch
        try:
            n = self.src.recv_into(scratch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the peer reset: so does the proxy, towards the other side
            self.conn.close(reset=True)
            return
        if not n:
            self.src_eof = True
            self.eof_at = time.monotonic()
        elif self.state == _OPEN:
            self.queue.append([time.monotonic(), bytes(scratch[:n])])
            self.queued += n
        # (stalled, or after an injected end of file: discarded)
        self.pump()

    def _read_ahead(self) -> None:
        """The destination lags: splice what the source sends into this direction's
        own pipe, behind what waits there."""
        assert self.own is not None
        try:
            n = os.splice(
                self.src_fd, self.own[1], self.own_size - self.inpipe, flags=_SPLICE_FLAGS
            )
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.conn.close(reset=True)
            return
        if not n:
            self.src_eof = True
            self.eof_at = time.monotonic()
        else:
            self.inpipe += n
        self.pump()

    # -- moving on ------------------------------------------------------------------------

    def writable(self) -> None:
        self.blocked = False
        self.pump()

    def resume(self, generation: int) -> None:
        """A decision's delay ran out (unless a new plan ended it already)."""
        if self.conn.closed or generation != self.generation:
            return
        self.waiting = self.delaying = False
        self.pump()
        self.conn.update()

    def pump(self) -> None:
        """Move data on as far as decisions, delays and the destination allow."""
        conn = self.conn
        while not conn.closed:
            if self.waiting or self.blocked or not conn.connected:
                return
            if self.inpipe:
                if not self._splice_own():
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
            elif self.state == _STALLED:
                if not self.src_eof:
                    return
                self.fin_next = True  # its sender closed: the stall ends in end of file
            elif self.state == _SHUT:
                return
            elif self.queued:
                self._decide()
            elif self.src_eof and not self.eof_asked:
                self.eof_asked = True
                if self.concerned and self.asks_close:
                    self._decide()  # the receiver's recv() that returns b""
                else:
                    self.fin_next = True
            else:
                return

    def _decide(self, decision: Decision | None = None, now: float = 0.0) -> None:
        """Decide the chunk at the head of the queue (or, with none, the end of file);
        ``decision``: already asked for, at ``now``."""
        conn = self.conn
        head = self.queue[0] if self.queued else None
        arrival, size = (head[0], len(head[1])) if head is not None else (self.eof_at, 0)
        if decision is None:
            now = time.monotonic()
            decision = NOTHING
            if self.concerned:
                decision = conn.proxy._ask(
                    self.kind, conn.index, conn.address, size, self.offset, self.count, now
                )
        self.count += 1
        action = decision.action
        if action in (RESET, SHUTDOWN):
            if decision.delay > 0:  # as in the layer: the wait first, then the blow
                self.waiting = True
                self.loop.call_later(decision.delay, lambda: self._carry_out(action))
            else:
                self._carry_out(action)
            return
        if action == STALL:
            self._stall(decision)
            return
        if action == EOF:
            self._discard()
            self.state = _SHUT
            self.fin_next = True
        elif head is None:
            self.fin_next = True
        else:
            take = size if decision.limit is None else max(1, min(size, decision.limit))
            self._move(head, take)
            self.offset += take
        delay = decision.delay
        if delay > 0:
            # Moving everything: delayed from its arrival (latency), in order. Moving
            # a part: paced, from now (the rest is decided when this part has gone).
            paced = decision.limit is not None
            release = now + delay if paced else max(self.released, arrival + delay)
            self.released = release
            if release > now:
                self.waiting = self.delaying = True
                generation = self.generation
                self.loop.call_at(release, lambda: self.resume(generation))

    def _stall(self, decision: Decision) -> None:
        self._discard()
        self.state = _STALLED
        if decision.close_after is not None:
            generation = self.generation
            conn = self.conn

            def close() -> None:
                if not conn.closed and self.generation == generation:
                    conn.close(reset=False)

            self.loop.call_later(decision.close_after, close)

    def _discard(self) -> None:
        self.queue.clear()
        self.queued = 0

    def _carry_out(self, action: str) -> None:
        if self.conn.closed:
            return
        if action == SHUTDOWN:
            self.conn.proxy._abrupt_shutdown()
        else:
            self.conn.close(reset=True)

    def _move(self, head: list[Any], n: int) -> None:
        data = head[1]
        if n == len(data):
            self.queue.popleft()
            self.out.append(data)
        else:
            view = memoryview(data)
            self.out.append(view[:n])
            head[1] = view[n:]
        self.queued -= n
        self.outlen += n

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

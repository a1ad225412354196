"""The engine under :class:`~sockshock._tls._socket.TLSSocket`: an ``ssl.SSLObject``
between two memory BIOs, fed from the wire and drained into it by sockshock itself.

* :class:`Wire` -- what the engine needs from the socket it runs over.
* :class:`Op` -- one TLS operation's deadline: the wire's timeout shortened to the
  time left for the operation's later wire calls, and SSLSocket's timeout message.
* :class:`TLSEngine` -- runs SSLObject calls to completion (``_run``): reads the
  wire record by record, as OpenSSL does without read-ahead (``_fill``, ``_feed``),
  and queues the ciphertext each call produces, in order, until its producer has
  sent it (``_flush``). One lock guards the SSLObject, the BIOs, the record framing
  and the queue; one thread reads the wire and one sends the queue at a time, the
  others wait on a condition (``_wait``) within their own deadline.

:class:`~sockshock._tls._socket.TLSSocket` builds the socket API on it; its
module's docstring says what a caller sees.
"""

from __future__ import annotations

import collections
import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["Op", "TLSEngine", "Wire"]

_T = TypeVar("_T")
_HEADER = 5  # TLS record header: content type, version (2 bytes), length (2 bytes)
_MAX_RECORD = 2**14 + 2048  # the longest record body TLS allows
_SLACK = 0.001  # how far a wire call may outlast a deadline (poll() counts in ms)


class Wire(Protocol):
    """What :class:`TLSEngine` (and ``TLSSocket``) needs from the socket it runs over."""

    @property
    def family(self) -> int: ...
    @property
    def type(self) -> int: ...
    @property
    def proto(self) -> int: ...
    def recv(self, bufsize: int, /) -> bytes: ...
    def send(self, data: Any, /) -> int: ...
    def sendall(self, data: Any, /) -> None: ...
    def settimeout(self, value: float | None, /) -> None: ...
    def gettimeout(self) -> float | None: ...
    def setblocking(self, flag: bool, /) -> None: ...
    def fileno(self) -> int: ...
    def shutdown(self, how: int, /) -> None: ...
    def close(self) -> None: ...
    def getpeername(self) -> Any: ...
    def getsockname(self) -> Any: ...


class Op:
    """One TLS operation's deadline and name (for the timeout message)."""

    __slots__ = ("chunk", "deadline", "name", "timeout", "wire_calls", "wire_timeout")

    def __init__(self, name: str, timeout: float | None) -> None:
        self.name = name
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout else None
        self.wire_calls = 0
        self.wire_timeout = timeout or 0.0  # what the wire's timeout is set to now
        self.chunk = 0  # the number of the last ciphertext chunk this operation queued

    def restore(self, wire: Wire) -> None:
        """Put the wire's timeout back if a deadline shortened it."""
        if self.wire_timeout != (self.timeout or 0.0):
            wire.settimeout(self.timeout)
            self.wire_timeout = self.timeout or 0.0

    def timed_out(self, direction: str) -> TimeoutError:
        # SSLSocket names the operation; its unwrap() names what it waited for.
        return TimeoutError(
            f"The {direction if self.name == 'shutdown' else self.name} operation timed out"
        )


def _would_block(direction: str) -> ssl.SSLError:
    """The exception a non-blocking SSLSocket raises when the wire is not ready."""
    if direction == "read":
        error: ssl.SSLError = ssl.SSLWantReadError(
            ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)"
        )
    else:
        error = ssl.SSLWantWriteError(
            ssl.SSL_ERROR_WANT_WRITE, "The operation did not complete (write)"
        )
    error.library = error.reason = None  # type: ignore[assignment]  # as _ssl.c sets them
    return error


class TLSEngine:
    """An ``ssl.SSLObject`` over ``wire``: the state and the calls that move
    ciphertext between them (the base of :class:`~sockshock._tls._socket.TLSSocket`).

    Constructing one does no I/O: ``_run`` makes each SSLObject call and the wire
    calls it needs, in the calling thread.
    """

    def __init__(
        self, wire: Wire, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None
    ) -> None:
        self._wire = wire
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._sslobj: ssl.SSLObject | None = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=server_hostname
        )
        self._lock = threading.Lock()  # the SSLObject, the BIOs, the framing, the queue
        self._changed = threading.Condition(self._lock)  # a chunk left, or data came in
        self._reading = False  # a thread is reading the wire
        self._waiting = 0  # threads waiting on _changed
        self._head = b""  # the part of a record header read so far
        self._body = 0  # bytes left of the current record's body
        self._plausible = False  # whether the current record's header looks like TLS
        self._fed = 0  # how many times ciphertext was fed in (lets waiters retry)
        self._wire_eof = False
        self._established = False  # a call succeeded: the handshake is done
        self._ending = False  # close_notify, an error or end of file was met
        self._queue: collections.deque[bytes] = collections.deque()  # ciphertext to send
        self._queued = 0  # chunks ever queued: a chunk's number is the count after it
        self._sent = 0  # chunks fully sent
        self._sending = False  # a thread is sending the queue's head

    # -- moving ciphertext ---------------------------------------------------------

    def _run(
        self, op: Op, call: Callable[..., _T], *args: Any, flush: bool = True, reading: bool = False
    ) -> _T:
        """Run one SSLObject call to completion, feeding it from the wire.

        The ciphertext a call produces is queued at once, keeping its place, and
        the thread that produced it waits until it has left: a reader never waits
        on a writer's data, or sends it while nobody reads.

        A read that can only ask for more (the handshake done, the connection not
        ending, no ciphertext or plaintext waiting) reads the wire first: the
        call is made once, not twice.
        """
        try:
            while True:
                with self._lock:
                    fed = self._fed
                    starving = (
                        reading
                        and self._established
                        and not self._ending
                        and not self._in.pending
                        and self._sslobj is not None
                        and not self._sslobj.pending()
                    )
                    if not starving:
                        try:
                            result = call(*args)
                        except ssl.SSLWantReadError as want:
                            wanted: ssl.SSLWantReadError | None = want
                            failure: ssl.SSLError | None = None
                        except ssl.SSLError as error:
                            wanted, failure = None, error
                            self._ending = True
                        else:
                            wanted = failure = None
                            self._established = True
                        if self._out.pending:
                            self._queue.append(self._out.read())
                            self._queued += 1
                            op.chunk = self._queued
                if starving:
                    reading = False
                    self._fill(op, fed, None)
                    continue
                if failure is not None:
                    with contextlib.suppress(OSError):  # the alert OpenSSL queued
                        self._flush(op)
                    raise failure
                if flush or wanted is not None:
                    self._flush(op)  # e.g. a ClientHello, a Finished
                if wanted is None:
                    return result
                self._fill(op, fed, wanted)
        finally:
            op.restore(self._wire)

    def _wire_call(self, op: Op, direction: str, call: Callable[[Any], _T], arg: Any) -> _T:
        """One wire call within ``op``'s deadline, its failures as SSLSocket's."""
        if op.deadline is None:
            return call(arg)
        if op.wire_calls:  # the first call gets the whole timeout, as set
            left = op.deadline - time.monotonic()
            if left <= 0:
                raise op.timed_out(direction)
            if left < op.wire_timeout - _SLACK:  # it would overshoot: shorten it
                self._wire.settimeout(left)
                op.wire_timeout = left
        op.wire_calls += 1
        try:
            return call(arg)
        except TimeoutError:
            raise op.timed_out(direction) from None

    def _flush(self, op: Op) -> None:
        """Send the queue up to ``op``'s last chunk; what the wire does not take
        stays at the head of the queue."""
        if self._sent >= op.chunk:  # nothing of ours is waiting (it only grows)
            return
        with self._lock:
            while self._sending and self._sent < op.chunk:  # another thread sends
                self._wait(op, "write")
            if self._sent >= op.chunk:
                return
            self._sending = True
            view = memoryview(self._queue.popleft())
        try:
            while True:
                try:
                    while view:
                        view = view[self._wire_call(op, "write", self._wire.send, view) :]
                finally:
                    if view:
                        with self._lock:
                            self._queue.appendleft(bytes(view))
                with self._lock:
                    self._sent += 1
                    if self._waiting:  # its producer may be waiting
                        self._changed.notify_all()
                    if self._sent >= op.chunk:
                        self._sending = False
                        return
                    view = memoryview(self._queue.popleft())
        except BaseException as error:
            with self._lock:
                self._sending = False
                if self._waiting:
                    self._changed.notify_all()
            if isinstance(error, BlockingIOError):
                raise _would_block("write") from None
            raise

    def _fill(self, op: Op, fed: int, wanted: ssl.SSLWantReadError | None) -> None:
        """Read what OpenSSL would read next: the rest of a record's header, then
        (if the header looks like TLS's) the rest of its body.

        One thread reads the wire at a time; the others wait for what it feeds in
        and then retry their call.
        """
        with self._lock:
            while self._reading and self._fed == fed:
                self._wait(op, "read")
            if self._fed != fed or self._wire_eof:
                return  # fed meanwhile: retry the call first
            self._reading = True
            size = self._body or _HEADER - len(self._head)
        try:
            while True:  # to the end of the record, once its header looks like TLS's
                data = self._wire_call(op, "read", self._wire.recv, size)
                with self._lock:
                    self._feed(data)
                    if data and self._head:  # the rest of the header
                        size = _HEADER - len(self._head)
                    elif data and self._body and self._plausible:  # the rest of the body
                        size = self._body
                    else:
                        self._reading = False
                        if self._waiting:
                            self._changed.notify_all()
                        return
        except BaseException as error:
            with self._lock:
                self._reading = False
                if self._waiting:
                    self._changed.notify_all()
            if isinstance(error, BlockingIOError):
                raise (wanted or _would_block("read")) from None
            raise

    def _feed(self, data: bytes) -> None:
        """Give the SSLObject what the wire gave, noting record boundaries (the
        caller holds _lock)."""
        self._fed += 1
        if not data:
            self._wire_eof = True
            self._in.write_eof()
            return
        self._in.write(data)
        if len(data) <= self._body:  # within a record's body: the common case
            self._body -= len(data)
            return
        while data:
            if self._body:
                taken = min(self._body, len(data))
                self._body -= taken
            else:
                taken = min(_HEADER - len(self._head), len(data))
                self._head += data[:taken]
                if len(self._head) == _HEADER:
                    # OpenSSL judges the header; garbage must reach it before we
                    # wait for a body that may never come.
                    self._body = int.from_bytes(self._head[3:], "big")
                    self._plausible = (
                        20 <= self._head[0] <= 24
                        and self._head[1] == 3
                        and self._body <= _MAX_RECORD
                    )
                    self._head = b""
            data = data[taken:]

    def _wait(self, op: Op, direction: str) -> None:
        """Wait (holding _lock) for another thread's read or send, within the deadline."""
        if op.timeout == 0.0:
            raise _would_block(direction)
        left = None if op.deadline is None else op.deadline - time.monotonic()
        if left is not None and left <= 0:
            raise op.timed_out(direction)
        self._waiting += 1
        try:
            self._changed.wait(left)
        finally:
            self._waiting -= 1

    def _op(self, name: str) -> Op:
        return Op(name, self._wire.gettimeout())

    def _tls(self, what: str) -> ssl.SSLObject:
        if self._sslobj is None:
            raise ValueError(f"{what} on closed or unwrapped SSL socket.")
        return self._sslobj

    def _ask(self, question: Callable[[ssl.SSLObject], _T], default: _T) -> _T:
        """Query the SSLObject (under the lock: another thread may be using it)."""
        with self._lock:
            return default if self._sslobj is None else question(self._sslobj)

"""TLS over any wire socket, by composition: ``ssl.SSLObject`` and two memory BIOs.

``SSLContext.wrap_socket()`` hands the file descriptor to OpenSSL, which then
reads and writes it directly and would bypass sockshock's fault layer.
:class:`TLSSocket` instead keeps the wire -- a ``socket.socket``, a
:class:`~sockshock.FaultySocket`, or anything with the same few methods -- and
moves ciphertext between it and an ``ssl.SSLObject`` itself, so that every byte
on the wire goes through the wire's own ``recv``/``send`` and its faults.

What a handler sees is what ``ssl.SSLSocket`` shows it (``ssl.SSLSocket`` is the
oracle in ``tests/test_tls.py``), because the same OpenSSL code decides:

* The handshake happens lazily in the first read or write (or in
  :meth:`TLSSocket.do_handshake`), in the thread that makes that call.
* Reads take the wire record by record, the way OpenSSL does without read-ahead:
  the 5-byte record header, then its body. Nothing beyond the current record is
  taken off the wire, so readiness of ``fileno()`` and :meth:`TLSSocket.pending`
  mean what they mean on an ``SSLSocket``, and :meth:`TLSSocket.unwrap` leaves
  whatever follows the peer's close_notify on the wire.
* A timeout bounds each whole call, like ``SSLSocket`` (and unlike a plain
  socket, where it bounds each system call): the wire's timeout is shortened to
  the time left for the second and later wire calls of one operation, and
  ``TimeoutError("The read operation timed out")`` (or ``write``, or
  ``handshake``) is raised. Non-blocking sockets raise ``ssl.SSLWantReadError`` /
  ``ssl.SSLWantWriteError``.
* End of file without close_notify (a truncation): ``recv`` returns ``b""``
  with ``suppress_ragged_eofs=True`` (``SSLSocket``'s default) and raises
  ``ssl.SSLEOFError`` with ``suppress_ragged_eofs=False``; inside a handshake it
  is always ``ssl.SSLEOFError``. After the peer's close_notify ``recv`` returns
  ``b""``, or raises ``ssl.SSLZeroReturnError`` once our own close_notify has
  gone out too (an ``unwrap()`` that timed out). OSErrors of the wire
  (``ConnectionResetError``...) pass through unchanged. Certificate and protocol
  failures are OpenSSL's own exceptions, and the alert OpenSSL queues for the
  peer is sent before the exception is raised, so the peer sees the alert.
* ``shutdown()`` and ``close()`` send no close_notify, as on ``SSLSocket``;
  after ``shutdown()`` or ``unwrap()`` the data methods go to the wire as plain
  socket calls, also as on ``SSLSocket``.

A writer whose records did not all leave (a timeout, or a full buffer on a
non-blocking socket) gets the exception; the records stay queued and go out
first at the next call. As with OpenSSL, the caller retries the same ``write``:
the retry sends the queued records and returns the count of the first attempt.

One reader thread and one writer thread may use a TLSSocket at the same time
(the ciphertext stays in order); while one of them waits for the rest of an
operation with a shortened timeout, the other's wire calls see that timeout too.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["PlaintextHook", "TLSSocket", "Wire"]

_T = TypeVar("_T")
_HEADER = 5  # TLS record header: content type, version (2 bytes), length (2 bytes)
_MAX_RECORD = 2**14 + 2048  # the longest record body TLS allows
_SLACK = 0.001  # how far a wire call may outlast a deadline (poll() counts in ms)


class Wire(Protocol):
    """What :class:`TLSSocket` needs from the socket it runs over."""

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


class PlaintextHook(Protocol):
    """Consulted for each plaintext read and write: faults above TLS.

    Either method may also sleep, or raise the exception the caller should see
    (``ConnectionResetError``, ``TimeoutError``...).
    """

    def before_read(self, size: int) -> int | None:
        """A read of up to ``size`` bytes is about to happen.

        Returns:
            ``None`` to let it be, ``n > 0`` to return at most ``n`` bytes,
            ``0`` for end of file (``b""``, the TLS connection untouched).
        """

    def before_write(self, size: int) -> int | None:
        """A write of ``size`` bytes is about to happen.

        Returns:
            ``None`` to let it be, or ``n`` to take at most ``max(1, n)`` bytes (a
            short write: ``send`` returns it, ``sendall`` carries on).
        """

    # Optional, called when present: ``after_read(count)`` (the read returned
    # ``count`` bytes) and ``after_write(count)`` (the write took ``count``).


class _Op:
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
        return TimeoutError(f"The {direction if self.name == 'shutdown' else self.name}"
                            " operation timed out")


def _would_block(direction: str) -> ssl.SSLError:
    """The exception a non-blocking SSLSocket raises when the wire is not ready."""
    if direction == "read":
        error: ssl.SSLError = ssl.SSLWantReadError(
            ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)")
    else:
        error = ssl.SSLWantWriteError(
            ssl.SSL_ERROR_WANT_WRITE, "The operation did not complete (write)")
    error.library = error.reason = None  # type: ignore[assignment]  # as _ssl.c sets them
    return error


class TLSSocket:
    """A TLS stream over a wire socket, shaped like ``ssl.SSLSocket``.

    Args:
        wire: the connected stream socket to run over (a ``socket.socket``, a
            :class:`~sockshock.FaultySocket`, or any :class:`Wire`). The
            TLSSocket owns it from now on: :meth:`close` closes it.
        context: the ``ssl.SSLContext`` (server or client side).
        server_side: whether this end is the TLS server.
        server_hostname: the name to check the server's certificate against and
            to send as SNI (client side only).
        plaintext_hook: an optional :class:`PlaintextHook`.
        suppress_ragged_eofs: ``SSLSocket``'s flag, with its default: end of file
            without close_notify reads as ``b""`` instead of ``ssl.SSLEOFError``.

    Raises:
        ValueError: for the argument combinations ``SSLSocket`` refuses.
        NotImplementedError: for a wire that is not a stream socket.

    No I/O happens here: the handshake runs in the first thread that reads,
    writes or calls :meth:`do_handshake`.
    """

    def __init__(self, wire: Wire, context: ssl.SSLContext, *, server_side: bool,
                 server_hostname: str | None = None,
                 plaintext_hook: PlaintextHook | None = None,
                 suppress_ragged_eofs: bool = True) -> None:
        if wire.type != socket.SOCK_STREAM:
            raise NotImplementedError("only stream sockets are supported")
        if server_side and server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if context.check_hostname and not server_side and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        self._wire = wire
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._sslobj: ssl.SSLObject | None = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=server_hostname)
        self._context = context
        self.server_side = server_side
        self.suppress_ragged_eofs = suppress_ragged_eofs
        self.plaintext_hook = plaintext_hook
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
        self._write_retry: tuple[int, int] | None = None  # (count, chunk) owed to a retry
        self._io_refs = 0  # makefile() accounting, as socket.socket's
        self._closed = False

    # -- moving ciphertext ---------------------------------------------------------

    def _run(self, op: _Op, call: Callable[..., _T], *args: Any, flush: bool = True,
             reading: bool = False) -> _T:
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
                    starving = (reading and self._established and not self._ending
                                and not self._in.pending and self._sslobj is not None
                                and not self._sslobj.pending())
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

    def _wire_call(self, op: _Op, direction: str, call: Callable[[Any], _T], arg: Any) -> _T:
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

    def _flush(self, op: _Op) -> None:
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
                        view = view[self._wire_call(op, "write", self._wire.send, view):]
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

    def _fill(self, op: _Op, fed: int, wanted: ssl.SSLWantReadError | None) -> None:
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
                    self._plausible = (20 <= self._head[0] <= 24 and self._head[1] == 3
                                       and self._body <= _MAX_RECORD)
                    self._head = b""
            data = data[taken:]

    def _wait(self, op: _Op, direction: str) -> None:
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

    def _op(self, name: str) -> _Op:
        return _Op(name, self._wire.gettimeout())

    def _tls(self, what: str) -> ssl.SSLObject:
        if self._sslobj is None:
            raise ValueError(f"{what} on closed or unwrapped SSL socket.")
        return self._sslobj

    # -- what handlers call -------------------------------------------------------

    def do_handshake(self, block: bool = False) -> None:
        """Perform the handshake now (otherwise the first read or write does)."""
        sslobj = self._tls("Handshake")
        op = self._op("handshake")
        if not (block and op.timeout == 0.0):
            self._run(op, sslobj.do_handshake)
            return
        self._wire.settimeout(None)  # as SSLSocket: block this once
        try:
            self._run(_Op("handshake", None), sslobj.do_handshake)
        finally:
            self._wire.settimeout(0.0)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # SSLSocket's names
        """Read up to ``len`` bytes (into ``buffer`` if given), as ``SSLSocket.read``."""
        sslobj = self._tls("Read")
        hook = self.plaintext_hook
        if hook is not None:
            limit = hook.before_read(len)
            if limit is not None:
                if limit <= 0:
                    return b"" if buffer is None else 0
                len = min(len, limit)
        try:
            if buffer is None:
                data = self._run(self._op("read"), sslobj.read, len, reading=True)
            else:
                data = self._run(self._op("read"), sslobj.read, len, buffer, reading=True)
            if not data and len:
                self._ending = True  # the peer's close_notify
            after = getattr(hook, "after_read", None)
            if after is not None:
                after(data if buffer is not None else builtins.len(data))
            return data
        except ssl.SSLError as error:
            if error.args[0] == ssl.SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return b"" if buffer is None else 0
            raise

    def write(self, data: Any) -> int:
        """Write ``data``; returns how many bytes were taken (all, unless a hook
        limited it), as ``SSLSocket.write``."""
        sslobj = self._tls("Write")
        op = self._op("write")
        if self._write_retry is not None:  # the retry of a write whose records stayed
            count, op.chunk = self._write_retry
            self._write_retry = None
        else:
            hook = self.plaintext_hook
            if hook is not None:
                limit = hook.before_write(memoryview(data).nbytes)
                if limit is not None:
                    data = memoryview(data).cast("B")[:max(1, limit)]
            count = self._run(op, sslobj.write, data, flush=False)
            after = getattr(hook, "after_write", None)
            if after is not None:
                after(count)
        try:
            self._flush(op)
        except (TimeoutError, ssl.SSLWantWriteError):
            self._write_retry = (count, op.chunk)
            raise
        finally:
            op.restore(self._wire)
        return count

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if self._sslobj is None:
            return self._wire.recv(buflen, flags)  # type: ignore[call-arg]
        if flags != 0:
            raise ValueError(f"non-zero flags not allowed in calls to recv() on {self.__class__}")
        return self.read(buflen)  # type: ignore[no-any-return]

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        if nbytes is None:
            with memoryview(buffer) as view:
                nbytes = view.nbytes or 1024
        if self._sslobj is None:
            return self._wire.recv_into(buffer, nbytes, flags)  # type: ignore[attr-defined,no-any-return]
        if flags != 0:
            raise ValueError(
                f"non-zero flags not allowed in calls to recv_into() on {self.__class__}")
        return self.read(nbytes, buffer)  # type: ignore[no-any-return]

    def send(self, data: Any, flags: int = 0) -> int:
        if self._sslobj is None:
            return self._wire.send(data, flags)  # type: ignore[call-arg]
        if flags != 0:
            raise ValueError(f"non-zero flags not allowed in calls to send() on {self.__class__}")
        return self.write(data)

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self._sslobj is None:
            self._wire.sendall(data, flags)  # type: ignore[call-arg]
            return
        if flags != 0:
            raise ValueError(
                f"non-zero flags not allowed in calls to sendall() on {self.__class__}")
        with memoryview(data) as view, view.cast("B") as byte_view:
            count = 0
            while count < len(byte_view):
                count += self.send(byte_view[count:])

    def makefile(self, mode: str = "r", buffering: int | None = None, *,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Any:
        """A file object over this socket, exactly ``socket.socket.makefile()``
        (``socket.SocketIO`` over :meth:`recv_into` and :meth:`send`)."""
        return socket.socket.makefile(self, mode, buffering, encoding=encoding,  # type: ignore[call-overload]
                                      errors=errors, newline=newline)

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def pending(self) -> int:
        """Decrypted bytes ready to be read without touching the wire."""
        return self._ask(ssl.SSLObject.pending, 0)

    def unwrap(self) -> Wire:
        """Exchange close_notify with the peer and return the wire, TLS-free."""
        if self._sslobj is None:
            raise ValueError(f"No SSL wrapper around {self}")
        self._run(self._op("shutdown"), self._sslobj.unwrap)
        self._sslobj = None
        return self._wire

    def shutdown(self, how: int) -> None:
        """Shut the wire down, without close_notify (as ``SSLSocket.shutdown``)."""
        self._sslobj = None
        self._wire.shutdown(how)

    def close(self) -> None:
        """Close the wire (once no makefile() object is open), without close_notify."""
        self._closed = True
        if self._io_refs <= 0:
            self._sslobj = None
            self._wire.close()

    def __enter__(self) -> TLSSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- about the connection ------------------------------------------------------

    def _ask(self, question: Callable[[ssl.SSLObject], _T], default: _T) -> _T:
        """Query the SSLObject (under the lock: another thread may be using it)."""
        with self._lock:
            return default if self._sslobj is None else question(self._sslobj)

    def getpeercert(self, binary_form: bool = False) -> Any:
        self._wire.getpeername()  # OSError(ENOTCONN) if not connected, as SSLSocket
        self._tls("getpeercert")
        return self._ask(lambda tls: tls.getpeercert(binary_form), None)

    def version(self) -> str | None:
        return self._ask(ssl.SSLObject.version, None)

    def cipher(self) -> tuple[str, str, int] | None:
        return self._ask(ssl.SSLObject.cipher, None)

    def shared_ciphers(self) -> list[tuple[str, str, int]] | None:
        return self._ask(ssl.SSLObject.shared_ciphers, None)

    def selected_alpn_protocol(self) -> str | None:
        return self._ask(ssl.SSLObject.selected_alpn_protocol, None)

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        self._tls("get_channel_binding")
        return self._ask(lambda tls: tls.get_channel_binding(cb_type), None)

    @property
    def context(self) -> ssl.SSLContext:
        return self._context

    @context.setter
    def context(self, context: ssl.SSLContext) -> None:
        self._context = self._tls("context").context = context

    @property
    def server_hostname(self) -> str | None:
        return self._sslobj.server_hostname if self._sslobj is not None else None

    @property
    def wire(self) -> Wire:
        """The socket this TLS stream runs over."""
        return self._wire

    # -- the wire's, passed through ---------------------------------------------------

    @property
    def family(self) -> int:
        return self._wire.family

    @property
    def type(self) -> int:
        return self._wire.type

    @property
    def proto(self) -> int:
        return self._wire.proto

    def fileno(self) -> int:
        return self._wire.fileno()

    def settimeout(self, value: float | None) -> None:
        self._wire.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._wire.gettimeout()

    def setblocking(self, flag: bool) -> None:
        self._wire.setblocking(flag)

    def getblocking(self) -> bool:
        return self._wire.gettimeout() != 0.0

    def getpeername(self) -> Any:
        return self._wire.getpeername()

    def getsockname(self) -> Any:
        return self._wire.getsockname()

    def setsockopt(self, *args: Any) -> None:
        self._wire.setsockopt(*args)  # type: ignore[attr-defined]

    def getsockopt(self, *args: Any) -> Any:
        return self._wire.getsockopt(*args)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        side = "server" if self.server_side else "client"
        return f"<TLSSocket {side} version={self.version()} wire={self._wire!r}>"

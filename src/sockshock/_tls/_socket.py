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

This module is the socket API; the machinery beneath it (operations and their
deadlines, reading records off the wire, the ordered ciphertext queue) is
:class:`~sockshock._tls._engine.TLSEngine`, TLSSocket's base class.
"""

from __future__ import annotations

import builtins
import socket
import ssl
from typing import Any, Protocol

from sockshock._tls._engine import Op, TLSEngine, Wire

__all__ = ["PlaintextHook", "TLSSocket", "Wire"]


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


class TLSSocket(TLSEngine):
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

    def __init__(
        self,
        wire: Wire,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        plaintext_hook: PlaintextHook | None = None,
        suppress_ragged_eofs: bool = True,
    ) -> None:
        if wire.type != socket.SOCK_STREAM:
            raise NotImplementedError("only stream sockets are supported")
        if server_side and server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if context.check_hostname and not server_side and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        super().__init__(wire, context, server_side=server_side, server_hostname=server_hostname)
        self._context = context
        self.server_side = server_side
        self.suppress_ragged_eofs = suppress_ragged_eofs
        self.plaintext_hook = plaintext_hook
        self._write_retry: tuple[int, int] | None = None  # (count, chunk) owed to a retry
        self._io_refs = 0  # makefile() accounting, as socket.socket's
        self._closed = False

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
            self._run(Op("handshake", None), sslobj.do_handshake)
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
                    data = memoryview(data).cast("B")[: max(1, limit)]
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
                f"non-zero flags not allowed in calls to recv_into() on {self.__class__}"
            )
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
                f"non-zero flags not allowed in calls to sendall() on {self.__class__}"
            )
        with memoryview(data) as view, view.cast("B") as byte_view:
            count = 0
            while count < len(byte_view):
                count += self.send(byte_view[count:])

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> Any:
        """A file object over this socket, exactly ``socket.socket.makefile()``
        (``socket.SocketIO`` over :meth:`recv_into` and :meth:`send`)."""
        return socket.socket.makefile(
            self,
            mode,
            buffering,
            encoding=encoding,  # type: ignore[call-overload]
            errors=errors,
            newline=newline,
        )

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

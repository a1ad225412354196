"""In-memory sockets, the kernel's part: buffers that behave as Linux's sockets do.

:class:`MemoryEndpoint` provides the raw operations (``_raw_recv``,
``_raw_send``, ``_raw_recvfrom``...) over buffers; a plain endpoint is the
client's end in ``drive()``, and :class:`~sockshock._memory._socket.MemorySocket`
puts the fault layer's own paths in front of them for the handler's end.

What the kernel would do is Linux's, for TCP:

* a read returns what is buffered (at most ``bufsize``, and never bytes of two
  sends: each send arrives as reads of its own, as from a peer slower than the
  reader), else waits; after the
  peer's FIN, ``b""``; after its RST, the buffered data, then ``ECONNRESET``
  (``EPIPE`` if a FIN came first) once, then ``b""``;
* a write after an RST raises the pending error once, then ``EPIPE``; a write to
  a peer that has closed succeeds and the peer answers with an RST;
* a write puts at most what the buffers between the two ends still hold
  (``send_buffer`` bytes unread by the peer; :data:`SEND_BUFFER`, Linux's
  default send and receive buffers, when the harness bounds it): a blocking
  socket waits for the peer to read until everything is in, one with a timeout
  waits for room and then takes what fits (a short count), a non-blocking one
  takes what fits or raises ``EAGAIN``;
* after the peer's RST, ``getpeername()`` raises ``ENOTCONN``;
* closing with unread data sends an RST instead of a FIN;
* a datagram socket keeps a queue of ``(data, address)``; a read cuts a datagram to
  ``bufsize``.

Waiting is virtual. A read with nothing buffered calls the endpoint's ``waiter``
(``waiter(deadline, ready) -> bool``): it lets the peer act -- in virtual time,
on the layer's clock -- until ``ready()`` or until the clock reaches
``deadline``, and says whether the peer may still act later. Nothing arrived by
the deadline: ``TimeoutError``; a socket without a timeout whose peer can never
act again would wait forever: :class:`~sockshock.HandlerHangs`; so does a
write that would wait forever, and one past ``max_output`` bytes in all (a
handler that never stops writing to a client that reads everything).
"""

from __future__ import annotations

import collections
import errno
import io
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sockshock._util import HandlerHangs
from sockshock._wire import DONTWAIT, PEEK, os_error, timed_out

if TYPE_CHECKING:
    from sockshock._util import Clock

__all__ = ["MAX_OUTPUT", "SEND_BUFFER", "MemoryEndpoint", "Waiter", "never"]

#: What a TCP connection's buffers hold before a writer waits, by default: Linux's
#: default send buffer plus the peer's default receive buffer (``tcp_wmem`` and
#: ``tcp_rmem``'s defaults, 16 KiB and 128 KiB, before autotuning grows them).
SEND_BUFFER = 16384 + 131072
#: How much a handler may write in all before ``drive()`` takes it for one that
#: never stops (64 MiB).
MAX_OUTPUT = 64 * 2**20

#: ``waiter(deadline, ready)``: let the peer act until ``ready()`` or the virtual
#: ``deadline`` (``None``: as long as it can); True if it may act again later.
Waiter = Callable[[float | None, Callable[[], bool]], bool]


def never() -> bool:
    """A ``ready()`` that never is: the waiter lets the peer go as far as it can."""
    return False


class MemoryEndpoint:
    """One end of an in-memory stream connection, or an in-memory datagram socket:
    the raw operations, with the kernel's semantics (see the module's docstring).

    Args:
        type: ``socket.SOCK_STREAM`` or ``socket.SOCK_DGRAM``.
        clock: the virtual clock that waits and timeouts are measured on.
        address: this end's address (``getsockname()``).
    """

    def __init__(
        self, type: int, clock: Clock, address: Any, family: socket.AddressFamily = socket.AF_INET
    ) -> None:
        self._family = family
        self._type = type
        self.proto = 0
        self._address = address
        self._peer_address: Any = None
        self._clock = clock
        self._timeout: float | None = None
        self._closed = False
        self._io_refs = 0
        self.waiter: Waiter | None = None
        # stream
        self._peer: MemoryEndpoint | None = None
        self._rx = bytearray()
        self._chunks: collections.deque[int] = collections.deque()  # each send's bytes
        self._fin = False  # the peer shut its writing side down (or closed)
        self._error = 0  # a pending error, reported once (the kernel's sk_err)
        self._done = False  # reset (or closed): both directions are finished
        self._write_shut = False
        self._read_shut = False
        #: Every byte a send accepted (stream).
        self.written = bytearray()
        #: Every byte a read took (stream; not peeks), if kept (``None``: not kept).
        self.taken: bytearray | None = None
        #: The most bytes unread by the peer before a write waits (``None``: no bound).
        self.send_buffer: int | None = None
        #: The most bytes the writes may put in all (``None``: no bound).
        self.max_output: int | None = None
        # datagram
        self._queue: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._network: dict[Any, MemoryEndpoint] = {}

    @property
    def family(self) -> socket.AddressFamily:
        return self._family

    @property
    def type(self) -> int:
        return self._type

    # -- wiring ----------------------------------------------------------------

    def connect_pair(self, peer: MemoryEndpoint) -> None:
        """Make this stream endpoint and ``peer`` the two ends of one connection."""
        self._peer, peer._peer = peer, self
        self._peer_address, peer._peer_address = peer._address, self._address

    def join(self, network: dict[Any, MemoryEndpoint], peer_address: Any = None) -> None:
        """Put this datagram endpoint on ``network`` (address -> endpoint); with
        ``peer_address``, ``send``/``recv`` talk to it (a connected socket)."""
        self._network = network
        network[self._address] = self
        self._peer_address = peer_address

    # -- the socket API ------------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        self._timeout = None if value is None else float(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def setsockopt(self, *args: Any) -> None:
        """Options change nothing in memory."""

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> Any:
        return 0 if buflen is None else bytes(buflen)

    def getsockname(self) -> Any:
        return self._address

    def getpeername(self) -> Any:
        if self._closed:
            raise os_error(errno.EBADF)
        if self._peer_address is None or (self._done and self._type == socket.SOCK_STREAM):
            raise os_error(errno.ENOTCONN)  # never connected, or reset (Linux: state CLOSE)
        return self._peer_address

    def fileno(self) -> int:
        if self._closed:
            return -1
        raise io.UnsupportedOperation(
            "an in-memory socket has no file descriptor: select() and poll() need real sockets"
        )

    makefile = socket.socket.makefile

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- waiting ---------------------------------------------------------------

    def _wait(
        self,
        ready: Callable[[], bool],
        flags: int,
        deadline: float | bool | None = False,
        what: str = "a read",
    ) -> None:
        """Wait (virtually) until ``ready()``, at most until ``deadline`` (``False``:
        the socket's timeout from now); raise as a socket would if it did not come."""
        timeout = self._timeout
        if timeout == 0.0 or flags & DONTWAIT:
            raise os_error(errno.EAGAIN)
        clock = self._clock
        if deadline is False:
            deadline = None if timeout is None else clock.now() + timeout
        assert deadline is not True
        if self.waiter is not None:
            self.waiter(deadline, ready)
        if ready():
            return
        if deadline is None:
            peer = "read, close or reset" if what == "a write" else "send, close or reset"
            raise HandlerHangs(
                f"{what} on a socket without a timeout whose peer can never {peer} "
                "again: on a real socket it would wait forever"
            )
        remaining = deadline - clock.now()
        if remaining > 0:
            clock.sleep(remaining)
        raise timed_out()

    # -- stream ----------------------------------------------------------------

    def _waiting(self) -> bytes | None:
        """For the in-memory client: the first send's bytes waiting to be read,
        ``b""`` at end of file, ``None`` while nothing is there (a pending error is
        raised, once) -- what a non-blocking peek would say, without exceptions."""
        if self._rx:
            return bytes(self._rx[: self._chunks[0]])
        if self._fin or self._done or self._read_shut:
            if self._error and not self._fin:
                code, self._error = self._error, 0
                raise os_error(code)
            return b""
        return None

    def _readable(self) -> bool:
        return bool(self._rx) or self._fin or bool(self._error) or self._done or self._read_shut

    def _take(self, size: int, flags: int) -> bytes:
        if self._closed:
            raise os_error(errno.EBADF)
        if self._type != socket.SOCK_STREAM:
            return self._raw_recvfrom(size, flags)[0]
        if not self._readable():
            self._wait(self._readable, flags)
        rx = self._rx
        if rx and not self._read_shut:
            chunks = self._chunks
            first = chunks[0]  # a read never spans two sends
            if size >= first:
                size = first
                if not flags & PEEK:
                    chunks.popleft()
            elif not flags & PEEK:
                chunks[0] = first - size
            if flags & PEEK:
                return bytes(rx[:size])
            if size >= len(rx):
                data = bytes(rx)
                rx.clear()
            else:
                data = bytes(rx[:size])
                del rx[:size]
            if self.taken is not None:
                self.taken += data
            return data
        if self._error and not self._fin:
            code, self._error = self._error, 0
            raise os_error(code)
        return b""  # end of file (after a FIN, a reset, or our own SHUT_RD)

    def _raw_recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        return self._take(bufsize, flags)

    def _raw_recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self._take(nbytes or view.nbytes, flags)
        view[: len(data)] = data
        return len(data)

    def _raw_send(self, data: Any, flags: int = 0, /) -> int:
        if self._closed:
            raise os_error(errno.EBADF)
        if self._type != socket.SOCK_STREAM:
            return self._raw_sendto(data, flags, self._peer_address)
        if self._error:
            code, self._error = self._error, 0
            raise os_error(code)
        if self._write_shut or self._done:
            raise os_error(errno.EPIPE)
        view = memoryview(data).cast("B")
        if self.send_buffer is None or (self._timeout is None and not flags & DONTWAIT):
            if self.send_buffer is None:
                return self._put(view)
            # Blocking: the kernel takes everything, waiting for the peer as needed.
            sent = 0
            while sent < view.nbytes:
                sent += self._put(view[sent:], self._room(None))
            return sent
        return self._put(view, self._room(False, flags))

    def _room(self, deadline: float | bool | None, flags: int = 0) -> int:
        """How many bytes the buffers take now, once there is room for any (waiting
        until ``deadline`` -- ``False``: the socket's timeout -- for the peer to
        read); 0 when the connection broke meanwhile (the write then fails)."""
        peer, limit = self._peer, self.send_buffer
        if peer is None or limit is None:
            return 1 << 62

        def room() -> int:
            if peer._closed or peer._read_shut or self._error or self._done:
                return 1 << 62  # the write goes through to fail, or is thrown away
            return limit - len(peer._rx)

        if room() <= 0:
            self._wait(lambda: room() > 0, flags, deadline, what="a write")
        return max(0, room())

    def _put(self, view: memoryview, room: int = 1 << 62) -> int:
        """Hand ``view`` (at most ``room`` bytes of it) to the peer's buffers."""
        if self._error:  # the connection broke while the write waited
            code, self._error = self._error, 0
            raise os_error(code)
        if self._write_shut or self._done:
            raise os_error(errno.EPIPE)
        if room < view.nbytes:
            view = view[:room]
        if self.max_output is not None and len(self.written) + view.nbytes > self.max_output:
            raise HandlerHangs(
                f"the handler wrote {len(self.written) + view.nbytes} bytes, past "
                f"max_output={self.max_output} (drive(max_output=...)), to a client that "
                "took them all: a handler that never stops writing would never return on "
                "a real socket; give a larger max_output if it really writes that much"
            )
        self.written += view
        peer = self._peer
        if peer is not None:
            if peer._closed:
                self._reset_by_peer()  # the peer's kernel answers with an RST
            elif not peer._read_shut and view.nbytes:
                peer._rx += view
                peer._chunks.append(view.nbytes)
        return view.nbytes

    def _raw_sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        if self.send_buffer is None or self._type != socket.SOCK_STREAM:
            self._raw_send(view, flags)  # no bound: it takes everything at once
            return
        timeout = self._timeout
        deadline = None if timeout is None else self._clock.now() + timeout
        sent = 0
        while sent < view.nbytes:  # as CPython's: the timeout bounds the whole call
            if self._closed:
                raise os_error(errno.EBADF)
            if self._error:
                code, self._error = self._error, 0
                raise os_error(code)
            if self._write_shut or self._done:
                raise os_error(errno.EPIPE)
            if timeout == 0.0 or flags & DONTWAIT:
                sent += self._put(view[sent:], self._room(False, flags))
            else:
                sent += self._put(view[sent:], self._room(deadline))

    def _reset_by_peer(self) -> None:
        """An RST arrived: after a FIN the kernel reports EPIPE, else ECONNRESET."""
        if not self._done:
            self._error = errno.EPIPE if self._fin else errno.ECONNRESET
            self._done = True

    def shutdown(self, how: int) -> None:
        if self._closed:
            raise os_error(errno.EBADF)
        if self._done or (self._type == socket.SOCK_STREAM and self._peer is None):
            raise os_error(errno.ENOTCONN)
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._read_shut = True
        if how in (socket.SHUT_WR, socket.SHUT_RDWR) and not self._write_shut:
            self._write_shut = True
            if self._peer is not None:
                self._peer._fin = True

    def reset(self) -> None:
        """Close with an RST (``SO_LINGER`` zero, then ``close()``)."""
        if self._peer is not None and not self._done and not self._closed:
            self._peer._reset_by_peer()
        self._done = True
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        peer = self._peer
        if peer is not None and not self._done:
            if self._rx and not self._read_shut:
                peer._reset_by_peer()  # closed with unread data: an RST, not a FIN
            elif not self._write_shut:
                peer._fin = True
        self._done = True
        self._rx.clear()
        self._chunks.clear()
        if self._network.get(self._address) is self:
            del self._network[self._address]

    def _sendfile_use_send(self, file: Any, offset: int, count: int | None) -> int:
        if offset:
            file.seek(offset)
        total = 0
        while count is None or total < count:
            chunk = file.read(8192 if count is None else min(8192, count - total))
            if not chunk:
                break
            self.sendall(chunk)
            total += len(chunk)
        return total

    # -- datagram ----------------------------------------------------------------

    def _raw_recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        if self._closed:
            raise os_error(errno.EBADF)
        if self._type == socket.SOCK_STREAM:
            return self._take(bufsize, flags), None
        queue = self._queue
        if not queue:
            self._wait(lambda: bool(queue), flags)
        data, address = queue[0] if flags & PEEK else queue.popleft()
        return data[:bufsize], address

    def _raw_recvfrom_into(
        self, buffer: Any, nbytes: int = 0, flags: int = 0, /
    ) -> tuple[int, Any]:
        view = memoryview(buffer).cast("B")
        data, address = self._raw_recvfrom(nbytes or view.nbytes, flags)
        view[: len(data)] = data
        return len(data), address

    def _raw_sendto(self, data: Any, *args: Any) -> int:
        if self._closed:
            raise os_error(errno.EBADF)
        _flags, address = (0, args[0]) if len(args) == 1 else args
        payload = bytes(data)
        target = self._network.get(address)
        if target is not None and not target._closed:
            target._queue.append((payload, self._address))
        return len(payload)

    # The plain operations (MemorySocket puts the fault paths in front of them).
    recv = _raw_recv
    recv_into = _raw_recv_into
    send = _raw_send
    sendall = _raw_sendall
    recvfrom = _raw_recvfrom
    recvfrom_into = _raw_recvfrom_into
    sendto = _raw_sendto

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        return self._sendfile_use_send(file, offset, count)

    def __repr__(self) -> str:
        kind = "stream" if self._type == socket.SOCK_STREAM else "datagram"
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {kind} {self._address!r}{state}>"

"""The fault proxy: sockshock's fault models on the wire, for servers it cannot wrap.

A server in another process -- or written in another language -- cannot take
sockshock's socket layer. A :class:`FaultProxy` sits between its clients and it
(TCP, UDP or Unix stream; loopback addresses and Unix paths only) and carries out
the decisions of the same :class:`~sockshock.faults.FaultPlan`, per direction,
seeded and logged the way the fault layer logs them.

Directions keep the layer's vocabulary, from the *server's* point of view: what the
client sends is what the server reads ("in": operations ``recv`` and
``datagram_in``), what the server sends back is what it writes ("out": ``send`` and
``datagram_out``). Connections are numbered in accept order, datagram peers (client
addresses) in order of first appearance, as the layer numbers them.

One forwarding step is one operation. For a stream the proxy holds the bytes it has
read from one side and asks the plan about them (``size``: the bytes waiting,
``offset``: the bytes already forwarded in that direction, ``index``: the steps
before), then forwards what the decision allows: ``limit`` -> that many bytes now,
the rest in later steps; ``delay`` -> the data is held that long (other
connections go on); ``reset`` -> both sides get a TCP RST (``SO_LINGER`` {1, 0},
then close); ``eof`` -> the proxy half-closes towards the server and discards what
the client sends after; ``stall`` -> that direction is never forwarded again. A
client's end of file is an "in" operation too (the server's ``recv`` that returns
``b""``), so ``ResetAfter``, ``Stall`` and ``Latency`` apply to it; the server's end
of file is passed on as it comes (a close is not a ``send``). A datagram is one
operation: ``drop``, ``duplicate``, ``hold`` (reordering: released behind that many
later datagrams of its direction, or after :data:`HOLD_WINDOW` seconds), ``corrupt``
and ``truncate``, after its ``delay``. ``AcceptErrors`` resets the accepted client
connection without connecting upstream; ``AbruptShutdown`` resets every connection,
closes the listening socket and ends the proxy (:attr:`FaultProxy.shutdown_triggered`).

Design: one I/O thread runs a selector over non-blocking sockets -- no thread per
connection, no polling. Delays are timers in a heap that bounds the selector's
wait. Each direction buffers at most :data:`BUFFER` bytes (plus one read); a full
buffer stops the proxy reading its source, so back-pressure reaches the sender
through the transport's own flow control. :meth:`FaultProxy.stop` joins the thread
within a bound and closes every descriptor.

Also here: :func:`proxy_for` (a context manager), :func:`sockshock_proxy` (a pytest
fixture function, registered by the plugin) and :func:`proxy_main` (``sockshock
proxy``).
"""

from __future__ import annotations

import argparse
import ast
import collections
import contextlib
import difflib
import errno
import fcntl
import heapq
import ipaddress
import itertools
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, NoReturn

from sockshock._audit import register_unix_path
from sockshock._errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidType,
    SockshockError,
    check_choice,
    check_number,
)
from sockshock._faults import _models
from sockshock._faults._core import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    NOTHING,
    RECV,
    SEND,
    Decision,
    FaultModel,
    Operation,
)
from sockshock._faults._plan import FaultPlan

__all__ = [
    "BUFFER",
    "HOLD_WINDOW",
    "FaultProxy",
    "ProxyError",
    "ProxyFactory",
    "format_address",
    "proxy_for",
    "proxy_main",
    "sockshock_proxy",
]

TRANSPORTS = ("tcp", "udp", "unix")
#: Bytes one direction of a stream connection holds before the proxy stops reading
#: its source (one read more at most).
BUFFER = 1024 * 1024
#: Seconds a held datagram waits at most for the later ones it is held behind.
HOLD_WINDOW = 0.02

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_CHUNK = 256 * 1024  # one read from a stream
_IOV = 64  # buffers per sendmsg()
_BATCH = 64  # accepts or datagrams per readiness report, then the others get a turn
_MAX_DATAGRAM = 65535
_ACCEPT_BACKOFF = 0.05  # out of descriptors: try accepting again after this
_UNIX_RETRY = 0.005  # a Unix listener's backlog was full (EAGAIN): connect again after this
_UNIX_TRIES = 200
_STOP_TIMEOUT = 5.0
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# Directions that no model looks at move through a kernel pipe with splice(2): the
# bytes never enter Python (Linux; elsewhere, or if splice fails, recv_into/send).
_SPLICE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_NO_SPLICE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM}
_SOURCE = "FaultProxy"


class ProxyError(SockshockError):
    """A :class:`FaultProxy` was used out of order (its address asked before
    ``start()``, a second ``start()``), or its I/O thread failed or would not stop
    (the cause is chained)."""


# -- arguments -------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _inet_address(name: str, value: Any, transport: str, lowest_port: int,
                  source: str) -> tuple[int, tuple[Any, ...]]:
    """Check a (host, port) address; return its family and the address to use."""
    if isinstance(value, (str, bytes, os.PathLike)):
        what = "a path" if isinstance(value, os.PathLike) else "a string"
        raise InvalidType(
            f"{name}={value!r} is {what}, but transport={transport!r} needs a (host, port) "
            f"tuple such as ('127.0.0.1', 8000); give transport='unix' for a Unix socket "
            f"path (from {source})")
    if not (isinstance(value, tuple) and len(value) in (2, 4) and isinstance(value[0], str)):
        raise InvalidType(f"expected a (host, port) tuple but got {name}={value!r} "
                          f"(type={type(value).__name__}) (from {source})")
    host, port = value[0], value[1]
    if not _is_loopback(host):
        raise InvalidArgument(
            f"{name}={value!r}: the proxy only uses loopback addresses (127.0.0.0/8, ::1, "
            f"localhost) and Unix paths (from {source})")
    check_number("port", port, low=lowest_port, high=65535, integer=True,
                 source=f"{name}={value!r} of {source}")
    if host == "localhost":
        host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, port, *value[2:])


def _unix_path(name: str, value: Any, source: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InvalidType(
            f"expected a Unix socket path (str) but got {name}={value!r} "
            f"(type={type(value).__name__}) for transport='unix' (from {source})")
    if not value:
        raise InvalidArgument(f"{name}={value!r}: the Unix socket path is empty (from {source})")
    return value


def _make_plan(faults: Any, seed: int | None, source: str) -> FaultPlan:
    if isinstance(faults, FaultPlan):
        if seed is not None:
            raise InvalidArgument(f"seed={seed!r} conflicts with the plan's own "
                                  f"seed={faults.seed}; give one or the other (from {source})")
        return faults
    if seed is not None:
        check_number("seed", seed, integer=True, source=source)
    if faults is None:
        return FaultPlan(seed=seed)
    if isinstance(faults, (list, tuple)):
        return FaultPlan(*faults, seed=seed)
    raise InvalidType(
        f"expected a FaultPlan or a list of fault models but got faults={faults!r} "
        f"(type={type(faults).__name__}) (from {source})")


def format_address(address: Any) -> str:
    """``127.0.0.1:8000``, ``[::1]:8000`` or a Unix path, as the CLI prints them."""
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def _reset(sock: socket.socket) -> None:
    """Close with RST (TCP); a Unix socket is simply closed."""
    if sock.family != getattr(socket, "AF_UNIX", None):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    sock.close()


def _mangle(data: bytes, decision: Decision) -> bytes:
    """Truncate, then flip bits -- what the fault layer does to a datagram."""
    if decision.truncate is not None:
        data = data[:decision.truncate]
    if decision.corrupt and data:
        flipped = bytearray(data)
        for bit in decision.corrupt:
            position = bit % (len(flipped) * 8)
            flipped[position // 8] ^= 1 << (position % 8)
        data = bytes(flipped)
    return data


# -- streams ---------------------------------------------------------------------------

_OPEN, _STALLED, _SHUT = 0, 1, 2


class _Pipe:
    """One direction of a proxied stream connection: what was read from ``src`` and
    not yet decided (``queue``), what was decided and not yet written to ``dst``
    (``out``)."""

    __slots__ = ("blocked", "concerned", "conn", "count", "dst", "dst_fd", "eof_asked",
                 "fin_next", "inpipe", "kind", "offset", "out", "outlen", "pipe",
                 "pipe_size", "queue", "queued", "splice", "src", "src_eof", "src_fd",
                 "state", "waiting")

    def __init__(self, conn: _StreamConnection, kind: str, src: socket.socket,
                 dst: socket.socket, concerned: bool) -> None:
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
        return (self.src_eof and self.state != _OPEN and not self.fin_next
                and not self.outlen and not self.inpipe)

    def read(self) -> None:
        if self.splice:
            self._splice_read()
            return
        scratch = self.conn.proxy._scratch
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
            n = os.splice(self.src_fd, self.pipe[1], self.pipe_size - self.inpipe,
                          flags=_SPLICE_FLAGS)
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
            decision = conn.proxy._ask(self.kind, conn.index, conn.address, size,
                                       self.offset, self.count)
        self.count += 1
        action = decision.action
        if action in ("reset", "shutdown"):
            if decision.delay > 0:  # as in the layer: the wait first, then the blow
                self.waiting = True
                conn.proxy._call_later(decision.delay, lambda: self._carry_out(action))
            else:
                self._carry_out(action)
            return
        if action == "stall":
            self.state = _STALLED
            return
        if action == "eof":
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
            conn.proxy._call_later(decision.delay, self.resume)

    def _carry_out(self, action: str) -> None:
        if self.conn.closed:
            return
        if action == "shutdown":
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


class _StreamConnection:
    """A client connection and the proxy's connection to the server for it."""

    __slots__ = ("address", "client", "client_events", "closed", "connected", "connecting",
                 "index", "inward", "outward", "proxy", "tries", "upstream",
                 "upstream_events")

    def __init__(self, proxy: FaultProxy, index: int, address: Any, client: socket.socket,
                 upstream: socket.socket) -> None:
        self.proxy = proxy
        self.index = index
        self.address = address
        self.client = client
        self.upstream = upstream
        self.connected = False
        self.connecting = False
        self.closed = False
        self.tries = 0
        self.client_events = 0
        self.upstream_events = 0
        self.inward = _Pipe(self, RECV, client, upstream, proxy._concerns[RECV])
        self.outward = _Pipe(self, SEND, upstream, client, proxy._concerns[SEND])

    # -- connecting upstream ------------------------------------------------------------

    def connect(self) -> None:
        self.tries += 1
        try:
            code = self.upstream.connect_ex(self.proxy.upstream)
        except OSError as exc:
            code = exc.errno or errno.ECONNREFUSED
        if code == 0:
            self._connected()
        elif code == errno.EINPROGRESS:
            self.connecting = True  # writable when done
        elif code == errno.EAGAIN and self.tries < _UNIX_TRIES:
            self.proxy._call_later(_UNIX_RETRY, self._retry)  # a Unix backlog was full
        else:  # refused: the client sees what a refused server looks like from afar
            self.close(reset=True)
        self.update()

    def _retry(self) -> None:
        if not self.closed:
            self.connect()

    def _connected(self) -> None:
        self.connected = True
        self.connecting = False
        self.inward.pump()
        if not self.closed:
            self.outward.pump()

    # -- readiness ------------------------------------------------------------------------

    def on_client(self, mask: int) -> None:
        if self.closed:
            return
        if mask & _READ and self.inward.wants_read:
            self.inward.read()
        if mask & _WRITE and self.outward.blocked and not self.closed:
            self.outward.writable()
        self.update()

    def on_upstream(self, mask: int) -> None:
        if self.closed:
            return
        if self.connecting:
            code = self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.close(reset=True)
                return
            self._connected()
        else:
            if mask & _READ and self.outward.wants_read:
                self.outward.read()
            if mask & _WRITE and self.inward.blocked and not self.closed:
                self.inward.writable()
        self.update()

    def update(self) -> None:
        """Register for what the pipes need now; close once both are finished."""
        if self.closed:
            return
        if self.inward.finished and self.outward.finished:
            self.close(reset=False)
            return
        client = 0
        upstream = 0
        if self.inward.wants_read:
            client |= _READ
        if self.outward.blocked:
            client |= _WRITE
        if self.connecting:
            upstream = _WRITE
        elif self.connected:
            if self.outward.wants_read:
                upstream |= _READ
            if self.inward.blocked:
                upstream |= _WRITE
        proxy = self.proxy
        if client != self.client_events:
            proxy._watch(self.client, self.client_events, client, self.on_client)
            self.client_events = client
        if upstream != self.upstream_events:
            proxy._watch(self.upstream, self.upstream_events, upstream, self.on_upstream)
            self.upstream_events = upstream

    def close(self, *, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        selector = self.proxy._selector
        for sock, events in ((self.client, self.client_events),
                             (self.upstream, self.upstream_events)):
            if events and selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(sock)
            if reset:
                _reset(sock)
            else:
                sock.close()
        self.inward.close_pipe()
        self.outward.close_pipe()
        self.client_events = self.upstream_events = 0
        self.proxy._connections.pop(self.index, None)


# -- datagrams ---------------------------------------------------------------------------


class _Peer:
    """One client address of a datagram proxy and its own socket towards the server
    (so that the server sees one peer per client and its replies find their way)."""

    __slots__ = ("address", "closed", "count", "index", "offset", "proxy", "upstream")

    def __init__(self, proxy: FaultProxy, index: int, address: Any,
                 upstream: socket.socket) -> None:
        self.proxy = proxy
        self.index = index
        self.address = address
        self.upstream = upstream
        self.offset = [0, 0]  # in, out
        self.count = [0, 0]
        self.closed = False

    def on_upstream(self, mask: int) -> None:
        self.proxy._on_reply(self)


class _Held:
    """A datagram held back behind ``countdown`` later ones."""

    __slots__ = ("copies", "countdown", "data", "kind", "peer")

    def __init__(self, countdown: int, peer: _Peer, kind: str, data: bytes, copies: int) -> None:
        self.countdown = countdown
        self.peer = peer
        self.kind = kind
        self.data = data
        self.copies = copies


# -- the proxy -------------------------------------------------------------------------------


class FaultProxy:
    """A TCP, UDP or Unix-stream proxy that applies a fault plan on the wire.

    Args:
        upstream: the server: ``(host, port)`` on loopback, or a Unix socket path
            with ``transport="unix"``.
        listen: where clients connect: default ``("127.0.0.1", 0)`` (the kernel
            picks a port), or for ``"unix"`` a path in a private temporary directory.
        faults: a :class:`~sockshock.faults.FaultPlan`, a list of fault models (made
            into a plan with ``seed``), or ``None`` for none.
        seed: the seed of the plan made from a list (default: random; always
            readable as ``proxy.plan.seed``).
        transport: ``"tcp"`` (default), ``"udp"`` or ``"unix"`` (Unix stream).

    Use it as a context manager (``with FaultProxy(...) as proxy:``) or call
    :meth:`start` and :meth:`stop`. Give clients :attr:`address`; read what was
    injected in ``proxy.plan.log`` / ``proxy.plan.describe()``.

    Raises:
        InvalidArgument: for an address other than loopback or a Unix path, a bad
            transport, a seed next to a ready plan.
        InvalidType: for arguments of the wrong type.
    """

    def __init__(self, upstream: Any, *, listen: Any = None,
                 faults: FaultPlan | list[Any] | tuple[Any, ...] | None = None,
                 seed: int | None = None, transport: str = "tcp") -> None:
        check_choice("transport", transport, TRANSPORTS, source=_SOURCE)
        self.transport: str = transport
        self._listen_path: str | None = None
        self._listen: tuple[Any, ...] | None = None
        if transport == "unix":
            self.upstream: Any = _unix_path("upstream", upstream, _SOURCE)
            self._upstream_family = int(socket.AF_UNIX)
            self._listen_family = int(socket.AF_UNIX)
            if listen is not None:
                self._listen_path = _unix_path("listen", listen, _SOURCE)
        else:
            family, self.upstream = _inet_address("upstream", upstream, transport, 1, _SOURCE)
            self._upstream_family = int(family)
            family, self._listen = _inet_address(
                "listen", ("127.0.0.1", 0) if listen is None else listen, transport, 0, _SOURCE)
            self._listen_family = int(family)
        #: The plan in force: ``plan.seed``, ``plan.log``, ``plan.describe()``.
        self.plan: FaultPlan = _make_plan(faults, seed, _SOURCE)
        #: Set when an AbruptShutdown fired: every connection was reset and the proxy
        #: stopped listening.
        self.shutdown_triggered = threading.Event()
        self._concerns = {kind: self.plan.concerns(kind)
                          for kind in (RECV, SEND, DATAGRAM_IN, DATAGRAM_OUT, ACCEPT)}
        self._lock = threading.Lock()
        self._state = "new"
        self._stopping = False
        self._done = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._listener: socket.socket | None = None  # stream listener or datagram socket
        self._listener_events = 0
        self._address: Any = None
        self._directory: str | None = None
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._next_index = 0
        self._connections: dict[int, _StreamConnection] = {}
        self._peers: dict[Any, _Peer] = {}
        self._held: dict[str, list[_Held]] = {DATAGRAM_IN: [], DATAGRAM_OUT: []}
        self._closed_all = False
        self._scratch = memoryview(bytearray(_CHUNK))  # every stream read lands here

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen and start forwarding (in one daemon I/O thread); returns the proxy.

        Raises:
            ProxyError: if the proxy was started before.
            OSError: if the listening address cannot be bound.
        """
        with self._lock:
            if self._state != "new":
                raise ProxyError(f"{self!r} was started before; a proxy starts once "
                                 "(make a new FaultProxy)")
            self._state = "running"
        try:
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, _READ, self._on_wake)
            self._open_listener()
        except BaseException:
            self._close_everything(reset=False)
            self._release()
            with self._lock:
                self._state = "stopped"
            self._done.set()
            raise
        self._thread = threading.Thread(
            target=self._run, daemon=True,
            name=f"sockshock proxy {format_address(self._address)} -> "
                 f"{format_address(self.upstream)}")
        self._thread.start()
        return self

    def _open_listener(self) -> None:
        if self.transport == "unix":
            if self._listen_path is None:
                self._directory = tempfile.mkdtemp(prefix="sockshock-proxy-")
                self._listen_path = os.path.join(self._directory, "proxy.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
            sock = socket.socket(self._listen_family, kind)
        self._listener = sock
        if self.transport == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        where: Any = self._listen_path if self.transport == "unix" else self._listen
        sock.bind(where)
        if self.transport == "unix":
            assert self._listen_path is not None
            register_unix_path(self._listen_path)
            self._address = self._listen_path
        else:
            self._address = sock.getsockname()[:2]
        if self.transport != "udp":
            sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
        self._watch_listener()

    def _watch_listener(self) -> None:
        if self._listener is None or self._stopping or self._listener_events:
            return
        callback = self._on_datagram if self.transport == "udp" else self._on_accept
        self._watch(self._listener, 0, _READ, callback)
        self._listener_events = _READ

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop forwarding and close every socket; never hangs.

        Connections still open are closed (a stalled direction's data is dropped),
        held and delayed datagrams are dropped. Calling it again does nothing.

        Args:
            timeout: seconds to wait for the I/O thread (it never blocks, so this
                is only a bound).

        Raises:
            ProxyError: if the I/O thread had failed (the cause chained), or did
                not stop within ``timeout`` (its sockets are closed anyway).
        """
        with self._lock:
            state, self._state = self._state, "stopped"
        if state == "stopped":
            return
        self._stopping = True
        self._wake()
        stuck = False
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            stuck = thread.is_alive()
        if stuck or thread is None:
            self._close_everything(reset=False)
        self._release()
        self._done.set()
        if self._failure is not None:
            raise ProxyError(f"the I/O thread of {self!r} failed: {self._failure!r}") \
                from self._failure
        if stuck:
            raise ProxyError(f"the I/O thread of {self!r} did not stop within {timeout:g} s; "
                             "its sockets were closed")

    def _release(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
        elif self.transport == "unix" and self._listen_path and self._address is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._listen_path)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the proxy has stopped forwarding (``stop()``, or an
        ``AbruptShutdown``); True if it has."""
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether the proxy is forwarding (started, not stopped, not shut down)."""
        return self._state == "running" and not self._done.is_set() and not self._stopping

    @property
    def address(self) -> Any:
        """The address to give clients: ``(host, port)``, or the Unix socket path."""
        if self._address is None:
            raise ProxyError(f"{self!r} has no address yet: call start() first "
                             "(or use it as a context manager)")
        return self._address

    def __enter__(self) -> FaultProxy:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.stop()
            return
        try:
            self.stop()
        except ProxyError as error:  # the body's exception wins; this one goes with it
            _add_note(exc, f"also, stopping the proxy failed: {error}")

    def __repr__(self) -> str:
        listen = self._address if self._address is not None else (
            self._listen_path or self._listen)
        return (f"FaultProxy({self.transport} {format_address(listen)} -> "
                f"{format_address(self.upstream)}, {self.plan!r})")

    # -- the I/O thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None
        timers = self._timers
        try:
            while not self._stopping:
                timeout = None
                if timers:
                    timeout = max(0.0, timers[0][0] - time.monotonic())
                for key, mask in selector.select(timeout):
                    key.data(mask)
                    if self._stopping:
                        break
                if timers and not self._stopping:
                    now = time.monotonic()
                    while timers and timers[0][0] <= now and not self._stopping:
                        heapq.heappop(timers)[2]()
        except BaseException as exc:  # a bug: stop() reports it
            self._failure = exc
        finally:
            self._close_everything(reset=False)
            self._done.set()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _on_wake(self, mask: int) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _watch(self, sock: socket.socket, old: int, new: int,
               callback: Callable[[int], None]) -> None:
        selector = self._selector
        assert selector is not None
        if not old:
            selector.register(sock, new, callback)
        elif not new:
            selector.unregister(sock)
        else:
            selector.modify(sock, new, callback)

    def _call_later(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._sequence), callback))

    def _ask(self, kind: str, index: int, address: Any, size: int, offset: int,
             count: int) -> Decision:
        return self.plan.decide(Operation(kind, index, address, size, offset, count,
                                          time.monotonic()))

    def _abrupt_shutdown(self) -> None:
        """AbruptShutdown: reset every connection, stop listening, end the loop."""
        self.shutdown_triggered.set()
        self._stopping = True
        self._close_everything(reset=True)

    def _close_everything(self, *, reset: bool) -> None:
        with self._lock:
            if self._closed_all:
                return
            self._closed_all = True
        for conn in list(self._connections.values()):
            conn.close(reset=reset)
        for peer in list(self._peers.values()):
            peer.closed = True
            peer.upstream.close()
        self._peers.clear()
        self._held = {DATAGRAM_IN: [], DATAGRAM_OUT: []}
        self._timers.clear()
        if self._listener is not None:
            self._listener.close()
        if self._selector is not None:
            self._selector.close()

    # -- streams -------------------------------------------------------------------------------

    def _on_accept(self, mask: int) -> None:
        listener = self._listener
        assert listener is not None
        for _ in range(_BATCH):
            if self._stopping:
                return
            try:
                client, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                # Out of descriptors: leave the client in the backlog and try again
                # later instead of spinning on a listener that stays readable.
                self._watch(listener, self._listener_events, 0, self._on_accept)
                self._listener_events = 0
                self._call_later(_ACCEPT_BACKOFF, self._watch_listener)
                return
            self._admit(client, address)

    def _admit(self, client: socket.socket, address: Any) -> None:
        client.setblocking(False)
        if self._concerns[ACCEPT]:
            decision = self._ask(ACCEPT, self._next_index, None, 0, 0, 0)
            if decision.action == "error":
                _reset(client)  # refused: no connection upstream, no index used
                return
        try:
            upstream = socket.socket(self._upstream_family, socket.SOCK_STREAM)
        except OSError:
            _reset(client)
            return
        upstream.setblocking(False)
        if self.transport == "tcp":
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        index = self._next_index
        self._next_index += 1
        conn = _StreamConnection(self, index, address, client, upstream)
        self._connections[index] = conn
        conn.connect()

    # -- datagrams -----------------------------------------------------------------------------

    def _on_datagram(self, mask: int) -> None:
        front = self._listener
        assert front is not None
        for _ in range(_BATCH):
            if self._stopping:
                return
            try:
                data, address = front.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an error queued on the socket (ICMP): reported once
                continue
            peer = self._peers.get(address)
            if peer is None:
                peer = self._new_peer(address)
                if peer is None:
                    continue  # out of descriptors: the datagram is lost
            self._datagram(peer, DATAGRAM_IN, data)

    def _new_peer(self, address: Any) -> _Peer | None:
        try:
            upstream = socket.socket(self._upstream_family, socket.SOCK_DGRAM)
        except OSError:
            return None
        try:
            upstream.setblocking(False)
            upstream.connect(self.upstream)
        except OSError:
            upstream.close()
            return None
        peer = _Peer(self, self._next_index, address, upstream)
        self._next_index += 1
        self._peers[address] = peer
        self._watch(upstream, 0, _READ, peer.on_upstream)
        return peer

    def _on_reply(self, peer: _Peer) -> None:
        for _ in range(_BATCH):
            if peer.closed or self._stopping:
                return
            try:
                data = peer.upstream.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNREFUSED: nobody listened to what was forwarded
                continue
            self._datagram(peer, DATAGRAM_OUT, data)

    def _datagram(self, peer: _Peer, kind: str, data: bytes) -> None:
        side = 0 if kind == DATAGRAM_IN else 1
        decision = NOTHING
        if self._concerns[kind]:
            decision = self._ask(kind, peer.index, peer.address, len(data), peer.offset[side],
                                 peer.count[side])
        peer.count[side] += 1
        peer.offset[side] += len(data)
        if decision is NOTHING:
            self._deliver(peer, kind, data, 1, 0)
            return
        if decision.action == "shutdown":
            self._abrupt_shutdown()
            return
        if decision.action == "drop":
            return
        data = _mangle(data, decision)
        copies = 1 + decision.duplicate
        hold = decision.hold
        if decision.delay > 0:
            self._call_later(decision.delay,
                             lambda: self._deliver(peer, kind, data, copies, hold))
        else:
            self._deliver(peer, kind, data, copies, hold)

    def _deliver(self, peer: _Peer, kind: str, data: bytes, copies: int, hold: int) -> None:
        if peer.closed:
            return
        held = self._held[kind]
        if hold:
            item = _Held(hold, peer, kind, data, copies)
            held.append(item)
            self._call_later(HOLD_WINDOW, lambda: self._release_held(item))
            return
        self._emit(peer, kind, data, copies)
        if held:
            due = []
            for item in held:
                item.countdown -= 1
                if item.countdown <= 0:
                    due.append(item)
            for item in due:
                self._release_held(item)

    def _release_held(self, item: _Held) -> None:
        held = self._held[item.kind]
        if item in held:
            held.remove(item)
            if not item.peer.closed:
                self._emit(item.peer, item.kind, item.data, item.copies)

    def _emit(self, peer: _Peer, kind: str, data: bytes, copies: int) -> None:
        front = self._listener
        assert front is not None
        for _ in range(copies):
            try:
                if kind == DATAGRAM_IN:
                    peer.upstream.send(data)
                else:
                    front.sendto(data, peer.address)
            except OSError:  # a full buffer, a closed port: lost, as UDP loses it
                return


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


# -- helpers for tests ----------------------------------------------------------------------------


@contextlib.contextmanager
def proxy_for(upstream: Any, *, listen: Any = None,
              faults: FaultPlan | list[Any] | tuple[Any, ...] | None = None,
              seed: int | None = None, transport: str = "tcp") -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of ``upstream`` for the length of a ``with``
    block (any server: in this process, in a subprocess, in another language).

    Args:
        upstream: the server's ``(host, port)`` on loopback, or its Unix path
            (``transport="unix"``).
        listen: see :class:`FaultProxy`.
        faults: a FaultPlan or a list of fault models.
        seed: the seed of a plan made from a list.
        transport: ``"tcp"``, ``"udp"`` or ``"unix"``.

    Yields:
        The running proxy: give clients ``proxy.address``; ``proxy.plan.log`` is
        what was injected.
    """
    with FaultProxy(upstream, listen=listen, faults=faults, seed=seed,
                    transport=transport) as proxy:
        yield proxy


class ProxyFactory:
    """What the ``sockshock_proxy`` fixture gives a test: call it to put a proxy in
    front of any address; every proxy it started is stopped at teardown.

    Args:
        seed: the seed of plans made from a list of models (the test's seed when
            the plugin provides it; default: random per proxy).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        #: The proxies started so far, in order.
        self.proxies: list[FaultProxy] = []

    def __call__(self, upstream: Any, *,
                 faults: FaultPlan | list[Any] | tuple[Any, ...] | None = None,
                 seed: int | None = None, transport: str = "tcp",
                 listen: Any = None) -> FaultProxy:
        """Start a proxy in front of ``upstream``; clients connect to its ``.address``."""
        if seed is None and not isinstance(faults, FaultPlan):
            seed = self.seed
        proxy = FaultProxy(upstream, listen=listen, faults=faults, seed=seed,
                           transport=transport)
        proxy.start()
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        """Stop every proxy (last first); then raise the first failure, if any."""
        errors: list[ProxyError] = []
        while self.proxies:
            try:
                self.proxies.pop().stop()
            except ProxyError as exc:
                errors.append(exc)
        if errors:
            first, *rest = errors
            for other in rest:
                _add_note(first, f"also: {other}")
            raise first

    def report(self) -> str:
        """Each proxy's plan and log, for a failing test's report."""
        return "\n".join(f"{proxy!r}:\n{proxy.plan.describe()}" for proxy in self.proxies)


def sockshock_proxy(seed: int | None = None) -> Iterator[ProxyFactory]:
    """Fixture function (the plugin registers it): ``sockshock_proxy(upstream,
    faults=[...], transport="tcp")`` starts a :class:`FaultProxy` in front of any
    address -- a server in a subprocess included -- and returns it (give clients
    its ``.address``). Every proxy is stopped at teardown.

    Args:
        seed: the seed for plans made from a list of models (pytest leaves
            arguments with defaults alone; the plugin passes the test's seed).

    Yields:
        A :class:`ProxyFactory`.
    """
    factory = ProxyFactory(seed)
    try:
        yield factory
    finally:
        factory.close()


# -- sockshock proxy (the command line) --------------------------------------------------------

_MODELS: dict[str, type[FaultModel]] = {name: getattr(_models, name) for name in _models.__all__}


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def parse_fault(text: str, *, source: str = "--fault") -> FaultModel:
    """A fault model from its Python spelling, e.g. ``"PartialReads(3)"`` or
    ``"Latency(0.01, direction='out')"`` (literal arguments only; nothing is
    evaluated).

    Raises:
        InvalidArgument: naming the text and what is wrong with it.
    """
    where = f"{source} {text!r}"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        tree = None
    call = tree.body if tree is not None else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise InvalidArgument(f"{where}: expected a fault model call such as 'PartialReads(3)'")
    cls = _MODELS.get(call.func.id)
    if cls is None:
        close = difflib.get_close_matches(call.func.id, list(_MODELS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidArgument(f"{where}: unknown fault model {call.func.id!r}; {hint}"
                              f"known: {', '.join(sorted(_MODELS))}")
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise ValueError("**")
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except ValueError:
        raise InvalidArgument(f"{where}: arguments must be literals (numbers, strings, "
                              "lists), given by position or name") from None
    try:
        return cls(*args, **kwargs)
    except ConfigurationError as exc:
        raise InvalidArgument(f"{where}: {exc}") from None
    except TypeError as exc:
        raise InvalidArgument(f"{where}: {exc}") from None


def _parse_address(text: str, transport: str, option: str) -> Any:
    if transport == "unix":
        if not text:
            raise InvalidArgument(f"{option}={text!r}: expected a Unix socket path")
        return text
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit():
        raise InvalidArgument(f"{option}={text!r}: expected HOST:PORT such as "
                              "127.0.0.1:8000 ([::1]:8000 for IPv6)")
    return (host, int(port))


def _proxy_parser() -> _Parser:
    parser = _Parser(
        prog="sockshock proxy",
        description="Forward clients to a server on loopback (or a Unix socket) and "
                    "inject faults on the way. Prints the address to connect to, then "
                    "runs until SIGINT or SIGTERM and prints the fault log.")
    parser.add_argument("--listen", metavar="HOST:PORT|PATH", default=None,
                        help="where clients connect (default 127.0.0.1:0, or with --unix a "
                             "path in a private temporary directory)")
    parser.add_argument("--upstream", metavar="HOST:PORT|PATH", required=True,
                        help="the server (loopback, or a Unix socket path with --unix)")
    transports = parser.add_mutually_exclusive_group()
    transports.add_argument("--udp", action="store_true", help="proxy datagrams (UDP)")
    transports.add_argument("--unix", action="store_true", help="proxy a Unix stream socket")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="the fault seed (default: random, printed)")
    parser.add_argument("--fault", action="append", default=[], metavar="MODEL",
                        help="a fault model as in Python, e.g. 'PartialReads(3)' or "
                             "\"Latency(0.01, direction='out')\"; repeatable")
    return parser


def proxy_main(argv: Sequence[str] | None = None) -> int:
    """``sockshock proxy``: run a fault proxy until SIGINT or SIGTERM.

    Prints the listening address (``127.0.0.1:PORT``, ``[::1]:PORT`` or the Unix
    path) as one flushed line on stdout, the seed and models on stderr, and the
    fault log on stdout at exit. An ``AbruptShutdown`` ends it too.

    Args:
        argv: the arguments after ``proxy`` (default: ``sys.argv[1:]``).

    Returns:
        0 after a signal or an abrupt shutdown; 2 for a usage error (one line on
        stderr); 1 if the proxy could not listen or failed.
    """
    try:
        args = _proxy_parser().parse_args(argv)
        transport = "udp" if args.udp else "unix" if args.unix else "tcp"
        upstream = _parse_address(args.upstream, transport, "--upstream")
        listen = None if args.listen is None else _parse_address(args.listen, transport,
                                                                 "--listen")
        models = [parse_fault(text) for text in args.fault]
        proxy = FaultProxy(upstream, listen=listen, faults=models, seed=args.seed,
                           transport=transport)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except (_UsageError, ConfigurationError) as exc:
        print(f"sockshock proxy: error: {exc}", file=sys.stderr)
        return 2
    try:
        proxy.start()
    except OSError as exc:
        print(f"sockshock proxy: error: cannot listen on "
              f"{args.listen or 'the default address'}: {exc}", file=sys.stderr)
        return 1
    code = 0
    restore: dict[signal.Signals, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            def on_signal(signum: int, frame: FrameType | None) -> None:
                proxy._stopping = True
                proxy._wake()

            for signum in (signal.SIGINT, signal.SIGTERM):
                restore[signum] = signal.signal(signum, on_signal)
        print(format_address(proxy.address), flush=True)
        models_text = ", ".join(m.describe() for m in proxy.plan.models) or "none"
        print(f"sockshock proxy: {transport} {format_address(proxy.address)} -> "
              f"{format_address(proxy.upstream)}, seed {proxy.plan.seed}, faults: "
              f"{models_text}", file=sys.stderr, flush=True)
        proxy.wait()
    finally:
        for signum, handler in restore.items():
            signal.signal(signum, handler)
        try:
            proxy.stop()
        except ProxyError as exc:
            print(f"sockshock proxy: error: {exc}", file=sys.stderr)
            code = 1
        print(proxy.plan.describe(), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(proxy_main())

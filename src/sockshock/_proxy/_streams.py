"""Stream connections of the fault proxy: accepting clients (``AcceptErrors``), the
proxy's own connection to the server for each, and their life cycle.

A :class:`StreamConnection` pairs a client's socket with one towards the server
and a :class:`~sockshock._proxy._pipe.Pipe` per direction; it connects upstream
(a refused server: the client is reset), registers for what its pipes need and
closes once both are finished. While both directions only forward, readiness
goes straight to the splice (:meth:`Pipe.forward`): no re-registration, no
bookkeeping. The :class:`Acceptor` is the stream side of a proxy: its listening
socket, and the connections numbered in accept order.

A proxy that would connect to itself is caught: the local address of every
upstream connection the proxies of this process make is remembered with the
proxies its client passed through (:data:`OWN_UPSTREAMS`); a client arriving at a
proxy it already passed through is turned away with a reset, once, instead of
looping until the descriptors run out (a chain of proxies is fine).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from typing import Any

from sockshock._faults import ACCEPT, ERROR, RECV, SEND
from sockshock._proxy._loop import BATCH, READ, WRITE, Hub
from sockshock._proxy._pipe import Pipe
from sockshock._util import ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, ACCEPT_RESOURCE_ERRNOS

__all__ = ["OWN_UPSTREAMS", "Acceptor", "StreamConnection", "reset_socket"]

#: Every upstream connection the proxies of this process have open, as (its local
#: (host, port), the (host, port) it connected to), and the proxies (ids) its
#: client passed through: a client coming from one of them to a proxy in that set
#: is a proxy forwarding to itself (directly, or through other proxies).
OWN_UPSTREAMS: dict[Any, frozenset[int]] = {}

_UNIX_RETRY = 0.005  # a Unix listener's backlog was full (EAGAIN): connect again after this
_UNIX_TRIES = 200
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_ACCEPT_BACKOFF = 0.05  # out of descriptors: try accepting again after this


def reset_socket(sock: socket.socket) -> None:
    """Close with RST (TCP); a Unix socket is simply closed (it has no RST)."""
    if sock.family != getattr(socket, "AF_UNIX", None):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    sock.close()


class StreamConnection:
    """A client connection and the proxy's connection to the server for it."""

    __slots__ = (
        "acceptor",
        "address",
        "client",
        "client_events",
        "closed",
        "connected",
        "connecting",
        "fast",
        "index",
        "inward",
        "local",
        "outward",
        "path",
        "proxy",
        "tries",
        "upstream",
        "upstream_events",
    )

    def __init__(
        self,
        acceptor: Acceptor,
        index: int,
        address: Any,
        client: socket.socket,
        upstream: socket.socket,
    ) -> None:
        self.acceptor = acceptor
        self.proxy: Hub = acceptor.hub
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
        self.fast = False  # nothing held back either way: readiness goes to Pipe.forward()
        self.local: Any = None  # the upstream socket's own address (TCP)
        self.path: frozenset[int] = frozenset()  # the proxies the client came through
        concerns = self.proxy._concerns
        self.inward = Pipe(self, RECV, client, upstream, concerns[RECV], True)
        self.outward = Pipe(self, SEND, upstream, client, concerns[SEND], concerns["close"])

    # -- connecting upstream ------------------------------------------------------------

    def connect(self) -> None:
        self.tries += 1
        try:
            code = self.upstream.connect_ex(self.proxy.upstream)
        except OSError as exc:
            code = exc.errno or errno.ECONNREFUSED
        if self.local is None and self.acceptor.nodelay:
            with contextlib.suppress(OSError):
                self.local = (self.upstream.getsockname()[:2], tuple(self.proxy.upstream[:2]))
                OWN_UPSTREAMS[self.local] = self.path
        if code == 0:
            self._connected()
        elif code == errno.EINPROGRESS:
            self.connecting = True  # writable when done
        elif code == errno.EAGAIN and self.tries < _UNIX_TRIES:
            self.proxy._loop.call_later(_UNIX_RETRY, self._retry)  # a Unix backlog was full
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
        if self.fast and mask == READ:
            if not self.inward.forward():
                self.update()
            return
        if self.closed:
            return
        if mask & READ and self.inward.wants_read:
            self.inward.read()
        if mask & WRITE and self.outward.blocked and not self.closed:
            self.outward.writable()
        self.update()

    def on_upstream(self, mask: int) -> None:
        if self.fast and mask == READ:
            if not self.outward.forward():
                self.update()
            return
        if self.closed:
            return
        if self.connecting:
            code = self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.close(reset=True)
                return
            self._connected()
        else:
            if mask & READ and self.outward.wants_read:
                self.outward.read()
            if mask & WRITE and self.inward.blocked and not self.closed:
                self.inward.writable()
        self.update()

    def update(self) -> None:
        """Register for what the pipes need now; close once both are finished."""
        if self.closed:
            return
        inward, outward = self.inward, self.outward
        if inward.finished and outward.finished:
            self.close(reset=False)
            return
        self.fast = self.connected and inward.plain and outward.plain
        client = 0
        upstream = 0
        if self.inward.wants_read:
            client |= READ
        if self.outward.blocked:
            client |= WRITE
        if self.connecting:
            upstream = WRITE
        elif self.connected:
            if self.outward.wants_read:
                upstream |= READ
            if self.inward.blocked:
                upstream |= WRITE
        loop = self.proxy._loop
        if client != self.client_events:
            loop.watch(self.client, self.client_events, client, self.on_client)
            self.client_events = client
        if upstream != self.upstream_events:
            loop.watch(self.upstream, self.upstream_events, upstream, self.on_upstream)
            self.upstream_events = upstream

    def close(self, *, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for sock, events, callback in (
            (self.client, self.client_events, self.on_client),
            (self.upstream, self.upstream_events, self.on_upstream),
        ):
            if events:
                self.proxy._loop.watch(sock, events, 0, callback)
            if reset:
                reset_socket(sock)
            else:
                sock.close()
        self.fast = False
        self.inward.close_own()
        self.outward.close_own()
        if self.local is not None:
            OWN_UPSTREAMS.pop(self.local, None)
        self.client_events = self.upstream_events = 0
        self.acceptor.connections.pop(self.index, None)
        self.proxy._ended(self.index)

    def replan(self, *, inward: bool = True, outward: bool = True) -> None:
        """A new plan took over (on the I/O thread); ``inward``, ``outward``: whether
        it changed the models of that direction (one it did not goes on as it was)."""
        if self.closed:
            return
        concerns = self.proxy._concerns
        if inward:
            self.inward.replan(concerns[RECV], True)
        if outward and not self.closed:
            self.outward.replan(concerns[SEND], concerns["close"])
        self.update()


class Acceptor:
    """The stream side of a proxy: its listening socket and a
    :class:`StreamConnection` per accepted client, numbered in accept order.

    Args:
        hub: the proxy (decisions, the loop).
        listener: the bound, listening, non-blocking socket clients connect to.
        family: the address family of the server's address.
        nodelay: set ``TCP_NODELAY`` on both sockets of a connection (TCP).
    """

    def __init__(self, hub: Hub, listener: socket.socket, family: int, *, nodelay: bool) -> None:
        self.hub = hub
        self.listener = listener
        self.family = family
        self.nodelay = nodelay
        #: The open connections by index.
        self.connections: dict[int, StreamConnection] = {}
        self.next_index = 0
        self.events = 0  # what the listener is polled for
        self.disabled = False  # (the proxy's switch)
        #: The (host, port) clients connect to (TCP; None for Unix).
        self.address: Any = listener.getsockname()[:2] if nodelay else None
        #: A client whose accept an ``AcceptErrors`` decision failed, waiting for the
        #: retry -- as it would wait in the server's backlog -- with its address, the
        #: proxies it came through and the back-off so far.
        self.held: tuple[socket.socket, Any, frozenset[int], float] | None = None

    def watch(self) -> None:
        """Poll the listener (again, after running out of descriptors)."""
        loop = self.hub._loop
        if loop.stopping or self.events or self.disabled or self.held is not None:
            return
        loop.watch(self.listener, 0, READ, self.on_listener)
        self.events = READ

    def unwatch(self) -> None:
        """Stop polling the listener (the proxy is disabled)."""
        if self.events:
            self.hub._loop.watch(self.listener, self.events, 0, self.on_listener)
            self.events = 0

    def on_listener(self, mask: int) -> None:
        """The listener is readable: accept the clients waiting (a batch of them)."""
        listener = self.listener
        loop = self.hub._loop
        for _ in range(BATCH):
            if loop.stopping or self.held is not None:  # (an accept error: held back)
                return
            try:
                client, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in ACCEPT_RESOURCE_ERRNOS:
                    raise
                # Out of descriptors: leave the client in the backlog and try again
                # later instead of spinning on a listener that stays readable.
                loop.watch(listener, self.events, 0, self.on_listener)
                self.events = 0
                loop.call_later(_ACCEPT_BACKOFF, self.watch)
                return
            self._admit(client, address)

    def _admit(self, client: socket.socket, address: Any) -> None:
        client.setblocking(False)
        hub = self.hub
        path = frozenset((id(hub),))
        if address:  # (TCP) from a proxy of this process?
            came = OWN_UPSTREAMS.get((address[:2], self.address))
            if came is not None:
                if id(hub) in came:  # a proxy forwarding to itself
                    reset_socket(client)
                    hub._loop_detected(address)
                    return
                path |= came
        self._decide(client, address, path, 0.0)

    def _decide(
        self, client: socket.socket, address: Any, path: frozenset[int], backoff: float
    ) -> None:
        """Ask the plan whether the server's accept() of ``client`` fails. It fails as
        the server's own would: nothing reaches the client, which waits as in the
        backlog, and the proxy stops accepting until it tries again -- at once, or
        after a doubling back-off for a resource error (EMFILE...), as
        ``sockshock.socketserver`` does."""
        hub = self.hub
        if hub._concerns[ACCEPT]:
            decision = hub._ask(ACCEPT, self.next_index, None, 0, 0, 0, time.monotonic())
            if decision.action == ERROR:  # no connection upstream, no index used
                if decision.errno in ACCEPT_RESOURCE_ERRNOS:
                    backoff = min(backoff * 2 or ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX)
                else:
                    backoff = 0.0
                self.held = (client, address, path, backoff)
                loop = hub._loop
                if self.events:  # accept no one else meanwhile
                    loop.watch(self.listener, self.events, 0, self.on_listener)
                    self.events = 0
                loop.call_later(backoff, self._retry)
                return
        self._connect(client, address, path)

    def _retry(self) -> None:
        held, self.held = self.held, None
        if held is None or held[0].fileno() == -1:  # closed meanwhile (stop, disable)
            self.watch()
            return
        client, address, path, backoff = held
        self._decide(client, address, path, backoff)
        if self.held is None:
            self.watch()

    def _connect(self, client: socket.socket, address: Any, path: frozenset[int]) -> None:
        """Connect ``client`` upstream: a new connection, with the next index."""
        try:
            upstream = socket.socket(self.family, socket.SOCK_STREAM)
        except OSError:
            reset_socket(client)
            return
        upstream.setblocking(False)
        if self.nodelay:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        index = self.next_index
        self.next_index += 1
        conn = StreamConnection(self, index, address, client, upstream)
        conn.path = path
        self.connections[index] = conn
        conn.connect()

    def close(self, *, reset: bool) -> None:
        """Close every connection (``reset``: with RST); the listener is the proxy's."""
        held, self.held = self.held, None
        if held is not None:  # its accept never succeeded: as the backlog's, reset
            reset_socket(held[0])
        for conn in list(self.connections.values()):
            conn.close(reset=reset)

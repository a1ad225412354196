"""Datagram relaying for the fault proxy (UDP).

Clients send to one front socket; the proxy gives each client address its own
socket connected to the server, so that the server sees one peer per client and
its answers come back on the socket that names the client. Each datagram is one
operation (``datagram_in`` towards the server, ``datagram_out`` back); peers are
numbered in order of first appearance, as the fault layer numbers them. A decision
is carried out as the layer carries it out -- ``drop``, ``duplicate``, ``corrupt``,
``truncate`` -- after its ``delay`` (a timer: other datagrams go on). ``hold``
(reordering) keeps a datagram back until that many later ones of its direction have
gone, however far apart they come (a request sent once and answered is held until
the client sends again -- its retry overtakes it); one still held after
:data:`HOLD_WINDOW` seconds goes then, so that nothing is held for ever.

A client address that sends nothing and gets nothing for ``DATAGRAM_PEER_IDLE``
seconds (``sockshock._util``: two minutes, what RFC 4787 asks of a NAT, and the
fault layer's own rule for a datagram peer) is forgotten: its socket towards the
server is closed (what the server sends to it later is lost, as a NAT forgets a
mapping), and the next datagram from it starts a new client with a new index.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from sockshock._faults import DATAGRAM_IN, DATAGRAM_OUT, DROP, NOTHING, SHUTDOWN
from sockshock._proxy._loop import BATCH, READ, Hub
from sockshock._proxy._streams import OWN_UPSTREAMS
from sockshock._util import DATAGRAM_PEER_IDLE
from sockshock._wire import mangle

__all__ = ["HOLD_WINDOW", "DatagramRelay"]

#: Seconds a held datagram waits at most for the later ones it is held behind.
HOLD_WINDOW = 10.0

_MAX_DATAGRAM = 65535


class _Peer:
    """One client address of a datagram proxy and its own socket towards the server
    (so that the server sees one peer per client and its replies find their way)."""

    __slots__ = (
        "address",
        "closed",
        "count",
        "index",
        "local",
        "offset",
        "relay",
        "seen",
        "upstream",
    )

    def __init__(
        self, relay: DatagramRelay, index: int, address: Any, upstream: socket.socket
    ) -> None:
        self.relay = relay
        self.index = index
        self.address = address
        self.upstream = upstream
        self.offset = [0, 0]  # in, out
        self.count = [0, 0]
        self.closed = False
        self.seen = time.monotonic()  # the last datagram either way
        self.local: Any = None  # its socket's own address

    def on_upstream(self, mask: int) -> None:
        self.relay.on_reply(self)


class _Held:
    """A datagram held back behind ``countdown`` later ones."""

    __slots__ = ("copies", "countdown", "data", "kind", "peer")

    def __init__(self, countdown: int, peer: _Peer, kind: str, data: bytes, copies: int) -> None:
        self.countdown = countdown
        self.peer = peer
        self.kind = kind
        self.data = data
        self.copies = copies


class DatagramRelay:
    """The datagram side of a proxy: the front socket and a peer per client address.

    Args:
        hub: the proxy (decisions, the loop: timers and the selector).
        front: the bound, non-blocking socket clients send to.
        family: the address family of the server's address.
    """

    def __init__(self, hub: Hub, front: socket.socket, family: int) -> None:
        self.hub = hub
        self.front = front
        self.family = family
        self.peers: dict[Any, _Peer] = {}
        self.held: dict[str, list[_Held]] = {DATAGRAM_IN: [], DATAGRAM_OUT: []}
        self.next_index = 0
        self.closed = False
        self.disabled = False  # (the proxy's switch): datagrams are dropped
        self.address = front.getsockname()[:2]  # where clients send
        self._sweeping = False

    def watch(self) -> None:
        """Start reading what clients send."""
        self.hub._loop.watch(self.front, 0, READ, self.on_front)

    def close(self) -> None:
        """Close every peer's socket; held and delayed datagrams are dropped."""
        self.closed = True
        self.forget_all()

    def forget_all(self) -> None:
        """Forget every client (their sockets closed, held datagrams dropped)."""
        for peer in list(self.peers.values()):
            self._forget(peer)
        self.held = {DATAGRAM_IN: [], DATAGRAM_OUT: []}

    def _forget(self, peer: _Peer) -> None:
        if peer.local is not None:
            OWN_UPSTREAMS.pop(peer.local, None)
        peer.closed = True
        self.hub._loop.watch(peer.upstream, READ, 0, peer.on_upstream)
        peer.upstream.close()
        self.peers.pop(peer.address, None)
        self.hub._ended(peer.index)

    def _sweep(self) -> None:
        """Forget the clients idle for DATAGRAM_PEER_IDLE seconds (a timer while any is known)."""
        self._sweeping = False
        if self.closed:
            return
        now = time.monotonic()
        for peer in list(self.peers.values()):
            if now - peer.seen >= DATAGRAM_PEER_IDLE:
                for kind in (DATAGRAM_IN, DATAGRAM_OUT):  # what it held goes now
                    for item in [h for h in self.held[kind] if h.peer is peer]:
                        self._release_held(item)
                self._forget(peer)
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        if self.peers and not self._sweeping:
            self._sweeping = True
            self.hub._loop.call_later(DATAGRAM_PEER_IDLE / 4, self._sweep)

    def on_front(self, mask: int) -> None:
        """The front socket is readable: datagrams from clients."""
        front = self.front
        for _ in range(BATCH):
            if self.closed:
                return
            try:
                data, address = front.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an error queued on the socket (ICMP): reported once
                continue
            if self.disabled:
                continue
            peer = self.peers.get(address)
            if peer is None:
                path = frozenset((id(self.hub),))
                came = OWN_UPSTREAMS.get((address[:2], self.address))
                if came is not None:
                    if id(self.hub) in came:  # a proxy forwarding to itself
                        self.hub._loop_detected(address)
                        continue
                    path |= came
                peer = self._peer(address, path)
                if peer is None:
                    continue  # out of descriptors: the datagram is lost
            self._datagram(peer, DATAGRAM_IN, data)

    def _peer(self, address: Any, path: frozenset[int]) -> _Peer | None:
        try:
            upstream = socket.socket(self.family, socket.SOCK_DGRAM)
        except OSError:
            return None
        try:
            upstream.setblocking(False)
            upstream.connect(self.hub.upstream)
        except OSError:
            upstream.close()
            return None
        peer = _Peer(self, self.next_index, address, upstream)
        try:
            peer.local = (upstream.getsockname()[:2], tuple(self.hub.upstream[:2]))
            OWN_UPSTREAMS[peer.local] = path
        except OSError:
            pass
        self.next_index += 1
        self.peers[address] = peer
        self.hub._loop.watch(upstream, 0, READ, peer.on_upstream)
        self._schedule_sweep()
        return peer

    def on_reply(self, peer: _Peer) -> None:
        """The server answered a client."""
        for _ in range(BATCH):
            if peer.closed or self.closed:
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
        now = peer.seen = time.monotonic()
        decision = NOTHING
        if self.hub._concerns[kind]:
            decision = self.hub._ask(
                kind, peer.index, peer.address, len(data), peer.offset[side], peer.count[side], now
            )
        peer.count[side] += 1
        peer.offset[side] += len(data)
        if decision is NOTHING:
            self._deliver(peer, kind, data, 1, 0)
            return
        if decision.action == SHUTDOWN:
            self.hub._abrupt_shutdown()
            return
        if decision.action == DROP:
            return
        data = mangle(data, decision)  # as the layer does it
        copies = 1 + decision.duplicate
        hold = decision.hold
        if decision.delay > 0:
            self.hub._loop.call_later(
                decision.delay, lambda: self._deliver(peer, kind, data, copies, hold)
            )
        else:
            self._deliver(peer, kind, data, copies, hold)

    def _deliver(self, peer: _Peer, kind: str, data: bytes, copies: int, hold: int) -> None:
        if peer.closed:
            return
        held = self.held[kind]
        if hold:
            item = _Held(hold, peer, kind, data, copies)
            held.append(item)
            self.hub._loop.call_later(HOLD_WINDOW, lambda: self._release_held(item))
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
        held = self.held[item.kind]
        if item in held:
            held.remove(item)
            if not item.peer.closed:
                self._emit(item.peer, item.kind, item.data, item.copies)

    def _emit(self, peer: _Peer, kind: str, data: bytes, copies: int) -> None:
        front = self.front
        for _ in range(copies):
            try:
                if kind == DATAGRAM_IN:
                    peer.upstream.send(data)
                else:
                    front.sendto(data, peer.address)
            except OSError:  # a full buffer, a closed port: lost, as UDP loses it
                return

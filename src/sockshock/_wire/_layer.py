"""FaultLayer: a socket layer that asks a FaultPlan about every operation.

The layer numbers connections (stream: in accept order; datagram: peers in order
of first appearance), turns each socket operation into an
:class:`~sockshock.faults.Operation`, asks the plan, and hands the decision to the
socket that carries it out (``_stream``, ``_datagram``). It keeps nothing for a
connection once it has ended -- a stream connection when the last socket on it
closes, a datagram peer after :data:`DATAGRAM_PEER_IDLE` seconds of silence or when
more than :data:`DATAGRAM_PEERS_KEPT` are known (the least recently seen goes; if
it comes back, it is a new peer, numbered anew, as behind a NAT) -- and tells the
plan (``FaultPlan.connection_ended``), so that a long run keeps its memory flat.
Decisions taken in forked children reach the parent's log through a
:class:`ForkChannel`. An ``AbruptShutdown`` only *signals*
(:attr:`FaultLayer.shutdown_triggered`, and the :attr:`FaultLayer.on_abrupt_shutdown`
callback): whoever owns the server stops it.
"""

from __future__ import annotations

import os
import socket
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sockshock._faults import (
    NOTHING,
    PLAINTEXT,
    SHUTDOWN,
    WIRE,
    Decision,
    FaultPlan,
    Operation,
    make_plan,
)
from sockshock._util import (
    DATAGRAM_PEER_IDLE,
    DATAGRAM_PEERS_KEPT,
    Clock,
    exported_by,
    resolve_clock,
)
from sockshock._wire._forks import ForkChannel
from sockshock._wire._socket import Connection, FaultySocket

__all__ = ["FaultLayer"]

_Socket = socket.socket  # the class: inside FaultLayer, "socket" is the method

_IN = {"recv": "in", "datagram_in": "in"}  # every other kind is "out" (or accept)

_LIVE_LAYERS: weakref.WeakSet[FaultLayer] = weakref.WeakSet()


def _before_fork() -> None:
    for layer in list(_LIVE_LAYERS):
        if layer.active:
            layer._channel.open()


def _after_fork_in_child() -> None:
    for layer in list(_LIVE_LAYERS):
        layer._lock = threading.Lock()
        layer._channel.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


@exported_by("sockshock.layer")
class FaultLayer:
    """A socket layer that applies a :class:`~sockshock.faults.FaultPlan`.

    Args:
        plan: a FaultPlan, or a list of fault models (a plan with a random seed
            is made), or ``None`` for no faults.
        clock: ``"real"`` (default), ``"virtual"`` (delays advance a
            :class:`~sockshock.VirtualClock` instead of sleeping) or a Clock.

    Use it as a server's ``socket_layer``. With forking servers, call
    :meth:`close` (or use ``with``) when done -- ``serving()`` does: it stops the
    thread that collects forked children's decisions.

    Attributes:
        shutdown_triggered: set when an ``AbruptShutdown`` fires.
        on_abrupt_shutdown: called once (in the thread whose operation fired it,
            or in the parent for a forked child's) when an ``AbruptShutdown``
            fires; it must not block. ``serving()`` sets it to stop its server;
            with a server of your own, set it to something that stops yours,
            e.g. ``lambda: threading.Thread(target=server.shutdown).start()``.
    """

    def __init__(
        self, plan: FaultPlan | list[Any] | tuple[Any, ...] | None = None, clock: Any = None
    ) -> None:
        self.plan: FaultPlan = make_plan(
            [] if plan is None else plan,
            seed=0 if plan is None else None,
            source="FaultLayer(plan=...)",
        )
        self.clock: Clock = resolve_clock(clock, source="FaultLayer(clock=...)")
        self.active = bool(self.plan.models)
        self._lock = threading.Lock()
        self._init_connections()
        self._channel = ForkChannel(self._from_child)
        self.shutdown_triggered = threading.Event()
        self.on_abrupt_shutdown: Callable[[], object] | None = None
        self._shutdown_fired = False
        _LIVE_LAYERS.add(self)

    # -- the SocketLayer protocol ------------------------------------------------

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> FaultySocket:
        """A new socket of the server's (the socket-layer protocol); faults apply to it and to every socket it accepts.

        Args:
            family: the address family, as for ``socket.socket``.
            type: the socket type.
            proto: the protocol number.

        Returns:
            A FaultySocket: a ``socket.socket`` subclass on a real descriptor.
        """
        sock = FaultySocket(family, type, proto)
        sock._sockshock_attach(self, None)
        return sock

    def wrap(self, sock: _Socket) -> FaultySocket:
        """Take over ``sock`` (a listening or datagram socket someone else made):
        the returned FaultySocket owns its descriptor and ``sock`` is detached.

        Args:
            sock: the socket to take over.

        Returns:
            A FaultySocket on the same descriptor.
        """
        timeout = sock.gettimeout()
        wrapped = FaultySocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        wrapped.settimeout(timeout)
        wrapped._sockshock_attach(self, None)
        return wrapped

    # -- connections -------------------------------------------------------------

    def _init_connections(self) -> None:
        self._next_connection = 0
        #: Datagram peers by address, the least recently seen first.
        self._datagram_peers: OrderedDict[Any, Connection] = OrderedDict()

    def _numbered(self, address: Any) -> Connection:
        """The next connection in order (the caller holds the lock)."""
        connection = Connection(self._next_connection, address)
        self._next_connection += 1
        return connection

    def new_connection(self, address: Any) -> Connection:
        """The record of a new connection from ``address``: its number, scope and fault state."""
        with self._lock:
            return self._numbered(address)

    def opened(self, connection: Connection) -> None:
        """A socket on ``connection`` opened (accepted, or a ``dup()``)."""
        with self._lock:
            connection.users += 1

    def closed(self, connection: Connection) -> None:
        """A socket on ``connection`` closed (once per socket); the last one ends the
        connection: the plan forgets it."""
        with self._lock:
            connection.users -= 1
            if connection.users <= 0:
                self.plan.connection_ended(connection.index)

    def plaintext_connection(self, wire: Connection | None, address: Any) -> Connection:
        """The record of what moves above TLS on a connection: the same number as
        its wire (a connection the layer did not number gets the next one)."""
        if wire is None:
            wire = self.new_connection(address)
        return Connection(wire.index, wire.address, PLAINTEXT)

    @property
    def has_plaintext_faults(self) -> bool:
        """Whether any model of the plan acts above TLS."""
        return any(model.layer == PLAINTEXT for model in self.plan.models)

    def datagram_peer(self, address: Any) -> Connection:
        """The record of the datagram peer at ``address``, made on its first datagram
        (a new one, numbered next, for an address unseen or forgotten); forgets peers
        silent too long, or the least recently seen beyond :data:`DATAGRAM_PEERS_KEPT`."""
        now = self.clock.now()
        with self._lock:
            peers = self._datagram_peers
            # The least recently seen first: forget those silent too long (this one
            # too, if it was: it comes back as a new peer, as behind a NAT).
            while peers and next(iter(peers.values())).last < now - DATAGRAM_PEER_IDLE:
                self._forget_peer()
            connection = peers.get(address)
            if connection is None:
                connection = peers[address] = self._numbered(address)
                if len(peers) > DATAGRAM_PEERS_KEPT:
                    self._forget_peer()
            else:
                peers.move_to_end(address)
            connection.last = now
            return connection

    def _forget_peer(self) -> None:
        """Forget the least recently seen datagram peer (the caller holds the lock)."""
        _, connection = self._datagram_peers.popitem(last=False)
        self.plan.connection_ended(connection.index)

    def forget_peers(self) -> None:
        """Forget every datagram peer (the layer closes)."""
        with self._lock:
            while self._datagram_peers:
                self._forget_peer()

    # -- decisions -----------------------------------------------------------------

    def ask(self, kind: str, connection: Connection | None, size: int = 0) -> Decision:
        """The plan's decision for one operation, logged (or sent to the parent)."""
        if not self.active:
            return NOTHING
        direction = _IN.get(kind, "out")
        layer = WIRE if connection is None else connection.layer
        if not self.plan.concerns(kind, layer):  # e.g. reads under a plan of write faults
            if connection is not None:
                connection.count[direction] += 1
            return NOTHING
        with self._lock:
            if connection is None:  # accept: the connection it would create
                op = Operation(kind, self._next_connection, None, 0, 0, 0, self.clock.now())
            else:
                op = Operation(
                    kind,
                    connection.index,
                    connection.address,
                    size,
                    connection.offset[direction],
                    connection.count[direction],
                    self.clock.now(),
                    layer,
                )
                connection.count[direction] += 1
            in_child = self._channel.in_child
            reached = len(self.plan.reached)
            decision, events = self.plan.decide_logged(op, pid=os.getpid() if in_child else None)
            if in_child and len(self.plan.reached) != reached:  # the parent's plan warns
                self._channel.send("reached", sorted(self.plan.reached))
        if in_child and events:
            self._channel.send("events", events)
        if decision.action == SHUTDOWN:
            self._fire_shutdown()
        return decision

    # -- forked children -----------------------------------------------------------

    def _from_child(self, kind: str, value: Any) -> None:
        if kind == "events":
            with self._lock:
                self.plan.record(value)
        elif kind == "reached":
            with self._lock:
                self.plan.reached.update(value)
        elif kind == "shutdown":
            self._fire_shutdown()

    def collect(self) -> None:
        """Bring forked children's decisions into the plan's log now (they also
        arrive on their own, a moment after they are taken)."""
        self._channel.collect()

    # -- abrupt shutdown ---------------------------------------------------------

    def _fire_shutdown(self) -> None:
        if self._channel.in_child:  # the parent owns the server
            self._channel.send("shutdown", None)
            return
        with self._lock:
            if self._shutdown_fired:
                return
            self._shutdown_fired = True
        self.shutdown_triggered.set()
        callback = self.on_abrupt_shutdown
        if callback is not None:
            callback()

    def close(self) -> None:
        """Stop the thread that collects forked children's decisions (after taking
        in what they sent) and release the layer's own descriptors -- not the
        sockets it handed out -- and forget every datagram peer."""
        self._channel.close()
        self.forget_peers()

    def __enter__(self) -> FaultLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FaultLayer({self.plan!r}, clock={self.clock!r})"

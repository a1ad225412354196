"""What a client's run gives back: :class:`StreamResult` or :class:`DatagramResult`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sockshock._clients._conn import Connection

__all__ = [
    "ClientResult",
    "DatagramResult",
    "R",
    "StreamResult",
]


@dataclass(frozen=True)
class StreamResult:
    """What a stream client (TCP or Unix stream) saw.

    Attributes:
        kind: the client (``"slowloris"``...).
        address: where it connected (``"localhost"`` resolved).
        connections: one :class:`Connection` per connection attempted, in order
            (fewer than ``requested`` if the run was stopped or ran out of time:
            see :attr:`not_attempted`).
        elapsed: seconds the run took.
        stopped: whether ``stop()`` (or the end of a ``with`` block) cut it short.
        unread: ``never_reads`` only: bytes the server wrote that were still
            waiting, unread, in the client's receive queue at the end (``None``
            for the other clients, or if the platform cannot tell).
        unread_since: ``never_reads`` only: seconds after the start when
            ``unread`` last changed. Well before ``elapsed`` with the connection
            still open means the server stopped getting data through: its writes
            were blocked (or it had nothing more to send).
        requested: the connections the client was asked to make (``count``; 1
            for the clients that make one).
    """

    kind: str
    address: Any
    connections: tuple[Connection, ...]
    elapsed: float
    stopped: bool
    unread: int | None = None
    unread_since: float | None = None
    requested: int = 1

    @property
    def not_attempted(self) -> int:
        """Connections asked for but never attempted: the run was stopped, or its
        ``duration`` ran out first (``connection_flood(count=200)`` whose
        connections each wait ``timeout`` for a reply gets through about
        ``concurrency * duration / timeout`` of them)."""
        return max(0, self.requested - len(self.connections))

    def __str__(self) -> str:
        """One line: what was asked, what ran, how it ended (``repr`` has it all)."""
        made = f"{len(self.connections)} of {self.requested} connection(s)"
        cut = ""
        if self.not_attempted:
            why = "stopped" if self.stopped else "out of time: its duration ran out"
            cut = f", {self.not_attempted} never attempted ({why})"
        ends = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())) or "none"
        return (
            f"{self.kind} to {self.address!r}: {made} in {self.elapsed:.2f} s{cut}; "
            f"outcomes: {ends}" + (f"; errors: {', '.join(self.errors)}" if self.errors else "")
        )

    @property
    def out_of_time(self) -> bool:
        """Whether the run's ``duration`` ran out before every connection asked for
        was attempted (not stopped: see :attr:`stopped`)."""
        return self.not_attempted > 0 and not self.stopped

    @property
    def sent(self) -> int:
        """Bytes sent on all connections."""
        return sum(c.sent for c in self.connections)

    @property
    def received(self) -> int:
        """Bytes received on all connections."""
        return sum(c.received for c in self.connections)

    @property
    def reply(self) -> bytes:
        """The first connection's reply (its first ``max_reply`` bytes)."""
        return self.connections[0].reply if self.connections else b""

    @property
    def established(self) -> int:
        """Connections that were established."""
        return sum(c.connected for c in self.connections)

    @property
    def refused(self) -> int:
        """Connections refused (ECONNREFUSED)."""
        return self.outcomes.get("refused", 0)

    @property
    def failed(self) -> int:
        """Connections that could not be made otherwise (timed out, no socket file)."""
        return self.outcomes.get("failed", 0)

    @property
    def outcomes(self) -> dict[str, int]:
        """How many connections ended each way, e.g. ``{"eof": 3, "open": 1}``."""
        counts: dict[str, int] = {}
        for c in self.connections:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        return counts

    @property
    def errors(self) -> tuple[str, ...]:
        """The distinct socket errors seen, in the order they first appeared."""
        return tuple(dict.fromkeys(c.error for c in self.connections if c.error))


@dataclass(frozen=True)
class DatagramResult:
    """What a datagram client (UDP or Unix datagram) saw.

    Attributes:
        kind: the client (``"datagram_burst"``).
        address: where it sent (``"localhost"`` resolved).
        datagrams: datagrams sent.
        failed: datagrams that could not be sent (an error, or no room in the
            socket buffer within ``timeout``).
        replies: datagrams received back.
        sent: bytes sent.
        received: bytes received.
        reply: the first reply (its first ``max_reply`` bytes).
        errors: the distinct socket errors seen, in the order they first
            appeared (e.g. ``"ECONNREFUSED: Connection refused"`` from an ICMP
            port unreachable).
        elapsed: seconds the run took.
        stopped: whether ``stop()`` (or the end of a ``with`` block) cut it short.
    """

    kind: str
    address: Any
    datagrams: int
    failed: int
    replies: int
    sent: int
    received: int
    reply: bytes
    errors: tuple[str, ...]
    elapsed: float
    stopped: bool

    @property
    def unanswered(self) -> int:
        """Datagrams sent that got no reply within the bound."""
        return max(0, self.datagrams - self.replies)


ClientResult = StreamResult | DatagramResult
R = TypeVar("R", StreamResult, DatagramResult)

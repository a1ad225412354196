"""Stream fault models: what a TCP or Unix stream connection's peer does wrong.

Pure and seeded (see ``_core``). "in" is what the server reads, "out" what it writes.
"""

from __future__ import annotations

import errno as _errno
import random
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

from sockshock._faults._core import (
    EOF,
    RECV,
    RESET,
    SEND,
    STALL,
    Decision,
    FaultModel,
    Operation,
    check_delay,
    check_direction,
    check_positive,
)
from sockshock._util import check_number, check_type, exported_by

__all__ = [
    "MAX_BANDWIDTH",
    "Bandwidth",
    "Directed",
    "EOFAfter",
    "Latency",
    "PartialReads",
    "PartialWrites",
    "ResetAfter",
    "SlowClient",
    "SlowReader",
    "Stall",
]

MAX_BANDWIDTH = 1e12  # bytes per second

_STREAM = {"in": (RECV,), "out": (SEND,), "both": (RECV, SEND)}
DIRECTIONS = ("in", "out", "both")


class Directed(FaultModel):
    """A model that applies to what the server reads ("in"), writes ("out") or both."""

    direction: str
    _table: ClassVar[dict[str, tuple[str, ...]]] = _STREAM

    def validate(self) -> None:
        check_direction(self, self.direction, DIRECTIONS)

    def applies_to_kind(self, kind: str) -> bool:
        """Whether the model can act on operations of ``kind``, in its direction."""
        return kind in self._table[self.direction]


@dataclass(frozen=True, repr=False)
class _Chunks(FaultModel):
    """Each operation moves 1 to ``max_chunk`` bytes."""

    max_chunk: int

    def validate(self) -> None:
        check_positive(self, "max_chunk", self.max_chunk, integer=True)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(limit=rng.randint(1, self.max_chunk))


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class PartialReads(_Chunks):
    """``recv``/``recv_into`` return 1 to ``max_chunk`` bytes even when more is waiting.

    Args:
        max_chunk: the most bytes one read returns (at least 1).
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    kinds: ClassVar[tuple[str, ...]] = (RECV,)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class PartialWrites(_Chunks):
    """``send`` accepts only 1 to ``max_chunk`` bytes of the buffer (``sendall``
    still delivers everything, in pieces).

    Args:
        max_chunk: the most bytes one send takes (at least 1).
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    kinds: ClassVar[tuple[str, ...]] = (SEND,)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class Latency(Directed):
    """Each operation waits ``seconds``, plus or minus up to ``jitter`` (uniformly,
    never below 0: toxiproxy's ``latency`` +- ``jitter``), before its data is seen
    (``"in"``) or leaves (``"out"``).

    In process, each ``recv``/``send`` waits. Through the fault proxy each chunk is
    delayed from its arrival (toxiproxy's semantics): requests pipelined 20 ms apart
    arrive 20 ms apart, each ``seconds`` late, and a bulk transfer keeps its rate.
    With ``close_only=True`` (the fault proxy only) the data passes at once and only
    the end of file is late: the sender closed, the receiver sees it ``seconds``
    later (toxiproxy's ``slow_close``).

    Args:
        seconds: the delay of each operation (at most 3600).
        jitter: plus or minus up to this many seconds, drawn per operation.
        direction: ``"in"`` (default), ``"out"`` or ``"both"``.
        close_only: keyword-only: delay the end of file only (the fault proxy only).
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    seconds: float
    jitter: float = 0.0
    direction: str = "in"
    _: KW_ONLY
    close_only: bool = False

    def validate(self) -> None:
        super().validate()
        check_delay(self, "seconds", self.seconds)
        check_delay(self, "jitter", self.jitter)
        check_type("close_only", self.close_only, bool, source="Latency")

    @property
    def on_close(self) -> bool:
        return self.close_only

    @property
    def proxy_only(self) -> bool:
        return self.close_only  # (a server's own socket calls never see a close)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        if self.close_only and op.size:
            return None
        delay = self.seconds
        if self.jitter:
            delay = max(0.0, delay + rng.uniform(-self.jitter, self.jitter))
        return Decision(delay=delay) if delay else None


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class Bandwidth(Directed):
    """Throttle a connection to ``bytes_per_second`` in each direction it applies to.

    Each operation moves at most 50 ms worth of bytes and waits until the bytes
    before it have "left" at that rate.

    Args:
        bytes_per_second: the rate, 1 to 1e12.
        direction: ``"in"``, ``"out"`` or ``"both"`` (default).
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    bytes_per_second: float
    direction: str = "both"

    def validate(self) -> None:
        super().validate()
        check_number(
            "bytes_per_second", self.bytes_per_second, low=1, high=MAX_BANDWIDTH, source="Bandwidth"
        )

    def new_state(self) -> dict[str, float]:
        return {}

    def decide(self, op: Operation, rng: random.Random, state: dict[str, float]) -> Decision:
        quantum = max(1, int(self.bytes_per_second * 0.05))
        amount = max(1, min(op.size, quantum))
        free_at = state.get(op.kind, op.now)
        start = max(op.now, free_at)
        state[op.kind] = start + amount / self.bytes_per_second
        return Decision(delay=start - op.now, limit=amount)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class SlowClient(FaultModel):
    """The client trickles its request: every read returns at most ``chunk`` bytes,
    each after ``pause`` seconds (plus up to ``jitter``).

    Args:
        chunk: the most bytes one read returns.
        pause: seconds before each read's data is seen.
        jitter: up to this many seconds more per read.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    chunk: int = 1
    pause: float = 0.05
    jitter: float = 0.0
    kinds: ClassVar[tuple[str, ...]] = (RECV,)

    def validate(self) -> None:
        check_positive(self, "chunk", self.chunk, integer=True)
        check_delay(self, "pause", self.pause)
        check_delay(self, "jitter", self.jitter)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        jitter = rng.uniform(0, self.jitter) if self.jitter else 0.0
        return Decision(delay=self.pause + jitter, limit=self.chunk)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class SlowReader(FaultModel):
    """The client reads its response slowly: every send takes at most ``chunk``
    bytes, each after ``pause`` seconds, so write timeouts fire when ``pause``
    exceeds the socket's timeout.

    Args:
        chunk: the most bytes one send takes.
        pause: seconds before each send completes.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    chunk: int = 1
    pause: float = 0.05
    kinds: ClassVar[tuple[str, ...]] = (SEND,)

    def validate(self) -> None:
        check_positive(self, "chunk", self.chunk, integer=True)
        check_delay(self, "pause", self.pause)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(delay=self.pause, limit=self.chunk)


def _after(nbytes: int, op: Operation, action: str, **extra: Any) -> Decision | None:
    """Move up to the boundary, then ``action``."""
    offset = op.offset
    if offset >= nbytes:
        return Decision(action=action, **extra)
    if offset + op.size <= nbytes:
        return None  # the boundary is beyond this operation: nothing to do yet
    return Decision(limit=nbytes - offset)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class ResetAfter(Directed):
    """The peer resets the connection once ``nbytes`` have moved in ``direction``:
    reads raise ECONNRESET (then return ``b""``), writes raise ECONNRESET then
    EPIPE, exactly like Linux.

    Args:
        nbytes: bytes that move before the reset (0: at the first operation).
        direction: ``"in"`` (default), ``"out"`` or ``"both"``.
        delay: seconds between reaching ``nbytes`` and the reset (toxiproxy's
            ``reset_peer`` ``timeout``; the data waits meanwhile).
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    nbytes: int = 0
    direction: str = "in"
    delay: float = 0.0

    limits_position: ClassVar[bool] = True

    def validate(self) -> None:
        super().validate()
        check_positive(self, "nbytes", self.nbytes, integer=True, allow_zero=True)
        check_delay(self, "delay", self.delay)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        if self.delay and op.offset >= self.nbytes:
            return Decision(delay=self.delay, action=RESET, errno=_errno.ECONNRESET)
        return _after(self.nbytes, op, RESET, errno=_errno.ECONNRESET)


class _EndsAfter(Directed):
    """Data moves normally for ``nbytes`` in ``direction``, then the peer does
    :attr:`action`."""

    nbytes: int
    action: ClassVar[str]
    limits_position: ClassVar[bool] = True

    def validate(self) -> None:
        super().validate()
        check_positive(self, "nbytes", self.nbytes, integer=True, allow_zero=True)

    @property
    def proxy_only(self) -> bool:
        return self.direction != "in"

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        return _after(self.nbytes, op, self.action)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class EOFAfter(_EndsAfter):
    """The peer closes early once ``nbytes`` have moved in ``direction``.

    ``"in"`` (default): the client stops sending: the server's reads return ``b""``
    after ``nbytes``. ``"out"`` (the fault proxy only): the server's reply is cut
    after ``nbytes`` and the client gets end of file (toxiproxy's ``limit_data``
    on the ``downstream`` stream); ``"both"``: whichever comes first.

    Args:
        nbytes: bytes that move before the end of file.
        direction: ``"in"`` (default); ``"out"`` or ``"both"`` through the fault
            proxy only.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    nbytes: int = 0
    direction: str = "in"
    action = EOF


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class Stall(_EndsAfter):
    """The peer goes silent after ``nbytes`` have moved in ``direction``.

    In process (``"in"``): reads block until the socket's timeout
    (``TimeoutError``), or until the server closes or shuts down the socket, or the
    real peer closes (then: end of file). Through the fault proxy, the stalled
    direction forwards nothing more (what arrives is discarded); it ends when its
    sender closes (the receiver then gets end of file: the same semantics), and
    ``timeout`` seconds after it began the proxy closes the connection (toxiproxy's
    ``timeout`` toxic; ``None``, the default: it never does).

    Args:
        nbytes: bytes that move before the peer goes silent.
        direction: ``"in"`` (default); ``"out"`` or ``"both"`` through the fault
            proxy only.
        timeout: seconds after which the stalled connection is closed (None: never).
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    nbytes: int = 0
    direction: str = "in"
    timeout: float | None = None

    action = STALL

    def validate(self) -> None:
        super().validate()
        if self.timeout is not None:
            check_delay(self, "timeout", self.timeout)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        decision = _after(self.nbytes, op, STALL)
        if decision is not None and decision.action == STALL and self.timeout is not None:
            return decision._replace(close_after=self.timeout)
        return decision

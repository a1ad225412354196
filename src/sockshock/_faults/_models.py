"""The fault models: stream, datagram and server lifecycle. Pure and seeded."""

from __future__ import annotations

import errno as _errno
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from sockshock._errors import InvalidArgument, check_number
from sockshock._faults._core import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    DROP,
    EOF,
    ERROR,
    RECV,
    RESET,
    SEND,
    SHUTDOWN,
    STALL,
    Decision,
    FaultModel,
    Operation,
    check_delay,
    check_direction,
    check_positive,
)

__all__ = [
    "AbruptShutdown",
    "AcceptErrors",
    "Bandwidth",
    "BurstLoss",
    "CorruptDatagrams",
    "DropDatagrams",
    "DuplicateDatagrams",
    "EOFAfter",
    "Latency",
    "PartialReads",
    "PartialWrites",
    "ReorderDatagrams",
    "ResetAfter",
    "SlowClient",
    "SlowReader",
    "Stall",
    "TruncateDatagrams",
]

# Upper bounds of model parameters (a larger value is a mistake that would wedge the
# server or overflow a clock; delays are bounded by _core.MAX_DELAY).
MAX_BANDWIDTH = 1e12  # bytes per second
MAX_COPIES = 100  # extra copies of one datagram
MAX_WINDOW = 1000  # datagrams one may be held behind
MAX_BITS = 1024  # bits flipped in one datagram
MAX_DATAGRAM = 65535  # bytes
MAX_TIMES = 1_000_000  # accept errors

_STREAM = {"in": (RECV,), "out": (SEND,), "both": (RECV, SEND)}
_DATAGRAM = {"in": (DATAGRAM_IN,), "out": (DATAGRAM_OUT,), "both": (DATAGRAM_IN, DATAGRAM_OUT)}
_DIRECTIONS = ("in", "out", "both")


class _Directed(FaultModel):
    """A model that applies to what the server reads ("in"), writes ("out") or both."""

    direction: str
    _table: ClassVar[dict[str, tuple[str, ...]]] = _STREAM

    def validate(self) -> None:
        check_direction(self, self.direction, _DIRECTIONS)

    def applies_to_kind(self, kind: str) -> bool:
        return kind in self._table[self.direction]


# -- stream -------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _Chunks(FaultModel):
    """Each operation moves 1 to ``max_chunk`` bytes."""

    max_chunk: int

    def validate(self) -> None:
        check_positive(self, "max_chunk", self.max_chunk, integer=True)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(limit=rng.randint(1, self.max_chunk))


@dataclass(frozen=True, repr=False)
class PartialReads(_Chunks):
    """``recv``/``recv_into`` return 1 to ``max_chunk`` bytes even when more is waiting."""

    kinds: ClassVar[tuple[str, ...]] = (RECV,)


@dataclass(frozen=True, repr=False)
class PartialWrites(_Chunks):
    """``send`` accepts only 1 to ``max_chunk`` bytes of the buffer (``sendall``
    still delivers everything, in pieces)."""

    kinds: ClassVar[tuple[str, ...]] = (SEND,)


@dataclass(frozen=True, repr=False)
class Latency(_Directed):
    """Each operation waits ``seconds`` (plus up to ``jitter``) before its data is
    seen (``"in"``) or leaves (``"out"``)."""

    seconds: float
    jitter: float = 0.0
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_delay(self, "seconds", self.seconds)
        check_delay(self, "jitter", self.jitter)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        jitter = rng.uniform(0, self.jitter) if self.jitter else 0.0
        delay = self.seconds + jitter
        return Decision(delay=delay) if delay else None


@dataclass(frozen=True, repr=False)
class Bandwidth(_Directed):
    """Throttle a connection to ``bytes_per_second`` in each direction it applies to.

    Each operation moves at most 50 ms worth of bytes and waits until the bytes
    before it have "left" at that rate.
    """

    bytes_per_second: float
    direction: str = "both"

    def validate(self) -> None:
        super().validate()
        check_number("bytes_per_second", self.bytes_per_second, low=1, high=MAX_BANDWIDTH,
                     source="Bandwidth")

    def new_state(self) -> dict[str, float]:
        return {}

    def decide(self, op: Operation, rng: random.Random, state: dict[str, float]) -> Decision:
        quantum = max(1, int(self.bytes_per_second * 0.05))
        amount = max(1, min(op.size, quantum))
        free_at = state.get(op.kind, op.now)
        start = max(op.now, free_at)
        state[op.kind] = start + amount / self.bytes_per_second
        return Decision(delay=start - op.now, limit=amount)


@dataclass(frozen=True, repr=False)
class SlowClient(FaultModel):
    """The client trickles its request: every read returns at most ``chunk`` bytes,
    each after ``pause`` seconds (plus up to ``jitter``)."""

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


@dataclass(frozen=True, repr=False)
class SlowReader(FaultModel):
    """The client reads its response slowly: every send takes at most ``chunk``
    bytes, each after ``pause`` seconds, so write timeouts fire when ``pause``
    exceeds the socket's timeout."""

    chunk: int = 1
    pause: float = 0.05
    kinds: ClassVar[tuple[str, ...]] = (SEND,)

    def validate(self) -> None:
        check_positive(self, "chunk", self.chunk, integer=True)
        check_delay(self, "pause", self.pause)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(delay=self.pause, limit=self.chunk)


def _after(nbytes: int, op: Operation, action: str, **extra: Any) -> Decision:
    """Move up to the boundary, then ``action``."""
    if op.offset >= nbytes:
        return Decision(action=action, **extra)
    return Decision(limit=nbytes - op.offset)


@dataclass(frozen=True, repr=False)
class ResetAfter(_Directed):
    """The peer resets the connection once ``nbytes`` have moved in ``direction``:
    reads raise ECONNRESET (then return ``b""``), writes raise ECONNRESET then
    EPIPE, exactly like Linux."""

    nbytes: int = 0
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(self, "nbytes", self.nbytes, integer=True, allow_zero=True)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return _after(self.nbytes, op, RESET, errno=_errno.ECONNRESET)


@dataclass(frozen=True, repr=False)
class EOFAfter(FaultModel):
    """The peer closes its side early: reads return ``b""`` after ``nbytes``."""

    nbytes: int = 0
    kinds: ClassVar[tuple[str, ...]] = (RECV,)

    def validate(self) -> None:
        check_positive(self, "nbytes", self.nbytes, integer=True, allow_zero=True)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return _after(self.nbytes, op, EOF)


@dataclass(frozen=True, repr=False)
class Stall(FaultModel):
    """The peer goes silent after ``nbytes``: reads block until the socket's timeout
    (``TimeoutError``), or until the server closes or shuts down the socket."""

    nbytes: int = 0
    kinds: ClassVar[tuple[str, ...]] = (RECV,)

    def validate(self) -> None:
        check_positive(self, "nbytes", self.nbytes, integer=True, allow_zero=True)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return _after(self.nbytes, op, STALL)


# -- datagram -----------------------------------------------------------------


class _DatagramModel(_Directed):
    _table: ClassVar[dict[str, tuple[str, ...]]] = _DATAGRAM


@dataclass(frozen=True, repr=False)
class DropDatagrams(_DatagramModel):
    """Datagrams are lost with ``probability``."""

    probability: float = 1.0
    direction: str = "in"

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(action=DROP)


@dataclass(frozen=True, repr=False)
class DuplicateDatagrams(_DatagramModel):
    """Datagrams arrive (``"in"``) or leave (``"out"``) ``copies`` extra times."""

    probability: float = 1.0
    copies: int = 1
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(self, "copies", self.copies, integer=True, high=MAX_COPIES)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(duplicate=self.copies)


@dataclass(frozen=True, repr=False)
class ReorderDatagrams(_DatagramModel):
    """A datagram is held back behind 1 to ``window`` later ones (with
    ``probability``). Held datagrams are released as soon as nothing else is
    waiting, so reordering happens within bursts, as on a real network."""

    window: int = 2
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(self, "window", self.window, integer=True, high=MAX_WINDOW)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(hold=rng.randint(1, self.window))


@dataclass(frozen=True, repr=False)
class CorruptDatagrams(_DatagramModel):
    """``bits`` random bits of a datagram are flipped (with ``probability``)."""

    probability: float = 1.0
    bits: int = 1
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(self, "bits", self.bits, integer=True, high=MAX_BITS)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        if op.size == 0:
            return None
        return Decision(corrupt=tuple(rng.randrange(op.size * 8) for _ in range(self.bits)))


@dataclass(frozen=True, repr=False)
class TruncateDatagrams(_DatagramModel):
    """Datagrams longer than ``max_size`` bytes are cut to ``max_size``."""

    max_size: int = 512
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(self, "max_size", self.max_size, integer=True, allow_zero=True,
                       high=MAX_DATAGRAM)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        if op.size <= self.max_size:
            return None
        return Decision(truncate=self.max_size)


@dataclass(frozen=True, repr=False)
class BurstLoss(_DatagramModel):
    """Gilbert-Elliott loss: a two-state channel whose losses come in bursts.

    In the good state a datagram is lost with ``loss_good``, in the bad state with
    ``loss_bad``; after each datagram the channel goes bad with ``p`` and
    recovers with ``r``. The mean burst length is ``1 / r``.
    """

    p: float = 0.05
    r: float = 0.5
    loss_good: float = 0.0
    loss_bad: float = 1.0
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        for name in ("p", "r", "loss_good", "loss_bad"):
            check_number(name, getattr(self, name), low=0, high=1, source="BurstLoss")

    def new_state(self) -> dict[str, bool]:
        return {"bad": False}

    def decide(self, op: Operation, rng: random.Random, state: dict[str, bool]) -> Decision | None:
        lost = rng.random() < (self.loss_bad if state["bad"] else self.loss_good)
        flip = rng.random() < (self.r if state["bad"] else self.p)
        if flip:
            state["bad"] = not state["bad"]
        return Decision(action=DROP) if lost else None


# -- server lifecycle ----------------------------------------------------------


def _errno_value(value: Any, source: str) -> int:
    if isinstance(value, str):
        number = getattr(_errno, value, None)
        if not isinstance(number, int):
            raise InvalidArgument(f"errno={value!r} is not an errno name such as 'EMFILE' "
                                  f"(from {source})")
        return number
    check_number("errno", value, low=1, integer=True, source=source)
    if value not in _errno.errorcode:
        raise InvalidArgument(f"errno={value!r} is not a known error number (from {source})")
    return int(value)


@dataclass(frozen=True, repr=False)
class AcceptErrors(FaultModel):
    """``accept()`` fails ``times`` times with ``errno`` (a number or a name such as
    ``"EMFILE"``) without taking the pending connection, which stays in the backlog
    as it would when the process is out of descriptors."""

    errno: int | str = _errno.EMFILE
    times: int = 1
    kinds: ClassVar[tuple[str, ...]] = (ACCEPT,)
    state_scope: ClassVar[str] = "plan"

    def validate(self) -> None:
        object.__setattr__(self, "errno", _errno_value(self.errno, "AcceptErrors"))
        check_positive(self, "times", self.times, integer=True, high=MAX_TIMES)

    def new_state(self) -> dict[str, int]:
        return {"injected": 0}

    def decide(self, op: Operation, rng: random.Random, state: dict[str, int]) -> Decision | None:
        if state["injected"] >= self.times:
            return None
        state["injected"] += 1
        return Decision(action=ERROR, errno=int(self.errno))

    def describe(self) -> str:
        name = _errno.errorcode.get(int(self.errno), str(self.errno))
        return super().describe().replace(f"errno={self.errno!r}", f"errno={name}")


@dataclass(frozen=True, repr=False)
class AbruptShutdown(FaultModel):
    """The server is shut down (``shutdown()`` then ``server_close()``, from another
    thread) at one precise moment: the first operation in scope -- for example
    ``AbruptShutdown(connections=2, after_bytes=5)`` stops it while the third
    connection's request is being read, after its first 5 bytes. Happens once."""

    direction: str = "in"
    kinds: ClassVar[tuple[str, ...]] = ()
    state_scope: ClassVar[str] = "plan"

    def validate(self) -> None:
        check_direction(self, self.direction, _DIRECTIONS)

    def applies_to_kind(self, kind: str) -> bool:
        table = {"in": (RECV, DATAGRAM_IN), "out": (SEND, DATAGRAM_OUT),
                 "both": (RECV, SEND, DATAGRAM_IN, DATAGRAM_OUT)}
        return kind in table[self.direction]

    def new_state(self) -> dict[str, bool]:
        return {"done": False}

    def decide(self, op: Operation, rng: random.Random, state: dict[str, bool]) -> Decision | None:
        if state["done"]:
            return None
        state["done"] = True
        return Decision(action=SHUTDOWN)


"""Datagram fault models: what the network does to UDP and Unix datagrams.

Pure and seeded (see ``_core``). "in" is what the server receives, "out" what it
sends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from sockshock._faults._core import (
    DATAGRAM_IN,
    DATAGRAM_OUT,
    DROP,
    Decision,
    Operation,
    check_positive,
)
from sockshock._faults._stream import Directed
from sockshock._util import check_number, exported_by

__all__ = [
    "MAX_BITS",
    "MAX_COPIES",
    "MAX_DATAGRAM",
    "MAX_WINDOW",
    "BurstLoss",
    "CorruptDatagrams",
    "DropDatagrams",
    "DuplicateDatagrams",
    "ReorderDatagrams",
    "TruncateDatagrams",
]

# Upper bounds (a larger value is a mistake that would wedge the server).
MAX_COPIES = 100  # extra copies of one datagram
MAX_WINDOW = 1000  # datagrams one may be held behind
MAX_BITS = 1024  # bits flipped in one datagram
MAX_DATAGRAM = 65535  # bytes

_DATAGRAM = {"in": (DATAGRAM_IN,), "out": (DATAGRAM_OUT,), "both": (DATAGRAM_IN, DATAGRAM_OUT)}


class _DatagramModel(Directed):
    _table: ClassVar[dict[str, tuple[str, ...]]] = _DATAGRAM


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class DropDatagrams(_DatagramModel):
    """Datagrams are lost with ``probability`` (a lost request is a spurious
    wake-up for the serving loop: readable, then nothing to read).

    Args:
        probability: the chance that each datagram is lost.
        direction: ``"in"`` (default: requests), ``"out"`` (replies) or ``"both"``.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    probability: float = 1.0
    direction: str = "in"

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(action=DROP)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class DuplicateDatagrams(_DatagramModel):
    """Datagrams arrive (``"in"``) or leave (``"out"``) ``copies`` extra times.

    Args:
        probability: the chance that a datagram is duplicated.
        copies: extra copies of a duplicated datagram (at most 100).
        direction: ``"in"`` (default), ``"out"`` or ``"both"``.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    probability: float = 1.0
    copies: int = 1
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(self, "copies", self.copies, integer=True, high=MAX_COPIES)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(duplicate=self.copies)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class ReorderDatagrams(_DatagramModel):
    """A datagram is held back behind 1 to ``window`` later ones (with
    ``probability``). Held datagrams are released as soon as nothing else is
    waiting, so reordering happens within bursts, as on a real network.

    Args:
        window: the most later datagrams one is held behind (at most 1000).
        direction: ``"in"`` (default), ``"out"`` or ``"both"``.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    window: int = 2
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(self, "window", self.window, integer=True, high=MAX_WINDOW)

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision:
        return Decision(hold=rng.randint(1, self.window))


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class CorruptDatagrams(_DatagramModel):
    """``bits`` random bits of a datagram are flipped (with ``probability``).

    Args:
        probability: the chance that a datagram is corrupted.
        bits: how many bits are flipped (at most 1024).
        direction: ``"in"`` (default), ``"out"`` or ``"both"``.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

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


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class TruncateDatagrams(_DatagramModel):
    """Datagrams longer than ``max_size`` bytes are cut to ``max_size``.

    Args:
        max_size: the length datagrams are cut to (at most 65535).
        direction: ``"in"`` (default), ``"out"`` or ``"both"``.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    max_size: int = 512
    direction: str = "in"

    def validate(self) -> None:
        super().validate()
        check_positive(
            self, "max_size", self.max_size, integer=True, allow_zero=True, high=MAX_DATAGRAM
        )

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        if op.size <= self.max_size:
            return None
        return Decision(truncate=self.max_size)


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class BurstLoss(_DatagramModel):
    """Gilbert-Elliott loss: a two-state channel whose losses come in bursts.

    In the good state a datagram is lost with ``loss_good``, in the bad state with
    ``loss_bad``; after each datagram the channel goes bad with ``p`` and
    recovers with ``r``. The mean burst length is ``1 / r``.

    Args:
        p: the chance, after each datagram, that the channel goes bad.
        r: the chance, after each datagram, that a bad channel recovers.
        loss_good: the loss probability in the good state.
        loss_bad: the loss probability in the bad state.
        direction: ``"in"`` (default), ``"out"`` or ``"both"``.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
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

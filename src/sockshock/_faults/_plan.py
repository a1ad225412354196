"""FaultPlan: composes models, owns the seeded randomness, logs every decision."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sockshock._errors import InvalidType, check_number
from sockshock._faults._core import NOTHING, Decision, FaultModel, Operation

__all__ = ["FaultEvent", "FaultPlan"]

_LISTENER = -1  # state key of plan-scoped models (accept errors, abrupt shutdown)


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One decision a model made, as it appears in :attr:`FaultPlan.log`.

    Two runs with the same seed and the same socket operations give equal events
    (the peer's address and the clock's time are shown but not compared: the
    kernel picks ephemeral ports).
    """

    connection: int
    kind: str
    index: int
    offset: int
    size: int
    model: str
    decision: Decision
    address: Any = field(default=None, compare=False)
    now: float = field(default=0.0, compare=False)
    pid: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = f" @{self.offset}" if self.kind != "accept" else ""
        child = f" [child pid {self.pid}]" if self.pid else ""
        return (f"{self.kind} #{self.index}{where} ({self.size} bytes): "
                f"{self.model} -> {self.decision}{child}")


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return repr(address)


def _flatten(models: Iterable[Any]) -> list[FaultModel]:
    flat: list[FaultModel] = []
    for model in models:
        if isinstance(model, (list, tuple)):
            flat.extend(_flatten(model))
        elif isinstance(model, FaultModel):
            flat.append(model)
        else:
            raise InvalidType(
                f"expected a fault model (e.g. sockshock.faults.PartialReads(3)) but got "
                f"{model!r} (type={type(model).__name__}) (from FaultPlan(...))")
    return flat


class FaultPlan:
    """A set of fault models, the seed that drives them, and the log of what they did.

    Randomness is drawn from one ``random.Random`` per (connection, model), derived
    from the seed, so a connection's faults do not depend on how threads interleave
    with other connections -- nor on which process (a forked child) handles it.
    Pass ``rng`` instead of ``seed`` to draw everything from one generator you
    control (hypothesis' ``st.randoms()`` shrinks it).

    Args:
        *models: fault models (lists are flattened).
        seed: an int; default: a random one, always printable as ``plan.seed``.
        rng: a ``random.Random`` to draw from instead of per-connection streams.

    The plan is not thread-safe by itself: the fault layer serialises calls.
    """

    def __init__(self, *models: Any, seed: int | None = None,
                 rng: random.Random | None = None) -> None:
        self.models: tuple[FaultModel, ...] = tuple(_flatten(models))
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
        check_number("seed", seed, integer=True, source="FaultPlan(...)")
        if rng is not None and not isinstance(rng, random.Random):
            raise InvalidType(f"expected random.Random but got rng={rng!r} "
                              f"(type={type(rng).__name__}) (from FaultPlan(...))")
        self.seed: int = seed
        self._shared_rng = rng
        self._rngs: dict[tuple[int, int], random.Random] = {}
        self._states: dict[tuple[int, int], Any] = {}
        self._affected: dict[tuple[int, int], bool] = {}
        self._log: list[FaultEvent] = []
        self._collectors: list[Callable[[], None]] = []
        self._by_kind: dict[str, list[tuple[int, FaultModel]]] = {}
        self._descriptions = [m.describe() for m in self.models]

    # -- deciding --------------------------------------------------------------

    def _rng(self, connection: int, i: int) -> random.Random:
        if self._shared_rng is not None:
            return self._shared_rng
        key = (connection, i)
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = random.Random(f"sockshock/{self.seed}/{connection}/{i}")
        return rng

    def _state(self, model: FaultModel, connection: int, i: int) -> Any:
        key = (_LISTENER if model.state_scope == "plan" else connection, i)
        if key not in self._states:
            self._states[key] = model.new_state()
        return self._states[key]

    def _candidates(self, kind: str) -> list[tuple[int, FaultModel]]:
        candidates = self._by_kind.get(kind)
        if candidates is None:
            candidates = self._by_kind[kind] = [
                (i, m) for i, m in enumerate(self.models) if m.applies_to_kind(kind)]
        return candidates

    def concerns(self, kind: str) -> bool:
        """Whether any model looks at operations of ``kind`` at all."""
        return bool(self._candidates(kind))

    def decide(self, op: Operation, *, pid: int | None = None) -> Decision:
        """Ask every model about ``op``; log and return the combined decision."""
        merged = NOTHING
        for i, model in self._candidates(op.kind):
            if not model.in_scope(op):
                continue
            rng = self._rng(op.connection, i)
            if model.probability < 1.0:
                if model.per == "connection":
                    key = (op.connection, i)
                    if key not in self._affected:
                        self._affected[key] = rng.random() < model.probability
                    if not self._affected[key]:
                        continue
                elif rng.random() >= model.probability:
                    continue
            decision = model.decide(op, rng, self._state(model, op.connection, i))
            if decision is None or decision == NOTHING:
                continue
            merged = decision if merged is NOTHING else merged.merge(decision)
            self._log.append(FaultEvent(op.connection, op.kind, op.index, op.offset, op.size,
                                        self._descriptions[i], decision, op.address, op.now,
                                        pid))
        return merged

    def record(self, event: FaultEvent) -> None:
        """Add an event decided elsewhere (a forked child's) to the log."""
        self._log.append(event)

    def add_collector(self, collect: Callable[[], None]) -> None:
        """Register a function that brings in events from elsewhere before ``log``
        is read (the fault layer uses it for forked children)."""
        self._collectors.append(collect)

    # -- reading ---------------------------------------------------------------

    @property
    def log(self) -> list[FaultEvent]:
        """Every decision so far, in the order they were made (a copy)."""
        for collect in self._collectors:
            collect()
        return list(self._log)

    def log_by_connection(self) -> dict[int, list[FaultEvent]]:
        """The log grouped by connection, each in its own order: what stays equal
        between runs with the same seed, however threads interleaved."""
        grouped: dict[int, list[FaultEvent]] = {}
        for event in self.log:
            grouped.setdefault(event.connection, []).append(event)
        return {k: grouped[k] for k in sorted(grouped)}

    def describe(self, limit: int = 200) -> str:
        """The plan and its log, for a human reading a failed test."""
        events = self.log
        lines = [f"FaultPlan(seed={self.seed}): {len(events)} fault(s) injected",
                 "  models: " + (", ".join(self._descriptions) or "(none)")]
        shown = 0
        for connection, group in self.log_by_connection().items():
            name = "listener" if connection == _LISTENER else f"connection {connection}"
            address = next((e.address for e in group if e.address is not None), None)
            lines.append(f"  {name}" + (f" from {_address(address)}" if address is not None
                                        else "") + ":")
            for event in group:
                if shown >= limit:
                    break
                lines.append(f"    {event}")
                shown += 1
        if len(events) > shown:
            lines.append(f"  ... and {len(events) - shown} more")
        lines.append(f"  replay: FaultPlan(*models, seed={self.seed})")
        return "\n".join(lines)

    def replay(self) -> FaultPlan:
        """A fresh plan with the same models and seed (an empty log)."""
        return FaultPlan(*self.models, seed=self.seed)

    def __bool__(self) -> bool:
        return bool(self.models)

    def __repr__(self) -> str:
        return f"FaultPlan({', '.join(self._descriptions)}{', ' if self.models else ''}seed={self.seed})"

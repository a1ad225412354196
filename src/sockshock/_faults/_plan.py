"""FaultPlan: composes models, owns the seeded randomness, logs every decision."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sockshock._faults._core import ACCEPT, ERROR, NOTHING, WIRE, Decision, FaultModel, Operation
from sockshock._faults._derive import AFFECTED, CounterRandom
from sockshock._faults._draws import Draws
from sockshock._util import InvalidArgument, check_number, check_seed, exported_by

__all__ = ["LOG_LIMIT", "FaultEvent", "FaultPlan", "make_plan"]

_LISTENER = -1  # state key of plan-scoped models (accept errors, abrupt shutdown)

#: How many events a plan's log keeps by default; later ones are counted
#: (``FaultPlan.unlogged``), so that a long soak test cannot grow memory without limit.
LOG_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One decision a model made, as it appears in :attr:`FaultPlan.log`.

    Two runs with the same seed and the same socket operations give equal events
    (the peer's address and the clock's time are shown but not compared: the
    kernel picks ephemeral ports). ``model`` is the model that decided (filter
    with ``isinstance(event.model, PartialReads)`` or ``event.name``).
    """

    connection: int
    kind: str
    index: int
    offset: int
    size: int
    model: FaultModel
    decision: Decision
    address: Any = field(default=None, compare=False)
    now: float = field(default=0.0, compare=False)
    pid: int | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The model's class name (``"PartialReads"``)."""
        return type(self.model).__name__

    def __str__(self) -> str:
        where = f" @{self.offset}" if self.kind != "accept" else ""
        child = f" [child pid {self.pid}]" if self.pid else ""
        return (
            f"{self.kind} #{self.index}{where} ({self.size} bytes): "
            f"{self.model.describe()} -> {self.decision}{child}"
        )


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return repr(address)


def _flatten(models: Iterable[Any], where: str = "FaultPlan(...)") -> list[FaultModel]:
    flat: list[FaultModel] = []
    for model in models:
        if isinstance(model, (list, tuple)):
            flat.extend(_flatten(model, where))
        elif isinstance(model, FaultModel):
            flat.append(model)
        else:
            raise InvalidArgument(
                f"expected a fault model (e.g. sockshock.faults.PartialReads(3)) but got "
                f"{model!r} (type={type(model).__name__}) (from {where})"
            )
    return flat


def _snapshot(rng: random.Random) -> random.Random | None:
    """A copy of ``rng`` in its present state, from which :meth:`FaultPlan.replay`
    starts again; None when sockshock cannot copy it faithfully (a subclass with a
    state of its own and no ``__copy__``)."""
    if isinstance(rng, Draws):
        return rng.fresh()
    if type(rng) is random.Random or getattr(type(rng), "__copy__", None) is not None:
        return copy.copy(rng)
    return None


def _restart(snapshot: random.Random) -> random.Random:
    """A generator in the snapshot's state (the snapshot itself stays as it is)."""
    return snapshot.fresh() if isinstance(snapshot, Draws) else copy.copy(snapshot)


def _changes_nothing(decision: Decision, op: Operation) -> bool:
    """A decision with no effect on ``op``: only a limit no smaller than what the
    operation moves (``EOFAfter(10**6)`` on a 4 KiB read, say)."""
    limit = decision.limit
    return limit is not None and 0 < op.size <= limit and decision.only_limits()


def make_plan(
    faults: Any, *, seed: int | None = None, source: str = "faults", where: str | None = None
) -> FaultPlan:
    """The one place where what a user wrote for ``faults=`` becomes a plan.

    Args:
        faults: a :class:`FaultPlan` (kept as it is), a fault model, or a list or
            tuple of them (a new plan seeded with ``seed``).
        seed: the seed of a new plan (default: random); with a ready plan it must be
            ``None`` or the plan's own seed.
        source: where ``faults`` came from, for error messages.
        where: the caller, named in error messages as "(from ...)".
    """
    origin = f" (from {where})" if where else ""
    if isinstance(faults, FaultPlan):
        if seed is not None and seed != faults.seed:
            raise InvalidArgument(
                f"seed={seed!r} conflicts with the plan's own "
                f"seed={faults.seed} (from {where or source}); give one or "
                "the other"
            )
        return faults
    if isinstance(faults, FaultModel):
        faults = [faults]
    if isinstance(faults, (list, tuple)):
        return FaultPlan(*_flatten(faults, where or "FaultPlan(...)"), seed=seed)
    raise InvalidArgument(
        f"expected a FaultPlan or a list of fault models (sockshock.faults) but got "
        f"{source}={faults!r} (type={type(faults).__name__}){origin}"
    )


@exported_by("sockshock.faults")
class FaultPlan:
    """A set of fault models, the seed that drives them, and the log of what they did.

    With a seed, the numbers a model draws for an operation are a function of the
    seed, the connection, the model and the operation's kind and index alone
    (a counter-based derivation, see ``sockshock._faults._derive``): a decision does
    not depend on how threads interleave, on which process (a forked child) takes
    it, nor on what the plan has forgotten. The plan keeps nothing per connection
    but the state of stateful models (``Bandwidth``, ``BurstLoss``) and the draw of
    ``per="connection"`` models, and forgets those when the connection ends
    (:meth:`connection_ended`), so that a plan serving connections for days keeps
    its memory flat. Pass ``rng`` instead of ``seed`` to draw everything from one
    generator you control (hypothesis' ``st.randoms()`` shrinks it), or from one
    per model: with :class:`~sockshock.faults.Draws` (numbers given in advance, as
    ``sockshock.strategies.fault_plans()`` draws them) the plan's repr is its exact
    replay.

    Args:
        *models: fault models (lists are flattened).
        seed: an int; default: a random one, always printable as ``plan.seed``.
        rng: a ``random.Random`` to draw from instead of per-connection streams, or
            a list of them, one per model (not with ``seed``: the generators
            decide, not the seed). :meth:`replay` starts them again from the state
            they had here.
        log_limit: how many events :attr:`log` keeps (default :data:`LOG_LIMIT`);
            later ones are only counted, in :attr:`unlogged`.

    Decisions that change nothing (a limit larger than the operation) are neither
    applied nor logged. The plan is not thread-safe by itself: the fault layer
    serialises calls.
    """

    def __init__(
        self,
        *models: Any,
        seed: int | None = None,
        rng: random.Random | Sequence[random.Random] | None = None,
        log_limit: int = LOG_LIMIT,
    ) -> None:
        self.models: tuple[FaultModel, ...] = tuple(_flatten(models))
        if seed is not None and rng is not None:
            raise InvalidArgument(
                f"seed={seed!r} and rng={rng!r} both given: with rng= the generators make "
                "every decision and the seed would be ignored; give one or the other "
                "(from FaultPlan(...))"
            )
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
        check_seed(seed, source="FaultPlan(...)")
        check_number("log_limit", log_limit, low=0, integer=True, source="FaultPlan(...)")
        self._model_rngs: tuple[random.Random, ...] | None = None
        if isinstance(rng, (list, tuple)):
            if len(rng) != len(self.models) or not all(isinstance(r, random.Random) for r in rng):
                raise InvalidArgument(
                    f"rng= takes one random.Random per model, "
                    f"{len(self.models)} here, not {rng!r} (from FaultPlan(...))"
                )
            self._model_rngs, rng = tuple(rng), None
        if rng is not None and not isinstance(rng, random.Random):
            raise InvalidArgument(
                f"expected random.Random but got rng={rng!r} "
                f"(type={type(rng).__name__}) (from FaultPlan(...))"
            )
        self._shared_rng = rng
        self.seed = seed  # (the property also makes the derivation's key)
        # What replay() starts from: each generator as it is now (None: cannot be copied).
        self._replay_rngs: tuple[random.Random | None, ...] | None = None
        if self._model_rngs is not None:
            self._replay_rngs = tuple(_snapshot(r) for r in self._model_rngs)
        elif rng is not None:
            self._replay_rngs = (_snapshot(rng),)
        # Kept per connection, forgotten when it ends: stateful models' state and
        # per="connection" models' draw, by (connection, model index).
        self._states: dict[tuple[int, int], Any] = {}
        self._affected: dict[tuple[int, int], bool] = {}
        self._stateful = frozenset(i for i, m in enumerate(self.models) if m.stateful)
        #: The models whose entries connection_ended() forgets.
        self._per_connection = tuple(
            i
            for i, m in enumerate(self.models)
            if (m.stateful and m.state_scope != "plan")
            or (m.per == "connection" and m.probability < 1.0)
        )
        # accept(): the connection index it would create, and how many errors the
        # plan injected for it (a retry is a new operation; a spurious wake-up not).
        self._accepting = -1
        self._accept_errors = 0
        self._log: list[FaultEvent] = []
        self._log_limit = log_limit
        #: Events decided after the log was full: counted, not kept.
        self.unlogged = 0
        #: Indices of the models whose scope took in at least one operation (whether
        #: or not their probability then let them act): a model never reached cannot
        #: have fired whatever the seed, which ``serving()`` warns about.
        self.reached: set[int] = set()
        self._by_kind: dict[tuple[str, str], list[tuple[int, FaultModel]]] = {}
        self._claimed: str | None = None  # the run using it (``_claim()``)
        self._descriptions = [m.describe() for m in self.models]

    @property
    def seed(self) -> int:
        """The seed (with ``rng=``: a random one, shown but not used)."""
        return self._seed

    @seed.setter
    def seed(self, seed: int) -> None:
        check_seed(seed, source="FaultPlan.seed")
        self._seed = int(seed)
        given = self._shared_rng is not None or self._model_rngs is not None
        self._counter = None if given else CounterRandom(self._seed)

    # -- deciding --------------------------------------------------------------

    def _given_rng(self, i: int) -> random.Random:
        """The generator given with ``rng=`` that model ``i`` draws from."""
        if self._model_rngs is not None:
            return self._model_rngs[i]
        assert self._shared_rng is not None
        return self._shared_rng

    def _state(self, model: FaultModel, connection: int, i: int) -> Any:
        key = (_LISTENER if model.state_scope == "plan" else connection, i)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = model.new_state()
        return state

    def _candidates(self, kind: str, layer: str = WIRE) -> list[tuple[int, FaultModel]]:
        key = (kind, layer)
        candidates = self._by_kind.get(key)
        if candidates is None:
            candidates = self._by_kind[key] = [
                (i, m)
                for i, m in enumerate(self.models)
                if m.layer == layer and m.applies_to_kind(kind)
            ]
        return candidates

    def concerns(self, kind: str, layer: str = WIRE) -> bool:
        """Whether any model looks at operations of ``kind`` (on ``layer``) at all."""
        return bool(self._candidates(kind, layer))

    def decide(self, op: Operation) -> Decision:
        """Ask every model about ``op``; log and return the combined decision."""
        return self.decide_logged(op)[0]

    def decide_logged(
        self, op: Operation, *, pid: int | None = None
    ) -> tuple[Decision, list[FaultEvent]]:
        """Like :meth:`decide`, and also return the events it logged (``pid``: the
        forked child that decided, recorded in them)."""
        merged = NOTHING
        events: list[FaultEvent] = []
        connection = op.connection
        kind = op.kind
        index = op.index
        if kind == ACCEPT:  # accept() has no index of its own: its retries count
            if connection != self._accepting:
                self._accepting, self._accept_errors = connection, 0
            index = self._accept_errors
        counter = self._counter
        if counter is not None:  # aimed at this operation (see _derive)
            counter.op, counter.index = op, index
        for i, model in self._candidates(kind, op.layer):
            if model.scoped and not model.in_scope(op):
                gap = model.bytes_until_window(op)
                if gap:  # stop exactly where the model's window opens (scope, not a
                    # fault: not logged)
                    merged = merged.merge(Decision(limit=gap))
                continue
            self.reached.add(i)
            rng: random.Random
            if counter is not None:
                rng = counter
                counter.model, counter.state = i, None
            else:
                rng = self._given_rng(i)
            if model.probability < 1.0:
                if model.per == "connection":
                    key = (connection, i)
                    affected = self._affected.get(key)
                    if affected is None:
                        if counter is not None:  # its own draw, not the operation's
                            counter.aim(op, i, 0, AFFECTED)
                        affected = self._affected[key] = rng.random() < model.probability
                        if counter is not None:
                            counter.aim(op, i, index)
                    if not affected:
                        continue
                elif rng.random() >= model.probability:
                    continue
            state = self._state(model, connection, i) if i in self._stateful else None
            decision = model.decide(op, rng, state)
            if decision is None or decision == NOTHING or _changes_nothing(decision, op):
                continue
            if model.limits_position and decision.only_limits():
                # stop where the fault begins (not logged: the fault is, once reached)
                merged = merged.merge(decision)
                continue
            merged = decision if merged is NOTHING else merged.merge(decision)
            events.append(self._event(op, i, decision, pid))
        if kind == ACCEPT and merged.action == ERROR:
            self._accept_errors += 1
        if events:
            self.record(events)
        return merged, events

    def connection_ended(self, connection: int) -> None:
        """Forget what the plan keeps for ``connection`` (stateful models' state,
        ``per="connection"`` draws): the fault layer, ``drive()`` and the fault
        proxy call it when a connection closes, or a datagram peer expires.

        With a seed, decisions do not change: nothing else is kept, and a connection
        that came back (a datagram peer is numbered anew) would start afresh. The
        log is kept (bounded by ``log_limit``).
        """
        if not isinstance(connection, int):
            check_number(
                "connection", connection, integer=True, source="FaultPlan.connection_ended()"
            )
        for i in self._per_connection:
            key = (connection, i)
            self._states.pop(key, None)
            self._affected.pop(key, None)

    def _event(self, op: Operation, i: int, decision: Decision, pid: int | None) -> FaultEvent:
        return FaultEvent(
            op.connection,
            op.kind,
            op.index,
            op.offset,
            op.size,
            self.models[i],
            decision,
            op.address,
            op.now,
            pid,
        )

    def record(self, events: Iterable[FaultEvent]) -> None:
        """Add events to the log (a forked child's, decided in another process)."""
        for event in events:
            if len(self._log) < self._log_limit:
                self._log.append(event)
            else:
                self.unlogged += 1

    # -- reading ---------------------------------------------------------------

    @property
    def log(self) -> list[FaultEvent]:
        """Every decision so far, in the order they were made (a copy; at most
        ``log_limit`` of them, see :attr:`unlogged`). Reading it does no I/O:
        forked children's decisions arrive as the fault layer collects them."""
        return list(self._log)

    def log_by_connection(self) -> dict[int, list[FaultEvent]]:
        """The log grouped by connection, each in its own order: what stays equal
        between runs with the same seed, however threads interleaved.

        Returns:
            ``{connection: [FaultEvent, ...]}``, connections in accept order.
        """
        grouped: dict[int, list[FaultEvent]] = {}
        for event in self.log:
            grouped.setdefault(event.connection, []).append(event)
        return {k: grouped[k] for k in sorted(grouped)}

    def describe(self, limit: int | None = 200) -> str:
        """The plan and its log, for a human reading a failed test (at most ``limit``
        events; ``None``: all of them).

        Args:
            limit: the most events to list (``None``: every one).

        Returns:
            Several lines: the seed, the models, each connection's decisions, and the
            expression that replays the plan.
        """
        if limit is None:
            limit = len(self._log)
        check_number("limit", limit, low=0, integer=True, source="FaultPlan.describe()")
        events = self.log
        lines = [
            f"FaultPlan({self._source()}): {len(events) + self.unlogged} fault(s) injected",
            "  models: " + (", ".join(self._descriptions) or "(none)"),
        ]
        shown = 0
        for connection, group in self.log_by_connection().items():
            name = "listener" if connection == _LISTENER else f"connection {connection}"
            address = next((e.address for e in group if e.address is not None), None)
            lines.append(
                f"  {name}" + (f" from {_address(address)}" if address is not None else "") + ":"
            )
            for event in group:
                if shown >= limit:
                    break
                lines.append(f"    {event}")
                shown += 1
        if len(events) > shown:
            lines.append(f"  ... and {len(events) - shown} more")
        if self.unlogged:
            lines.append(
                f"  ... and {self.unlogged} more not kept (the log keeps "
                f"{self._log_limit}: FaultPlan(log_limit=...))"
            )
        lines.append(f"  replay: FaultPlan(*models, {self._source(full=True)})")
        return "\n".join(lines)

    def _source(self, full: bool = False) -> str:
        """Where the decisions come from, as the plan's arguments say it."""
        if self._model_rngs is not None:
            return f"rng=[{', '.join(map(repr, self._model_rngs))}]" if full else "rng=[...]"
        if self._shared_rng is not None:
            return "rng=..."
        return f"seed={self.seed}"

    def replay(self) -> FaultPlan:
        """A fresh plan (an empty log) that makes the same decisions for the same
        operations: the same models and seed; with ``rng=``, each generator again
        from the state it had when this plan was made (:class:`~sockshock.faults.Draws`:
        the same numbers from the start).

        Returns:
            A new FaultPlan.

        Raises:
            InvalidArgument: for a generator that cannot be copied (a subclass of
                ``random.Random`` without ``__copy__``); the message says how to
                replay instead.
        """
        if self._replay_rngs is None:
            return FaultPlan(*self.models, seed=self.seed, log_limit=self._log_limit)
        plan = FaultPlan(*self.models, log_limit=self._log_limit)
        if any(r is None for r in self._replay_rngs):
            culprit = next(
                r
                for r, snap in zip(self._given_rngs(), self._replay_rngs, strict=True)
                if snap is None
            )
            raise InvalidArgument(
                f"replay() cannot reproduce {self!r}: its generator {culprit!r} "
                f"(type={type(culprit).__name__}) cannot be copied (it has no __copy__), so "
                "the state it started in is lost; replay with FaultPlan(*models, rng=...) "
                "given a generator in that state again, or use seed= or "
                "sockshock.faults.Draws, which replay exactly (from FaultPlan.replay())"
            )
        fresh = tuple(_restart(r) for r in self._replay_rngs if r is not None)
        if self._model_rngs is not None:
            plan._model_rngs = fresh
        else:
            plan._shared_rng = fresh[0]
        plan._replay_rngs = self._replay_rngs
        plan.seed = self.seed  # (shown only: the generators decide)
        return plan

    def _given_rngs(self) -> tuple[random.Random, ...]:
        if self._model_rngs is not None:
            return self._model_rngs
        return () if self._shared_rng is None else (self._shared_rng,)

    @property
    def seeded(self) -> bool:
        """Whether the seed makes the decisions (not generators given as ``rng=``)."""
        return self._model_rngs is None and self._shared_rng is None

    def _claim(self, user: str) -> None:
        """Mark the plan as in use by one run (``user``: which, for the error); a
        second run would not replay the first -- a drawn plan's numbers are spent; a
        seeded plan keeps its plan-wide state (``AcceptErrors``' count, an
        ``AbruptShutdown`` fired) -- and would add to the same log, so it is refused
        (use :meth:`replay`).

        Raises:
            InvalidArgument: the plan was claimed before.
        """
        if self._claimed is not None:
            raise InvalidArgument(
                f"{user} got {self!r}, a plan an earlier {self._claimed} used: it is spent "
                "(a drawn plan's Draws are used up; a seeded plan keeps its log and "
                "plan-wide state), so this run would not replay the first and would add to "
                "the same log; pass plan.replay() for a fresh plan that makes the same "
                "decisions"
            )
        self._claimed = user

    def __bool__(self) -> bool:
        return bool(self.models)

    def __repr__(self) -> str:
        source = self._source(full=True)
        return f"FaultPlan({', '.join(self._descriptions)}{', ' if self.models else ''}{source})"

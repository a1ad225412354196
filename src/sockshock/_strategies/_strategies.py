"""Hypothesis strategies for fuzzing request handlers (public: ``sockshock.strategies``).

Everything here shrinks towards the simplest and gentlest case: fewer fault
models, each with its gentlest parameters (the largest chunk, no delay...),
fault decisions that do not fire (each model's decisions are drawn in advance,
:class:`~sockshock.faults.Draws`), a payload in one piece, datagrams in order and
none lost, a client that sends its whole request, half-closes and reads the reply.

Importing this module imports hypothesis; ``import sockshock`` and the pytest
plugin do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from sockshock import _faults as F
from sockshock._clients import (
    ClientScript,
    Close,
    HalfClose,
    Pause,
    Read,
    Reset,
    Send,
    Step,
    abbreviate,
)
from sockshock._faults import MAX_COPIES, MAX_DELAY, FaultModel
from sockshock._util import (
    InvalidArgument,
    check_choice,
    check_number,
    check_seconds,
    check_type,
    exported_by,
)

__all__ = [
    "DATAGRAM_MODELS",
    "STREAM_MODELS",
    "chunkings",
    "client_scripts",
    "datagram_schedules",
    "fault_models",
    "fault_plans",
]

#: The models :func:`fault_plans` draws by default, gentlest first (a list of
#: models shrinks towards the first ones).
STREAM_MODELS: tuple[type[FaultModel], ...] = (
    F.Latency,
    F.PartialWrites,
    F.PartialReads,
    F.SlowReader,
    F.SlowClient,
    F.Bandwidth,
    F.EOFAfter,
    F.Stall,
    F.ResetAfter,
)
DATAGRAM_MODELS: tuple[type[FaultModel], ...] = (
    F.TruncateDatagrams,
    F.CorruptDatagrams,
    F.DuplicateDatagrams,
    F.ReorderDatagrams,
    F.DropDatagrams,
    F.BurstLoss,
)

_PROBABILITIES = (0.25, 0.5, 0.75, 1.0)  # shrinks towards the rarest


def _largest_first(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high] that shrink towards ``high``."""
    return st.integers(0, high - low).map(lambda k: high - k)


def _seconds(high: float) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(0.0, high, allow_nan=False)) if high else st.just(0.0)


def _parameters(
    model: type[FaultModel], max_bytes: int, max_delay: float, source: str
) -> st.SearchStrategy[dict[str, Any]]:
    """The keyword arguments of ``model``, each shrinking towards its gentlest value."""
    chunk = _largest_first(1, max_bytes)
    # Anywhere, or within a few bytes of the end: a request that lost only its
    # terminator (a final newline, a closing brace) is the classic cut.
    nbytes = st.integers(0, max_bytes) | st.integers(0, min(8, max_bytes)).map(
        lambda k: max_bytes - k
    )
    stream = st.sampled_from(("in", "out", "both"))
    inout = st.sampled_from(("in", "out"))
    probability = st.sampled_from(_PROBABILITIES)
    table: dict[type[FaultModel], dict[str, st.SearchStrategy[Any]]] = {
        F.PartialReads: {"max_chunk": chunk},
        F.PartialWrites: {"max_chunk": chunk},
        F.Latency: {
            "seconds": _seconds(max_delay),
            "jitter": _seconds(max_delay),
            "direction": stream,
        },
        F.Bandwidth: {
            "bytes_per_second": st.sampled_from((1e6, 1e5, 1e4, 1e3, 100.0)),
            "direction": stream,
        },
        F.SlowClient: {"chunk": chunk, "pause": _seconds(max_delay)},
        F.SlowReader: {"chunk": chunk, "pause": _seconds(max_delay)},
        F.ResetAfter: {"nbytes": nbytes, "direction": inout},
        F.EOFAfter: {"nbytes": nbytes},
        F.Stall: {"nbytes": nbytes},
        F.DropDatagrams: {"probability": probability, "direction": inout},
        F.DuplicateDatagrams: {
            "probability": probability,
            "copies": st.integers(1, 3),
            "direction": inout,
        },
        F.ReorderDatagrams: {
            "probability": st.sampled_from((0.5, 0.25, 0.75)),
            "window": st.integers(1, 4),
            "direction": inout,
        },
        F.CorruptDatagrams: {
            "probability": probability,
            "bits": st.integers(1, 8),
            "direction": inout,
        },
        F.TruncateDatagrams: {"max_size": _largest_first(0, max_bytes), "direction": inout},
        F.BurstLoss: {
            "p": st.sampled_from((0.05, 0.2, 0.5)),
            "r": st.sampled_from((0.9, 0.5, 0.2)),
            "direction": inout,
        },
        F.AcceptErrors: {
            "errno": st.sampled_from(("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED")),
            "times": st.integers(1, 3),
        },
        F.AbruptShutdown: {"direction": inout, "after_bytes": nbytes},
    }
    for cls in model.__mro__:
        if cls in table:
            return st.fixed_dictionaries(table[cls])
    raise InvalidArgument(
        f"{model.__name__} (from {source}) has no known "
        "parameters: give an instance, or a strategy of instances"
    )


def _scopes(max_bytes: int, model: type[FaultModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Scope arguments; each shrinks towards leaving it out (for accept errors only
    those that can select an accept())."""
    optional: dict[str, st.SearchStrategy[Any]] = {
        "after_bytes": st.integers(0, max_bytes),
        "first_ops": st.integers(1, 8),
        "probability": st.sampled_from(_PROBABILITIES),
        "per": st.just("connection"),
        "connections": st.integers(0, 3),
    }
    if issubclass(model, F.AcceptErrors):
        del optional["after_bytes"], optional["first_ops"]
    return st.fixed_dictionaries({}, optional=optional)


@exported_by("sockshock.strategies")
def fault_models(
    model: type[FaultModel], *, scopes: bool = False, max_bytes: int = 64, max_delay: float = 1.0
) -> st.SearchStrategy[FaultModel]:
    """Instances of ``model`` (a fault model class, such as ``faults.PartialReads``)
    with drawn parameters (and, with ``scopes``, scope arguments), shrinking towards
    its gentlest form.

    Args:
        model: the fault model class.
        scopes: also draw scope arguments (connections, windows, probabilities).
        max_bytes: the largest byte count drawn (chunks, offsets).
        max_delay: the longest delay drawn, in seconds.

    Returns:
        A strategy of instances of ``model``.
    """
    source = "fault_models()"
    if not (isinstance(model, type) and issubclass(model, FaultModel)) or model is FaultModel:
        hint = (
            f" (the class itself: sockshock.faults.{model})"
            if isinstance(model, str) and isinstance(getattr(F, model, None), type)
            else ""
        )
        raise InvalidArgument(
            f"expected a fault model class such as sockshock.faults.PartialReads "
            f"but got model={model!r} (type={type(model).__name__}){hint} "
            f"(from {source})"
        )
    check_type("scopes", scopes, bool, source=source)
    check_number("max_bytes", max_bytes, low=1, high=65536, integer=True, source=source)
    check_number("max_delay", max_delay, low=0, high=MAX_DELAY, source=source)
    return _fault_models(model, scopes, max_bytes, max_delay, source)


def _fault_models(
    model: type[FaultModel], scopes: bool, max_bytes: int, max_delay: float, source: str
) -> st.SearchStrategy[FaultModel]:
    return _model(
        model,
        _parameters(model, max_bytes, max_delay, source),
        _scopes(max_bytes, model) if scopes else st.just({}),
    )


# Composite strategies: a failing example prints each value's repr.


@st.composite
def _model(
    draw: Any,
    model: type[FaultModel],
    params: st.SearchStrategy[dict[str, Any]],
    scopes: st.SearchStrategy[dict[str, Any]],
) -> FaultModel:
    return model(**{**draw(scopes), **draw(params)})  # the model's own win


#: One decision, in thousandths: 0 is the gentlest (see ``faults.Draws``).
_UNITS = st.integers(0, 999).map(lambda k: k / 1000)


def _no_op(model: FaultModel) -> bool:
    """A model that can change nothing (``Latency(seconds=0.0)``): left out of a
    drawn plan, so that it shrinks away -- under ``seeded=True`` deleting a model
    before another changes that one's decisions, so hypothesis could not."""
    return isinstance(model, F.Latency) and model.seconds == 0 and model.jitter == 0


@st.composite
def _plan(draw: Any, chosen: st.SearchStrategy[list[Any]], seeded: bool) -> F.FaultPlan:
    if seeded:
        models = [model for model in draw(chosen) if not _no_op(model)]
        return F.FaultPlan(*models, seed=draw(st.integers(0, 2**32 - 1)))
    pairs = [(model, units) for model, units in draw(chosen) if not _no_op(model)]
    return F.FaultPlan(*[model for model, _ in pairs], rng=[F.Draws(units) for _, units in pairs])


def _models_strategy(
    items: Sequence[Any], *, scopes: bool, max_bytes: int, max_delay: float
) -> st.SearchStrategy[FaultModel]:
    choices = []
    for item in items:
        if isinstance(item, FaultModel):
            choices.append(st.just(item))
        elif isinstance(item, type) and issubclass(item, FaultModel):
            choices.append(
                _fault_models(item, scopes, max_bytes, max_delay, "fault_plans(models=...)")
            )
        elif isinstance(item, st.SearchStrategy):
            choices.append(item)
        else:
            raise InvalidArgument(
                f"expected a fault model class, a model or a strategy of models "
                f"but got {item!r} (type={type(item).__name__}) "
                "(from fault_plans(models=...))"
            )
    if not choices:
        raise InvalidArgument(
            "fault_plans(models=[]) has nothing to draw from; give "
            "max_models=0 for plans without faults"
        )
    return st.one_of(choices)


@exported_by("sockshock.strategies")
def fault_plans(
    transport: str = "stream",
    *,
    models: Sequence[Any] | None = None,
    min_models: int = 0,
    max_models: int = 3,
    scopes: bool = False,
    max_bytes: int | str | None = None,
    max_delay: float = 1.0,
    max_decisions: int = 32,
    seeded: bool = False,
    request: bytes | int | None = None,
) -> st.SearchStrategy[F.FaultPlan]:
    """Fault plans: a few models, their parameters, and every decision they make,
    drawn by hypothesis.

    Args:
        transport: ``"stream"`` or ``"datagram"``: which models by default
            (:data:`STREAM_MODELS`, :data:`DATAGRAM_MODELS`).
        models: draw from these instead: model classes (parameters drawn), model
            instances (as they are) or strategies of models.
        min_models: the fewest models in a plan.
        max_models: the most models in a plan.
        scopes: draw scope arguments too (``after_bytes``, ``first_ops``,
            ``probability``, ``per``, ``connections``).
        max_bytes: the largest byte count drawn (chunk sizes, ``nbytes``,
            ``after_bytes``...); ``"request"``: the length of ``request`` (the
            default when it is given), so that ``EOFAfter``, ``ResetAfter`` and
            ``Stall`` can cut the request anywhere, however long.
        max_delay: the longest delay drawn, in seconds (use virtual time: ``drive()``
            does; ``serving(clock="virtual")``).
        max_decisions: how many random decisions are drawn for each model; the
            operations after those get the gentlest (``faults.Draws``).
        seeded: draw a seed instead of the decisions: for a plan shared by several
            connections whose order is up to threads (a live server: see
            ``ServerMachine``), decisions per connection and model from the seed.
            They then do not shrink; the models do.
        request: the request the plan will meet (bytes, or its length): byte
            counts are drawn up to its length (``max_bytes="request"``). Draw
            the request first, then the plan: ``script = data.draw(client_scripts(...));
            plan = data.draw(fault_plans(request=script.intended))``.

    Returns:
        A strategy of :class:`~sockshock.faults.FaultPlan`. Unless ``seeded``, each
        model draws from its own :class:`~sockshock.faults.Draws`, numbers drawn
        by hypothesis in advance: they shrink towards the gentlest decision (the
        gate that does not fire, the largest chunk, no delay), a model dropped
        drops its decisions with it, and the plan's repr -- which hypothesis prints
        for a failing example -- is its exact replay,
        ``FaultPlan(PartialReads(max_chunk=64), rng=[Draws([0.0, 0.953])])``. A
        plan keeps state: use each one for one run (``drive()`` call, server).
    """
    check_choice("transport", transport, ("stream", "datagram"), source="fault_plans()")
    max_bytes = _request_bytes(request, max_bytes)
    check_number("min_models", min_models, low=0, high=20, integer=True, source="fault_plans()")
    check_number(
        "max_models", max_models, low=min_models, high=20, integer=True, source="fault_plans()"
    )
    check_number(
        "max_bytes", max_bytes, low=1, high=2**31 - 1, integer=True, source="fault_plans()"
    )
    check_number("max_delay", max_delay, low=0, high=MAX_DELAY, source="fault_plans()")
    check_type("scopes", scopes, bool, source="fault_plans()")
    check_type("seeded", seeded, bool, source="fault_plans()")
    check_number(
        "max_decisions", max_decisions, low=0, high=10_000, integer=True, source="fault_plans()"
    )
    items = (
        models
        if models is not None
        else (STREAM_MODELS if transport == "stream" else DATAGRAM_MODELS)
    )
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidArgument(
            f"expected a list of model classes, models or strategies but got "
            f"models={models!r} (from fault_plans())"
        )
    drawn = (
        _models_strategy(items, scopes=scopes, max_bytes=max_bytes, max_delay=max_delay)
        if max_models
        else st.nothing()
    )
    if not seeded:  # each model with its own decisions: dropping one drops them too
        drawn = st.tuples(drawn, st.lists(_UNITS, max_size=max_decisions))
    return _plan(st.lists(drawn, min_size=min_models, max_size=max_models), seeded)


_MAX_BYTES = 64  # fault_plans()' default max_bytes without a request


def _request_bytes(request: bytes | int | None, max_bytes: int | str | None) -> int:
    """``fault_plans()``' ``max_bytes`` from its ``request`` and ``max_bytes``."""
    source = "fault_plans()"
    if request is not None:
        if isinstance(request, (bytes, bytearray, memoryview)):
            length = len(bytes(request))
        elif isinstance(request, int) and not isinstance(request, bool):
            check_number("request", request, low=0, high=2**31, integer=True, source=source)
            length = request
        else:
            raise InvalidArgument(
                f"expected the request (bytes) or its length (int) but got "
                f"request={abbreviate(repr(request))} (type={type(request).__name__}) "
                f"(from {source}); draw the request first, then the plan: "
                "plan = data.draw(fault_plans(request=script.intended))"
            )
        if max_bytes is None or max_bytes == "request":
            return max(1, length)
    elif max_bytes == "request":
        raise InvalidArgument(
            "max_bytes='request' (from fault_plans()) needs the request: give "
            "request=<the request's bytes or length> too"
        )
    if max_bytes is None:
        return _MAX_BYTES
    if isinstance(max_bytes, str):
        raise InvalidArgument(
            f"expected a number of bytes or 'request' but got max_bytes={max_bytes!r} "
            f"(from {source})"
        )
    return max_bytes


def _payloads(
    payload: bytes | st.SearchStrategy[bytes], source: str, name: str = "payload"
) -> st.SearchStrategy[bytes]:
    if isinstance(payload, (bytes, bytearray)):
        return st.just(bytes(payload))
    if isinstance(payload, st.SearchStrategy):
        return payload
    raise InvalidArgument(
        f"expected bytes or a strategy of bytes but got {name}={payload!r} "
        f"(type={type(payload).__name__}) (from {source})"
    )


@st.composite
def _split(draw: Any, payload: bytes, max_chunks: int | None) -> list[bytes]:
    if len(payload) < 2 or max_chunks == 1:
        return [payload]
    cuts = sorted(
        draw(
            st.sets(
                st.integers(1, len(payload) - 1),
                max_size=None if max_chunks is None else max_chunks - 1,
            )
        )
    )
    return [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]


@exported_by("sockshock.strategies")
def chunkings(
    payload: bytes | st.SearchStrategy[bytes], *, max_chunks: int | None = None
) -> st.SearchStrategy[list[bytes]]:
    """Ways to split ``payload`` (bytes, or a strategy of bytes) into non-empty
    chunks that join back to it -- as ``drive()`` delivers them: each chunk a read
    (or more) of its own. Shrinks towards one chunk. An empty payload: ``[b""]``.

    Args:
        payload: the bytes to split, or a strategy of them.
        max_chunks: the most chunks (default: one per byte).

    Returns:
        A strategy of lists of byte strings.
    """
    if max_chunks is not None:
        check_number("max_chunks", max_chunks, low=1, integer=True, source="chunkings()")
    return _payloads(payload, "chunkings()").flatmap(lambda p: _split(p, max_chunks))


@exported_by("sockshock.strategies")
def datagram_schedules(
    datagrams: Sequence[bytes] | st.SearchStrategy[Sequence[bytes]],
    *,
    drop: bool = True,
    duplicate: bool = True,
    reorder: bool = True,
    max_copies: int = 2,
    max_window: int = 3,
) -> st.SearchStrategy[list[bytes]]:
    """The order in which ``datagrams`` arrive over a network that loses
    (``drop``), duplicates (``duplicate``, up to ``max_copies`` in all) and
    reorders (``reorder``: each one held back behind up to ``max_window`` later
    ones) them. Shrinks towards every datagram once, in order.

    Send them as a client would -- ``drive(handler, schedule, transport="datagram")``
    -- to test a handler against exactly that delivery.

    Args:
        datagrams: what the client sends, in order (or a strategy of it).
        drop: let datagrams be lost.
        duplicate: let datagrams arrive more than once.
        reorder: let datagrams arrive late.
        max_copies: the most times one datagram arrives.
        max_window: the most later datagrams one is held behind.

    Returns:
        A strategy of lists of datagrams in arrival order.
    """
    check_number(
        "max_copies",
        max_copies,
        low=1,
        high=MAX_COPIES,
        integer=True,
        source="datagram_schedules()",
    )
    check_number(
        "max_window", max_window, low=1, high=1000, integer=True, source="datagram_schedules()"
    )
    for name, flag in (("drop", drop), ("duplicate", duplicate), ("reorder", reorder)):
        check_type(name, flag, bool, source="datagram_schedules()")
    fates = st.integers(0, (max_copies if duplicate else 1) if drop or duplicate else 0)
    delays = st.integers(0, max_window) if reorder else st.just(0)
    if isinstance(datagrams, st.SearchStrategy):
        base = datagrams
    else:
        items = list(datagrams)
        if not all(isinstance(d, (bytes, bytearray)) for d in items):
            raise InvalidArgument(
                f"expected a list of byte strings but got datagrams={datagrams!r} "
                "(from datagram_schedules())"
            )
        base = st.just(items)

    @st.composite
    def arrange(draw: Any) -> list[bytes]:
        items = draw(base)
        keyed = []
        for i in range(len(items)):
            fate, delay = draw(fates), draw(delays)
            # fate 0: once; 1: lost (if dropping); more: that many copies
            copies = 1 if fate == 0 else (0 if drop and fate == 1 else fate)
            keyed += [(i + delay + c, i, c) for c in range(copies)]
        return [bytes(items[i]) for _, i, _ in sorted(keyed)]

    return arrange()


_ENDINGS = ("half_close", "close", "reset", "stop_midway")


def _stream_script(
    chunks: list[bytes],
    pauses: list[float | None],
    ending: str,
    cut: int,
    timeout: float,
    intended: bytes,
) -> ClientScript:
    steps: list[Step] = []
    for chunk, wait in zip(chunks[:cut], [None, *pauses][:cut], strict=True):
        if wait is not None:
            steps.append(Pause(wait))
        steps.append(Send(chunk))
    if ending == "half_close":
        steps += [HalfClose(), Read()]
    elif ending in ("close", "stop_midway"):
        steps.append(Close())
    else:
        steps.append(Reset())
    return ClientScript(tuple(steps), timeout=timeout, intended=intended)


@exported_by("sockshock.strategies")
def client_scripts(
    request: bytes | st.SearchStrategy[bytes] | None = None,
    *,
    transport: str = "stream",
    max_chunks: int = 4,
    max_pause: float = 1.0,
    endings: Sequence[str] = _ENDINGS,
    timeout: float = 5.0,
) -> st.SearchStrategy[ClientScript]:
    """Scripts of clients that send ``request`` (bytes or a strategy of them;
    default: up to 64 arbitrary bytes) in chunks, with pauses, and end one way or
    another.

    Stream endings (``endings``, the first is where shrinking goes):
    ``"half_close"`` (a half-close, then the reply read to end of file),
    ``"close"`` (closed without reading), ``"reset"`` (an RST), ``"stop_midway"``
    (only the first chunks of the request, then a close). Datagram scripts send
    each chunk as a datagram and read one reply after each.

    ``script.request`` is what a script sends, ``script.intended`` the whole
    request it was drawn from (more than ``request`` only for ``"stop_midway"``),
    ``script.ending`` how it ends and ``script.complete`` whether it sends its
    whole request -- so that a property can tell a cut request from a complete
    one. Pauses are up to ``max_pause``
    seconds (virtual in ``drive()``, real on real sockets); ``timeout`` bounds
    every read.

    Args:
        request: what the client sends (default: up to 64 drawn bytes).
        transport: ``"stream"`` or ``"datagram"``.
        max_chunks: the most chunks the request is sent in.
        max_pause: the longest pause between chunks, in seconds.
        endings: the stream endings to draw from, in shrinking order.
        timeout: the bound of every read, in seconds.

    Returns:
        A strategy of :class:`~sockshock.scripts.ClientScript`.
    """
    check_choice("transport", transport, ("stream", "datagram"), source="client_scripts()")
    check_number("max_chunks", max_chunks, low=1, integer=True, source="client_scripts()")
    check_seconds("max_pause", max_pause, allow_zero=True, source="client_scripts()")
    check_seconds("timeout", timeout, source="client_scripts()")
    if isinstance(endings, (str, bytes)) or not isinstance(endings, Sequence):
        raise InvalidArgument(
            f"expected a list of endings ({', '.join(map(repr, _ENDINGS))}) but got "
            f"endings={endings!r} (type={type(endings).__name__})"
            f"{f'; for this one alone, endings=[{endings!r}]' if endings in _ENDINGS else ''}"
            " (from client_scripts())"
        )
    endings = tuple(endings)
    for ending in endings:
        check_choice("endings", ending, _ENDINGS, source="client_scripts()")
    if not endings:
        raise InvalidArgument("client_scripts(endings=()) leaves no way to end a script")
    payloads = (
        st.binary(max_size=64)
        if request is None
        else _payloads(request, "client_scripts()", "request")
    )
    pause = st.none() | st.floats(0.0, max_pause, allow_nan=False) if max_pause else st.none()

    @st.composite
    def build(draw: Any) -> ClientScript:
        payload = draw(payloads)
        parts = draw(_split(payload, max_chunks))
        waits = [draw(pause) for _ in parts[1:]]
        if transport == "datagram":
            steps: list[Step] = []
            for part, wait in zip(parts, [None, *waits], strict=True):
                if wait is not None:
                    steps.append(Pause(wait))
                steps += [Send(part), Read()]
            return ClientScript(tuple(steps), timeout=timeout)
        ending = draw(st.sampled_from(endings))
        cut = draw(st.integers(0, len(parts) - 1)) if ending == "stop_midway" else len(parts)
        return _stream_script(parts, waits, ending, cut, timeout, payload)

    return build()


def _register() -> None:
    """``st.from_type`` knows plans, scripts and each model."""
    st.register_type_strategy(F.FaultPlan, fault_plans())
    st.register_type_strategy(ClientScript, client_scripts())
    for model in (*STREAM_MODELS, *DATAGRAM_MODELS, F.AcceptErrors, F.AbruptShutdown):
        st.register_type_strategy(model, fault_models(model))


_register()

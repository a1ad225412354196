"""The fault models by name: the one registry the scenario files, the command line
(``--fault``), the proxy's API and the strategies look models up in."""

from __future__ import annotations

from sockshock._faults._core import FaultModel
from sockshock._faults._datagram import (
    BurstLoss,
    CorruptDatagrams,
    DropDatagrams,
    DuplicateDatagrams,
    ReorderDatagrams,
    TruncateDatagrams,
)
from sockshock._faults._lifecycle import AbruptShutdown, AcceptErrors
from sockshock._faults._stream import (
    Bandwidth,
    EOFAfter,
    Latency,
    PartialReads,
    PartialWrites,
    ResetAfter,
    SlowClient,
    SlowReader,
    Stall,
)
from sockshock._util import InvalidArgument, did_you_mean

__all__ = ["MODELS", "model_named"]

#: Every public fault model, by its class name (a new model is registered here).
MODELS: dict[str, type[FaultModel]] = {
    cls.__name__: cls
    for cls in (
        PartialReads,
        PartialWrites,
        Latency,
        Bandwidth,
        SlowClient,
        SlowReader,
        ResetAfter,
        EOFAfter,
        Stall,
        DropDatagrams,
        DuplicateDatagrams,
        ReorderDatagrams,
        CorruptDatagrams,
        TruncateDatagrams,
        BurstLoss,
        AcceptErrors,
        AbruptShutdown,
    )
}


def model_named(name: object, *, where: str) -> type[FaultModel]:
    """The model class called ``name``, or one error naming the value, ``where`` it
    came from, the closest name and every name allowed."""
    model = MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise InvalidArgument(
            f"{where}: {name!r} is not a fault model; {did_you_mean(name, MODELS)}"
            f"allowed: {', '.join(sorted(MODELS))}"
        )
    return model

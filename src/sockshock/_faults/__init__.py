"""Pure fault models and the plan that composes them (no sockets, clocks or threads).

Modules, bottom-up: ``_core`` (operations, decisions, the scoped model base),
``_stream``, ``_datagram``, ``_lifecycle`` (the models), ``_draws`` (``Draws``:
numbers given in advance), ``_derive`` (a seeded plan's numbers: a function of
seed, connection, model and operation, nothing kept), ``_plan`` (``FaultPlan``)."""

from sockshock._faults._core import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    DROP,
    EOF,
    ERROR,
    MAX_DELAY,
    NOTHING,
    PLAINTEXT,
    RECV,
    RESET,
    SEND,
    SHUTDOWN,
    STALL,
    WIRE,
    Decision,
    FaultModel,
    Operation,
)
from sockshock._faults._datagram import (
    MAX_COPIES,
    BurstLoss,
    CorruptDatagrams,
    DropDatagrams,
    DuplicateDatagrams,
    ReorderDatagrams,
    TruncateDatagrams,
)
from sockshock._faults._draws import Draws
from sockshock._faults._fit import check_fit, misfit
from sockshock._faults._lifecycle import ACCEPT_ERRNOS, AbruptShutdown, AcceptErrors
from sockshock._faults._plan import FaultEvent, FaultPlan, make_plan
from sockshock._faults._registry import MODELS, model_named
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

__all__ = [
    "ACCEPT",
    "ACCEPT_ERRNOS",
    "DATAGRAM_IN",
    "DATAGRAM_OUT",
    "DROP",
    "EOF",
    "ERROR",
    "MAX_COPIES",
    "MAX_DELAY",
    "MODELS",
    "NOTHING",
    "PLAINTEXT",
    "RECV",
    "RESET",
    "SEND",
    "SHUTDOWN",
    "STALL",
    "WIRE",
    "AbruptShutdown",
    "AcceptErrors",
    "Bandwidth",
    "BurstLoss",
    "CorruptDatagrams",
    "Decision",
    "Draws",
    "DropDatagrams",
    "DuplicateDatagrams",
    "EOFAfter",
    "FaultEvent",
    "FaultModel",
    "FaultPlan",
    "Latency",
    "Operation",
    "PartialReads",
    "PartialWrites",
    "ReorderDatagrams",
    "ResetAfter",
    "SlowClient",
    "SlowReader",
    "Stall",
    "TruncateDatagrams",
    "check_fit",
    "make_plan",
    "misfit",
    "model_named",
]

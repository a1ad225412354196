"""Fault models: what can go wrong, decided from a seed, logged.

Stream (TCP and Unix stream): :class:`PartialReads`, :class:`PartialWrites`,
:class:`Latency`, :class:`Bandwidth`, :class:`SlowClient`, :class:`SlowReader`,
:class:`ResetAfter`, :class:`EOFAfter`, :class:`Stall`.

Datagram (UDP and Unix datagram): :class:`DropDatagrams`,
:class:`DuplicateDatagrams`, :class:`ReorderDatagrams`, :class:`CorruptDatagrams`,
:class:`TruncateDatagrams`, :class:`BurstLoss`.

Server lifecycle: :class:`AcceptErrors`, :class:`AbruptShutdown`.

Every model also takes the scope arguments of :class:`FaultModel` (``probability``,
``per``, ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``).
:class:`FaultPlan` composes models with a seed (or with generators, ``rng=``:
:class:`Draws` takes decisions drawn in advance, by hypothesis for instance);
the models are pure (this module imports no socket, clock or thread) and are
carried out by :class:`sockshock.FaultLayer`.
"""

from sockshock._faults import (
    AbruptShutdown,
    AcceptErrors,
    Bandwidth,
    BurstLoss,
    CorruptDatagrams,
    Draws,
    DropDatagrams,
    DuplicateDatagrams,
    EOFAfter,
    FaultPlan,
    Latency,
    PartialReads,
    PartialWrites,
    ReorderDatagrams,
    ResetAfter,
    SlowClient,
    SlowReader,
    Stall,
    TruncateDatagrams,
)

__all__ = [
    "AbruptShutdown",
    "AcceptErrors",
    "Bandwidth",
    "BurstLoss",
    "CorruptDatagrams",
    "Draws",
    "DropDatagrams",
    "DuplicateDatagrams",
    "EOFAfter",
    "FaultPlan",
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

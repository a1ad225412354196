"""Hypothesis strategies (``_strategies``) and the stateful machine (``_machine``): the only code that imports hypothesis."""

from sockshock._strategies._machine import ServerMachine
from sockshock._strategies._strategies import (
    DATAGRAM_MODELS,
    STREAM_MODELS,
    chunkings,
    client_scripts,
    datagram_schedules,
    fault_models,
    fault_plans,
)

__all__ = [
    "DATAGRAM_MODELS",
    "STREAM_MODELS",
    "ServerMachine",
    "chunkings",
    "client_scripts",
    "datagram_schedules",
    "fault_models",
    "fault_plans",
]

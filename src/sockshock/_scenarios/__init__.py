"""Scenarios: named, shareable fault scenarios in TOML files (``scenarios/``).

Modules, bottom-up: ``_toml`` (reading a file, and the line of each key),
``_model`` (what a scenario says, checked: one error per mistake with
``file:line``), ``_library`` (finding scenarios by name or path), ``_run``
(running one against a server in this process, or through the fault proxy
against one in another process, and judging its expectations)."""

from sockshock._scenarios._library import find, library, names
from sockshock._scenarios._model import Expectations, Load, Scenario, ServerSection, load
from sockshock._scenarios._run import (
    CLIENTS_CONNECT_WAIT,
    REPLY_IDLE,
    Check,
    ScenarioResult,
    check_transport,
    resolve,
    run,
    run_against,
)

__all__ = [
    "CLIENTS_CONNECT_WAIT",
    "REPLY_IDLE",
    "Check",
    "Expectations",
    "Load",
    "Scenario",
    "ScenarioResult",
    "ServerSection",
    "check_transport",
    "find",
    "library",
    "load",
    "names",
    "resolve",
    "run",
    "run_against",
]

"""Scenarios: named, shareable fault scenarios in TOML files (``scenarios/``).

Modules, bottom-up: ``_toml`` (reading a file, and the line of each key),
``_report`` (every mistake in a file, reported together), ``_model`` (what a
scenario says, checked: each mistake with ``file:line`` and its key),
``_library`` (finding scenarios by name or path), ``_run`` (running one against a
server in this process, or through the fault proxy against one in another
process, and judging its expectations)."""

from sockshock._scenarios._library import find, library, locate, names
from sockshock._scenarios._model import (
    Expectations,
    Load,
    Scenario,
    ServerSection,
    examine,
    load,
)
from sockshock._scenarios._report import Report
from sockshock._scenarios._run import (
    CLIENTS_CONNECT_WAIT,
    REPLY_IDLE,
    Check,
    ScenarioResult,
    check_transport,
    resolve,
    resolve_into,
    run,
    run_against,
)

__all__ = [
    "CLIENTS_CONNECT_WAIT",
    "REPLY_IDLE",
    "Check",
    "Expectations",
    "Load",
    "Report",
    "Scenario",
    "ScenarioResult",
    "ServerSection",
    "check_transport",
    "examine",
    "find",
    "library",
    "load",
    "locate",
    "names",
    "resolve",
    "resolve_into",
    "run",
    "run_against",
]

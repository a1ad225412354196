"""Scenarios: named, shareable fault scenarios in TOML files (``scenarios/``).

Modules, bottom-up: ``_toml`` (reading a file, and the line of each key),
``_model`` (what a scenario says, checked: one error per mistake with
``file:line``), ``_library`` (finding scenarios by name or path), ``_run``
(running one against a server in this process, or through the fault proxy
against one in another process, and judging its expectations).
"""

"""What the plugin's hooks need of a test before any fixture runs: the stash keys,
the test's fault seed and re-run lines, and sockshock's markers checked.

Light on purpose: the hooks import this at every pytest start-up, so nothing here
imports the harness (a ``faults`` marker's models and scenarios are looked at only
for a test that has one).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from sockshock._pytest._settings import MARKER_KEYS, check_marker, setting
from sockshock._util import InvalidArgument, check_number, check_seconds

if TYPE_CHECKING:
    from sockshock._faults import FaultModel

__all__ = [
    "CALL_FAILED",
    "FIXTURE",
    "PROXIES",
    "SESSION_SEED",
    "Reporting",
    "check_markers",
    "load_scenario",
    "marker_faults",
    "rerun_lines",
    "seed_for_test",
    "shutdown_bound",
]


class Reporting(Protocol):
    """What a failing test's report asks of the fixture (``SockshockFixture``)."""

    def report(self) -> str: ...


SESSION_SEED = pytest.StashKey[int]()
FIXTURE = pytest.StashKey[Reporting]()
CALL_FAILED = pytest.StashKey[bool]()
PROXIES = pytest.StashKey[Any]()


def seed_for_test(config: pytest.Config, item: pytest.Item) -> int:
    """The fault seed of ``item``: fixed, or derived from the session seed and node id."""
    fixed = setting(config, item, "seed")
    if fixed is not None:
        return int(fixed)
    import hashlib  # on first use: not at pytest's start

    digest = hashlib.sha256(f"{config.stash[SESSION_SEED]}/{item.nodeid}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def rerun_lines(config: pytest.Config, item: pytest.Item, seed: int) -> list[str]:
    """The head of a failing test's sockshock section: its seed and how to re-run it."""
    return [
        f"fault seed: {seed} (session seed {config.stash[SESSION_SEED]})",
        "re-run this test with the same faults:",
        f"  pytest {shlex.quote(item.nodeid)} --sockshock-seed={seed}",
    ]


_SCENARIOS = pytest.StashKey[dict[str, Any]]()  # on the config: scenarios by name, loaded


def load_scenario(config: pytest.Config, spec: str, source: str) -> Any:
    """The scenario ``spec`` names (loaded once per run), or one usage error."""
    from sockshock._scenarios import find

    cache = config.stash.setdefault(_SCENARIOS, {})
    if spec not in cache:
        try:
            cache[spec] = find(spec, source=source)
        except InvalidArgument as exc:
            raise pytest.UsageError(f"sockshock: {exc}") from None
    return cache[spec]


def marker_faults(config: pytest.Config, item: pytest.Item) -> tuple[list[FaultModel], list[Any]]:
    """The models and a scenario's misbehaving clients of the test's
    ``@pytest.mark.faults`` -- models, or names of scenarios -- or of
    ``--sockshock-scenario``; one usage error for a bad marker."""
    models: list[FaultModel] = []
    clients: list[Any] = []
    where = f"@pytest.mark.faults on {item.nodeid}"
    specs: list[tuple[Any, str]] = []
    for marker in item.iter_markers("faults"):
        if marker.kwargs:
            given = ", ".join(f"{key}={value!r}" for key, value in marker.kwargs.items())
            hint = (
                " (the fault seed is @pytest.mark.sockshock(seed=...))"
                if "seed" in marker.kwargs
                else ""
            )
            raise pytest.UsageError(
                f"sockshock: {where}: takes fault models and scenario "
                f"names only, no keywords: {given}{hint}"
            )
        specs.extend((arg, where) for arg in marker.args)
    if not specs:
        scenario = setting(config, item, "scenario")
        if scenario is not None:
            specs = [(scenario, "--sockshock-scenario")]
    if specs:  # the fault models' layer: imported only for a test that has some
        from sockshock._faults import FaultModel
    for spec, source in specs:
        if isinstance(spec, FaultModel):
            models.append(spec)
        elif isinstance(spec, str):
            scenario = load_scenario(config, spec, source)
            models.extend(scenario.faults)
            clients.extend(scenario.clients)
        elif isinstance(spec, type) and issubclass(spec, FaultModel):
            raise pytest.UsageError(
                f"{source}: {spec.__name__} is a fault model class; give an instance: "
                f"sockshock.faults.{spec.__name__}()"
            )
        else:
            raise pytest.UsageError(
                f"{source}: {spec!r} (type={type(spec).__name__}) is not a fault model "
                "(sockshock.faults.PartialReads(3), ...) or a scenario's name"
            )
    return models, clients


def shutdown_bound(config: pytest.Config, item: pytest.Item) -> tuple[float, dict[str, Any]] | None:
    """The test's ``@pytest.mark.shutdown_within(seconds, busy=, stalled=)``, checked;
    None without one."""
    marker = item.get_closest_marker("shutdown_within")
    if marker is None:
        return None
    where = f"@pytest.mark.shutdown_within on {item.nodeid}"
    unknown = sorted(set(marker.kwargs) - {"busy", "stalled"})
    if len(marker.args) != 1 or unknown:
        given = ", ".join(
            [*map(repr, marker.args), *(f"{k}={marker.kwargs[k]!r}" for k in unknown)]
        )
        raise pytest.UsageError(
            f"{where}: shutdown_within({given}): use shutdown_within(seconds, busy=0, stalled=0)"
        )
    try:
        check_seconds("seconds", marker.args[0], source=where)
        for name, value in marker.kwargs.items():
            check_number(name, value, low=0, high=1000, integer=True, source=where)
    except InvalidArgument as exc:
        raise pytest.UsageError(f"sockshock: {exc}") from None
    return marker.args[0], dict(marker.kwargs)


def check_markers(config: pytest.Config, item: pytest.Item) -> None:
    """Every sockshock marker of ``item``, checked (at collection: a test that does
    not use the fixture would never look at them)."""
    check_marker(item)
    for name in MARKER_KEYS:
        setting(config, item, name)
    shutdown_bound(config, item)
    marker_faults(config, item)

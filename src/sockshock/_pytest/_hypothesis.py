"""The pytest plugin meets hypothesis: one seed for both, servers per example.

For a test written with hypothesis' ``@given`` that uses the ``sockshock`` fixture:

* the test's fault seed also seeds hypothesis (unless ``@seed``,
  ``--hypothesis-seed`` or ``derandomize`` say otherwise), so that
  ``--sockshock-seed=N`` replays both the faults and the examples;
* a server ``sockshock.serve()`` starts inside an example is stopped at the end of
  that example -- its handler errors fail that example, which hypothesis then
  shrinks --, so the fixture can be reused across examples: hypothesis'
  ``function_scoped_fixture`` health check is suppressed for it (not for other
  function-scoped fixtures the test takes).

Only hypothesis tests get here, and their module has imported hypothesis
already: nothing here imports it before that.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["adopt_hypothesis_test"]

_OURS = ("sockshock", "sockshock_audit")  # fixtures that are safe across examples


def adopt_hypothesis_test(request: pytest.FixtureRequest, seed: int) -> bool:
    """Prepare a hypothesis test that uses the fixture; True if its examples are
    now seeded with ``seed``."""
    item = request.node
    obj = getattr(item, "obj", None)
    if not getattr(obj, "is_hypothesis_test", False):
        return False
    test = getattr(obj, "__func__", obj)
    _allow_fixture_reuse(item, test)
    return _seed(test, seed, request.config)


def _seed(test: Any, seed: int, config: pytest.Config) -> bool:
    ours = getattr(test, "_sockshock_seeded", False)
    if getattr(test, "_hypothesis_internal_use_seed", None) is not None and not ours:
        return False  # the test's own @seed
    settings = getattr(test, "_hypothesis_internal_use_settings", None)
    if config.getoption("hypothesis_seed", None) is not None or (
        settings is not None and settings.derandomize
    ):
        return False
    test._hypothesis_internal_use_seed = seed
    test._sockshock_seeded = True
    return True


def _allow_fixture_reuse(item: Any, test: Any) -> None:
    from hypothesis import HealthCheck, settings

    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if current is None or HealthCheck.function_scoped_fixture in current.suppress_health_check:
        return
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    for name in info.argnames:
        definitions = info.name2fixturedefs.get(name)
        if name not in _OURS and definitions and definitions[-1].scope == "function":
            return  # hypothesis' check names that one
    test._hypothesis_internal_use_settings = settings(
        parent=current,
        suppress_health_check=[*current.suppress_health_check, HealthCheck.function_scoped_fixture],
    )

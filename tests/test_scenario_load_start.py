"""A scenario's verdict does not depend on how soon the load starts.

The runner starts the misbehaving clients, waits until they connected, then starts
the well-behaved load. On a loaded machine the load can start a few hundred
milliseconds late. A scenario whose culprit is caught only because its misbehaving
clients still hold the server while the load runs must keep them for the whole run
(the runner stops them when the load and the window are over), not for a duration
a little longer than the load's timeout: ``tls-handshake-stall`` once had idle
clients of 0.6 s against a load timeout of 0.5 s, and its culprit passed whenever
the load started 0.1 s late (it answered 3 or 4 of 6 requests instead of 2).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sockshock import scenarios as S
from sockshock._scenarios import _run
from tests.test_scenarios import CULPRITS

#: How late the load starts: a loaded machine's scheduling delay, made explicit.
LATE = 0.3

#: The scenarios whose culprit is a synchronous server held by misbehaving clients.
HELD = [name for name, (server, _) in CULPRITS.items() if server == "TCPServer"]


@pytest.fixture
def late_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's load starts :data:`LATE` seconds after the misbehaving
    clients connected."""
    load = _run._load

    def late(*args: Any, **kwargs: Any) -> Any:
        time.sleep(LATE)  # the delay under test, not a wait for something to happen
        return load(*args, **kwargs)

    monkeypatch.setattr(_run, "_load", late)


def test_the_held_scenarios_are_the_synchronous_culprits() -> None:
    assert "tls-handshake-stall" in HELD
    assert len(HELD) >= 4


@pytest.mark.usefixtures("late_load")
@pytest.mark.parametrize("name", HELD)
def test_a_held_server_is_caught_even_when_the_load_starts_late(name: str) -> None:
    server_class, handler = CULPRITS[name]
    result = S.run(S.load(name), server_class=server_class, handler=handler)
    assert not result.passed, f"{name} did not catch {server_class}: {result.checks}"
    answered = next(c for c in result.checks if c.name == "answered")
    assert answered.passed is False, answered.detail

from __future__ import annotations

import socketserver as stdlib_socketserver
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

import sockshock.socketserver as ours

# Hypothesis' deadline is a timing assertion: on a loaded 2-core machine an example
# can take longer than 200 ms for no fault of the code. Speed is the benchmarks'.
settings.register_profile("sockshock", deadline=None)
settings.load_profile("sockshock")

MODULES = {"stdlib": stdlib_socketserver, "sockshock": ours}


@pytest.fixture(params=sorted(MODULES))
def ssmod(request: pytest.FixtureRequest) -> Any:
    """The standard library's socketserver and ours, for parity tests."""
    return MODULES[request.param]


def stdlib_defect(reason: str) -> Any:
    """Parametrize a regression test over both modules; the stdlib run must fail."""
    return pytest.mark.parametrize(
        "module",
        [
            pytest.param(
                stdlib_socketserver,
                id="stdlib",
                marks=pytest.mark.xfail(strict=True, reason=reason),
            ),
            pytest.param(ours, id="sockshock"),
        ],
    )


@pytest.fixture
def ours_as_socketserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point ``socketserver`` at ours and re-import its consumers; undo afterwards."""
    consumers = ["http.server", "xmlrpc.server", "wsgiref.simple_server", "logging.config"]
    monkeypatch.setitem(sys.modules, "socketserver", ours)
    for name in consumers:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield ours
    for name in consumers:  # monkeypatch restores the originals after this
        sys.modules.pop(name, None)


def within(seconds: float, call: Callable[[], object]) -> None:
    """Run ``call`` (a shutdown(), a server_close()) and fail if it does not return
    within ``seconds``, instead of hanging the test run."""
    runner = threading.Thread(target=call, daemon=True, name=f"bounded {call!r}")
    runner.start()
    runner.join(seconds)
    assert not runner.is_alive(), f"{call!r} did not return within {seconds} s"

from __future__ import annotations

import socketserver as stdlib_socketserver
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import sockshock.socketserver as ours

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
            pytest.param(stdlib_socketserver, id="stdlib",
                         marks=pytest.mark.xfail(strict=True, reason=reason)),
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

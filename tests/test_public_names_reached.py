"""Public objects carry their public names however they are reached: a test that
only takes the ``sockshock`` fixture -- whose plugin and harness use the private
packages and never import ``sockshock.faults`` or ``sockshock`` 's lazy names --
sees ``sockshock.ServerHandle`` and ``sockshock.faults.FaultPlan``, not
``sockshock._harness._handle.ServerHandle``. Each object is named where it is
defined (``@exported_by(...)``); tests/test_public_names.py checks the names once
the public modules are imported."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from tests._support import run_pytest, run_python

pytest_plugins = ["pytester"]

# Run in a fresh interpreter: import every private module, and no public one but
# the package itself (and the drop-in ``socketserver``, a layer of its own); then
# read what each public module imports (its source, not the module) and check the
# objects it would export; and check that every object named by a public module
# is exported by it under that name.
_REACHED = r"""
import ast, importlib, json, pkgutil, sys
from pathlib import Path

import sockshock

src = Path(sockshock.__file__).parent
for info in pkgutil.walk_packages([str(src)], "sockshock."):
    if info.name.split(".")[1].startswith("_") and info.name != "sockshock.__main__":
        importlib.import_module(info.name)

def public(name):
    return not any(part.startswith("_") for part in name.split(".")[1:])

loaded = sorted(m for m in sys.modules if m.startswith("sockshock") and public(m))
wrong = []
checked = []
for path in sorted(src.glob("*.py")):
    module = "sockshock" if path.stem == "__init__" else f"sockshock.{path.stem}"
    if not public(module) or module in ("sockshock.pytest_plugin", "sockshock.socketserver"):
        continue  # the plugin exports nothing; socketserver defines what it exports
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.ImportFrom) and node.module and not public(node.module)):
            continue
        for alias in node.names:
            obj = getattr(sys.modules[node.module], alias.name)
            if not isinstance(obj, type) and not callable(obj):
                continue  # a constant: nothing to name
            exported = alias.asname or alias.name
            checked.append(f"{module}.{exported}")
            if (obj.__module__, obj.__qualname__) != (module, exported):
                wrong.append(f"{module}.{exported} is named {obj.__module__}.{obj.__qualname__}")

unexported = []
for name, mod in sorted(sys.modules.items()):
    if not name.startswith("sockshock._"):
        continue
    for obj in list(vars(mod).values()):
        home = getattr(obj, "__module__", None)
        if not (isinstance(obj, type) or callable(obj)) or not isinstance(home, str):
            continue
        if not home.startswith("sockshock") or not public(home):
            continue
        found = importlib.import_module(home)
        for part in obj.__qualname__.split("."):
            found = getattr(found, part, None)
        if found is not obj:
            unexported.append(f"{name}: {home}.{obj.__qualname__} is not exported by {home}")

print(json.dumps({"loaded": loaded, "checked": checked, "wrong": wrong,
                  "unexported": sorted(set(unexported))}))
"""


@functools.cache
def _reached() -> dict[str, Any]:
    proc = run_python(_REACHED)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_objects_reached_through_the_private_packages_have_their_public_names() -> None:
    reached = _reached()
    # The premise: no public module was imported before the names were read ...
    assert reached["loaded"] == ["sockshock", "sockshock.socketserver"]
    # ... and every kind of public object was looked at.
    assert {
        "sockshock.ServerHandle",
        "sockshock.drive",
        "sockshock.errors.InvalidArgument",
        "sockshock.faults.FaultPlan",
        "sockshock.scenarios.load",
        "sockshock.scripts.ClientScript",
        "sockshock.layer.VirtualClock",
    } <= set(reached["checked"])
    assert len(reached["checked"]) >= 70
    assert reached["wrong"] == [], (
        "decorate each with @exported_by(<its public module>) where it is defined: "
        + "; ".join(reached["wrong"])
    )


def test_each_object_named_by_a_public_module_is_exported_by_it() -> None:
    """A name set by ``@exported_by`` that the public module does not export would
    pickle to nothing and mislead a reader."""
    assert _reached()["unexported"] == []


FIXTURE_ONLY = """
import pickle
import socketserver
import sys


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())


def test_1_the_handle(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", Echo)
    assert type(srv) is type(None)


def test_2_the_plan(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", Echo)
    assert type(srv.plan) is type(None)


def test_3_a_bad_argument(sockshock):
    sockshock.serve("ThreadingTCPServr", Echo)


def test_4_no_public_module_was_imported(sockshock):
    public = sorted(
        m for m in sys.modules
        if m.startswith("sockshock.") and not m.split(".")[1].startswith("_")
    )
    assert public == ["sockshock.pytest_plugin", "sockshock.socketserver"], public


def test_5_pickled_by_their_public_names(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", Echo)
    data = pickle.dumps((type(srv), type(srv.plan)))
    assert b"sockshock._" not in data, data
"""


def test_a_test_that_only_takes_the_fixture_sees_public_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fixture_only=FIXTURE_ONLY)
    result = run_pytest(pytester)
    result.assert_outcomes(passed=2, failed=3)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*where <class 'sockshock.ServerHandle'> = type(<ServerHandle ThreadingTCPServer*",
            "*where <class 'sockshock.faults.FaultPlan'> = type(FaultPlan(*",
            "E*sockshock.errors.InvalidArgument: server_class='ThreadingTCPServr'*",
            "FAILED test_fixture_only.py::test_3_a_bad_argument - sockshock.errors.*",
        ]
    )
    assert "sockshock._" not in output, output

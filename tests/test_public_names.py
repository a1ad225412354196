"""Public objects carry their public names: ``__module__`` is the public module that
exports them (``sockshock.errors.InvalidArgument``, not
``sockshock._util._errors.InvalidArgument``), in pytest's summaries and tracebacks
too, and pickling still finds them."""

from __future__ import annotations

import importlib
import inspect
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._support import SUBPROCESS_TIMEOUT, run_python
from tests.test_exports import DROP_IN, PUBLIC


def _exported() -> list[tuple[str, str, Any]]:
    found = []
    for module in PUBLIC:
        if module == DROP_IN:  # CPython's layout: its classes are defined in it
            continue
        for name in importlib.import_module(module).__all__:
            obj = getattr(importlib.import_module(module), name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.append((module, name, obj))
    return found


EXPORTED = _exported()


def test_classes_and_functions_are_checked() -> None:
    names = {f"{module}.{name}" for module, name, _ in EXPORTED}
    assert {"sockshock.errors.InvalidArgument", "sockshock.serving"} <= names
    assert "sockshock.scenarios.load" in names  # exported under another name than its own


@pytest.mark.parametrize(
    ("module", "name", "obj"), EXPORTED, ids=[f"{m}.{n}" for m, n, _ in EXPORTED]
)
def test_each_public_object_names_its_public_module(module: str, name: str, obj: Any) -> None:
    assert obj.__module__ == module
    assert obj.__qualname__ == name
    assert pickle.loads(pickle.dumps(obj)) is obj


def test_exceptions_pickle_under_their_public_name() -> None:
    from sockshock.errors import InvalidArgument, LeakError

    for error in (InvalidArgument("bad value"), LeakError("a thread outlived its block")):
        data = pickle.dumps(error)
        assert b"sockshock.errors" in data
        assert b"_util" not in data
        again = pickle.loads(data)
        assert type(again) is type(error)
        assert again.args == error.args


def test_an_exception_is_named_publicly_before_anyone_imports_its_module() -> None:
    code = (
        "import sys\n"
        "from sockshock._util import InvalidArgument, LeakError, check_choice\n"
        "try:\n"
        "    check_choice('mode', 'fast', ('on', 'off'))\n"
        "except InvalidArgument as error:\n"
        "    print(type(error).__module__, LeakError.__module__)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["sockshock.errors", "sockshock.errors"]


PYTEST_EXAMPLE = """
def test_a_bad_server_name(sockshock):
    sockshock.serve("ThreadingTCPServr")
"""


def test_pytest_summaries_show_the_public_name(tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(PYTEST_EXAMPLE, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "sockshock.errors.InvalidArgument: server_class=" in proc.stdout, proc.stdout
    assert "FAILED test_example.py::test_a_bad_server_name - sockshock.errors." in proc.stdout
    assert "sockshock._util" not in proc.stdout, proc.stdout


def test_the_top_levels_names_are_public_once_one_of_their_home_is_used() -> None:
    """``from sockshock import serving`` names the ``ServerHandle`` it hands out
    ``sockshock.ServerHandle`` too, before anyone asks for it."""
    code = (
        "import pickle\n"
        "from sockshock import serving\n"
        "from sockshock._harness import ServerHandle, Transcript\n"
        "assert pickle.loads(pickle.dumps(ServerHandle)) is ServerHandle\n"
        "print(serving.__module__, ServerHandle.__module__, Transcript.__module__)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["sockshock", "sockshock", "sockshock"]

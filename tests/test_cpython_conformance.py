"""CPython's own test_socketserver, run with our module in place of the standard one.

For each of Python 3.10 to 3.13, in a subprocess of that interpreter: the suite once
against the stdlib (the oracle of what this platform skips) and once against ours.
Every test must pass on ours, skipped only where the stdlib run skips too.

Interpreters are found through ``SOCKSHOCK_PYTHONS`` (os.pathsep-separated paths),
pyenv's versions directory, and ``pythonX.Y`` on PATH. Where one is missing the test
is skipped -- except under CI (``CI`` set), where a missing interpreter fails, so that
the conformance run can never silently shrink.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sockshock
from tests._support import SUBPROCESS_TIMEOUT

VERSIONS = ["3.10", "3.11", "3.12", "3.13"]


def _candidates(version: str) -> list[str]:
    found = [p for p in os.environ.get("SOCKSHOCK_PYTHONS", "").split(os.pathsep) if p]
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    for root in filter(None, roots):
        found += sorted(
            glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")),
            reverse=True,
        )
    if sys.version_info[:2] == tuple(map(int, version.split("."))):
        found.append(sys.executable)
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    return found


def find_interpreter(version: str) -> str | None:
    """An interpreter of ``version`` whose ``test.test_socketserver`` imports."""
    for candidate in _candidates(version):
        try:
            probe = subprocess.run(
                [
                    candidate,
                    "-c",
                    "import sys, test.test_socketserver; print('%d.%d' % sys.version_info[:2])",
                ],
                capture_output=True,
                text=True,
                timeout=SUBPROCESS_TIMEOUT,
                env={**os.environ, "PYENV_VERSION": ""},
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sockshock's sources alone on a path, importable by any interpreter."""
    root = tmp_path_factory.mktemp("pythonpath")
    shutil.copytree(
        Path(sockshock.__file__).parent,
        root / "sockshock",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return root


def run_suite(
    python: str, which: str, pythonpath: Path, workdir: Path, suite: str = "test_socketserver"
) -> dict[str, str]:
    workdir.mkdir()
    result_file = workdir / "result.json"
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "PYENV_VERSION": ""}
    env.pop("PYTHONHOME", None)
    proc = subprocess.run(
        [python, "-m", "sockshock._stdlib._cpython_suite", which, str(result_file), suite],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 0, (
        f"{python} ({which}) exited {proc.returncode}\n{proc.stderr[-5000:]}"
    )
    outcomes: dict[str, str] = json.loads(result_file.read_text())["outcomes"]
    return outcomes


def assert_passes_on_ours(
    python: str, suite: str, pythonpath: Path, tmp_path: Path, minimum: int
) -> None:
    """Every test of ``suite`` passes on ours, skipped only where the stdlib skips."""
    stdlib = run_suite(python, "stdlib", pythonpath, tmp_path / "stdlib", suite)
    ours = run_suite(python, "ours", pythonpath, tmp_path / "ours", suite)
    assert len(ours) >= minimum, f"only {len(ours)} tests ran"
    assert set(ours) == set(stdlib)
    failures = {test: outcome for test, outcome in ours.items() if outcome.startswith("FAIL")}
    assert not failures, "\n\n".join(f"{t}\n{o}" for t, o in failures.items())
    for test, outcome in ours.items():
        if outcome != "ok":
            assert stdlib[test] != "ok", f"{test} skipped on ours only: {outcome}"


@pytest.mark.parametrize("version", VERSIONS)
def test_cpython_test_socketserver_passes_on_ours(
    version: str, package_copy: Path, tmp_path: Path
) -> None:
    python = find_interpreter(version)
    if python is None:
        message = f"no Python {version} with its test package (set SOCKSHOCK_PYTHONS)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI requires every version")
        pytest.skip(message)
    assert_passes_on_ours(python, "test_socketserver", package_copy, tmp_path, minimum=27)


# The stdlib's own servers built on ours, under their own suites. The quick ones run
# here, on this interpreter; test_xmlrpc and test_logging (about 25 s each) pass too
# and can be run by hand: python -m sockshock._stdlib._cpython_suite ours result.json test_xmlrpc
@pytest.mark.parametrize("suite", ["test_httpservers", "test_wsgiref"])
def test_stdlib_consumer_suites_pass_on_ours(
    suite: str, package_copy: Path, tmp_path: Path
) -> None:
    assert_passes_on_ours(sys.executable, suite, package_copy, tmp_path, minimum=30)

"""The examples of the README and of docs/ run, and the README's set-up commands are
the ones CI uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import SUBPROCESS_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks() -> list[tuple[str, str]]:
    """Every ```python block of the documents, with its ``file:line``."""
    blocks = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in re.finditer(r"```python\n(.*?)```", text, re.S):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{document.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


BLOCKS = python_blocks()

# A loaded machine's first hypothesis draw in a fresh process can take a second:
# the examples' tests run without hypothesis' timing checks (speed is the benchmarks').
HYPOTHESIS_CONFTEST = """
from hypothesis import HealthCheck, settings
settings.register_profile("docs", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("docs")
"""


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[where for where, _ in BLOCKS])
def test_documented_example_runs(code: str, tmp_path: Path) -> None:
    if "def test_" in code:  # a test module: run it with pytest and the plugin
        (tmp_path / "test_example.py").write_text(code, encoding="utf-8")
        (tmp_path / "conftest.py").write_text(HYPOTHESIS_CONFTEST, encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "-W",
            "error",
            "test_example.py",
        ]
    else:
        command = [sys.executable, "-W", "error", "-c", code]
    proc = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (ci_command,) = re.findall(r'^TEST_COMMAND="(.*)"$', ci, re.M)
    assert f"\n{ci_command}\n" in README, "README's test command differs from .ci/run's"


def test_readme_has_both_setup_commands() -> None:
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```\n(python3 -m venv .*)\n```", setup)
    assert len(commands) == 2
    assert sum(command.endswith(".venv/bin/sockshock run") for command in commands) == 1
    assert sum(command.endswith("python -m pytest -n 2") for command in commands) == 1

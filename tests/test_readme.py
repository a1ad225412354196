"""The examples of the README and of docs/ run, and the README's set-up commands are
the ones CI uses.

Every ```python block of README.md and of every page under docs/ runs: a block with a
``def test_`` is a test module, run by pytest with the plugin; any other block is run
with ``python -c``. Each must pass -- except a block right after an
``<!-- docs-example: fails "TEXT" -->`` line, which must fail (a tutorial's failing
test) and print TEXT.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import SUBPROCESS_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
DOCUMENTS = [
    ROOT / "README.md",
    *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts),
]
FAILS = re.compile(r'<!-- docs-example: fails "(.*?)" -->\s*\Z')


def python_blocks() -> list[tuple[str, str, str | None]]:
    """Every ```python block of the documents: its ``file:line``, its code, and the
    text it must print when it is marked to fail (None: it must pass)."""
    blocks = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            line = text.count("\n", 0, match.start()) + 1
            fails = FAILS.search(text, 0, match.start())
            blocks.append(
                (
                    f"{document.relative_to(ROOT)}:{line}",
                    match.group(1),
                    fails.group(1) if fails else None,
                )
            )
    return blocks


BLOCKS = python_blocks()

# A loaded machine's first hypothesis draw in a fresh process can take a second:
# the examples' tests run without hypothesis' timing checks (speed is the benchmarks').
# derandomize: an example that shows hypothesis finding a bug finds it on every run
# (a random search misses a rare one now and then: a flaky docs test otherwise).
HYPOTHESIS_CONFTEST = """
from hypothesis import HealthCheck, settings
settings.register_profile(
    "docs", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("docs")
"""


@pytest.mark.parametrize(
    ("code", "fails"),
    [(code, fails) for _, code, fails in BLOCKS],
    ids=[where for where, _, _ in BLOCKS],
)
def test_documented_example_runs(code: str, fails: str | None, tmp_path: Path) -> None:
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
    if fails is None:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:  # an example of a failure: it fails, and says what the page says it says
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert fails in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_every_example_is_found() -> None:
    """The pages under docs/ are read, sub-folders included, and so is a marked failure."""
    where = {w.split(":")[0] for w, _, _ in BLOCKS}
    assert "docs/tutorial.md" in where
    assert any(fails for _, _, fails in BLOCKS)


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

"""Every mistake in a scenario file, reported together.

A file with four mistakes should need one run to see them, not four. Checking a
file therefore goes on past a mistake: each independent check runs inside
:meth:`Report.checking`, which records the error and lets the next check go on,
and a branch whose mistake makes its later checks meaningless (a table that is not
a table, a model that does not exist) stops that branch only.

At the end :meth:`Report.raise_if_any` raises ONE :class:`InvalidArgument`: a
single problem keeps the one-line shape ``file:line: what is wrong``; several
are listed in file order under a header, each with its key path::

    3 problems in scenarios/slow.toml:
      1. scenarios/slow.toml:3: scenario "slow" -> duration: duration=-1.0 must be in (0, 60]
      2. scenarios/slow.toml:9: scenario "slow" -> faults[0] -> pause: pause=-2 must be ...
      3. scenarios/slow.toml:14: scenario "slow" -> load -> clientz: unknown key ...

(compilers and linters print their errors the same way: all of them, in order,
each with its place).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sockshock._util import InvalidArgument

__all__ = ["Mistake", "Problem", "Report", "key_path"]


class Mistake(InvalidArgument):
    """A checking error that knows the key it is about (``("faults", 2, "pause")``),
    so that a report can name the key path. Never escapes: a :class:`Report`
    raises plain :class:`InvalidArgument`."""

    def __init__(self, message: str, key: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Problem:
    """One mistake: the message it has alone, and its place in the file."""

    message: str  # "file:line: what is wrong", as raised alone
    key: tuple[Any, ...] | None  # the key it is about; None: not a key of the file
    line: int | None  # the line the message names; None: no line

    def text(self, path: str) -> str:
        """The message without its leading ``file:line: ``."""
        match = re.match(rf"{re.escape(path)}(?::\d+)?: ", self.message)
        return self.message[match.end() :] if match else self.message

    def to_json(self, path: str | None, scenario: str | None) -> dict[str, Any]:
        """The problem for ``--json`` reports (``file`` None: not about a file)."""
        return {
            "file": path,
            "line": self.line,
            "key": None if self.key is None else key_path(self.key, scenario),
            "problem": self.message if path is None else self.text(path),
            "message": self.message,
        }


def key_path(key: tuple[Any, ...], scenario: str | None) -> str:
    """``("faults", 2, "delay")`` as ``scenario "slow" -> faults[2] -> delay``."""
    parts = [] if scenario is None else [f'scenario "{scenario}"']
    for part in key:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(str(part))
    return " -> ".join(parts)


class Report:
    """The problems found while checking one scenario file (or, with ``path`` None,
    a scenario not read from a file)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        #: The scenario's name, for key paths (set once the name is known).
        self.scenario: str | None = None
        self.problems: list[Problem] = []
        #: The file's index of each fault model and client the scenario kept (an
        #: entry with a mistake is left out): ``{"faults": [0, 2], "clients": [0]}``.
        self.indices: dict[str, list[int]] = {}

    @contextlib.contextmanager
    def checking(self, *key: Any) -> Iterator[None]:
        """Record an :class:`InvalidArgument` raised in the block (about ``key``,
        unless it says which key) and go on after the block."""
        try:
            yield
        except InvalidArgument as exc:
            self.add(exc, key)

    def add(self, exc: InvalidArgument, key: tuple[Any, ...] | None) -> None:
        """Record ``exc``, about ``key`` (a :class:`Mistake` knows its own)."""
        if isinstance(exc, Mistake):
            key = exc.key
        message = str(exc)
        line = None
        if self.path is not None:
            at = re.match(rf"{re.escape(str(self.path))}:(\d+): ", message)
            line = int(at.group(1)) if at else None
        if line is None:  # not about a place in the file (a --server given, the file itself)
            key = None
        self.problems.append(Problem(message, key, line))

    def failed(self, *key: Any) -> bool:
        """Whether a problem was found in ``key`` or below it (or, for ``()``, at all)."""
        return any(
            not key or (p.key is not None and p.key[: len(key)] == key) for p in self.problems
        )

    def ordered(self) -> list[Problem]:
        """The problems in file order (those without a line last, as found)."""
        return sorted(self.problems, key=lambda p: (p.line is None, p.line or 0))

    def message(self) -> str:
        """One problem's own message, or every problem numbered under a header."""
        problems = self.ordered()
        if len(problems) == 1:
            return problems[0].message
        path = str(self.path) if self.path is not None else None
        lines = [f"{len(problems)} problems in {path or self.scenario or 'the scenario'}:"]
        width = len(str(len(problems)))
        for number, problem in enumerate(problems, start=1):
            head = f"  {number:>{width}}. "
            if path is None or problem.key is None:
                lines.append(head + problem.message)
                continue
            where = path if problem.line is None else f"{path}:{problem.line}"
            place = key_path(problem.key, self.scenario)
            lines.append(f"{head}{where}: {place}: {problem.text(path)}")
        return "\n".join(lines)

    def raise_if_any(self) -> None:
        """Raise ONE :class:`InvalidArgument` for every problem found, if any."""
        if self.problems:
            raise InvalidArgument(self.message())

    def to_json(self) -> list[dict[str, Any]]:
        """The problems, in file order, for ``--json`` reports."""
        path = str(self.path) if self.path is not None else None
        return [p.to_json(path, self.scenario) for p in self.ordered()]

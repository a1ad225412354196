"""Reading a scenario file: TOML, with the line each key was written on.

``tomllib`` (``tomli`` on Python 3.10) gives the data but not where each value came
from; error messages must say ``file:line``. :func:`read` also scans the text for
table headers and ``key = value`` lines, so that every key of the data -- ``("faults",
0, "pause")`` -- maps to its line (a value spanning lines maps to the line of its
key).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from sockshock._util import InvalidArgument

__all__ = ["Located", "read"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in re.split(r"\s*\.\s*", dotted.strip()))


def _loads(text: str, source: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise InvalidArgument(
                f"{source}: reading scenario files on Python 3.10 needs tomli: "
                "pip install 'sockshock[pytest]' (or pip install tomli)"
            ) from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
        return data
    except tomllib.TOMLDecodeError as exc:
        # "Invalid value (at line 10, column 13)" -> "file:10: not valid TOML: ..."
        at = re.search(r" \(at line (\d+), column (\d+)\)$", str(exc))
        if at is None:
            raise InvalidArgument(f"{source}: not valid TOML: {exc}") from None
        problem = str(exc)[: at.start()]
        raise InvalidArgument(
            f"{source}:{at.group(1)}: not valid TOML: {problem} (column {at.group(2)})"
        ) from None


class Located:
    """A parsed file and where each key came from."""

    def __init__(self, path: Path, data: dict[str, Any], lines: dict[tuple[Any, ...], int]):
        self.path = path
        self.data = data
        self._lines = lines

    def where(self, *key: Any) -> str:
        """``file:line`` of ``key`` (a path such as ``("faults", 0, "pause")``), or of
        the nearest enclosing table that has a line."""
        while key and key not in self._lines:
            key = key[:-1]
        line = self._lines.get(key, 1)
        return f"{self.path}:{line}"


def read(path: Path) -> Located:
    """Parse the TOML file at ``path`` and locate its keys.

    Raises:
        InvalidArgument: the file cannot be read or is not valid TOML (the message
            gives the file and TOML's own account of where).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (some editors write one) is not TOML
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path}: cannot read it: {exc}") from None
    data = _loads(text, str(path))
    lines: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    counters: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header is not None and not line.lstrip().startswith("#"):
            name = _parts(header.group(2))
            if header.group(1) == "[[":
                index = counters.get(name, -1) + 1
                counters[name] = index
                table = (*name, index)
                lines.setdefault(name, number)  # the array's first table
            else:
                table = name
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key is not None:
            lines.setdefault((*table, *_parts(key.group(1))), number)
    return Located(path, data, lines)

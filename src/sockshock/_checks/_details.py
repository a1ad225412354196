"""A failure in full: an exception's type, message and where it was raised.

``sockshock run`` used to print ``handler errors: 1: OSError``; a user needs the
message and the line. :func:`describe_error` reads them from the exception itself
-- its traceback, which a request handler's exception keeps when the harness
re-raises it in the test's thread, or, for one raised in a forked child (it
crossed a process boundary without its traceback), the traceback text the
harness put in its notes.
"""

from __future__ import annotations

import os
import re
import sysconfig
import traceback
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ErrorDetail", "Where", "describe_error"]

#: How the harness notes a forked child's traceback (``_harness._failures``).
_CHILD_NOTE = "raised in forked child pid"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>.+)$', re.M)
_STDLIB = tuple(
    os.path.normcase(os.path.realpath(path)) + os.sep
    for path in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
)
_SOCKSHOCK = os.path.normcase(os.path.realpath(os.path.dirname(os.path.dirname(__file__)))) + os.sep
# Where sockshock carries out injected faults: an error raised there is the fault
# the OS would have raised.
_FAULT_LAYERS = tuple(_SOCKSHOCK + name + os.sep for name in ("_wire", "_tls", "_memory"))


@dataclass(frozen=True)
class Where:
    """A place in the source: ``file:line, in function()``."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        text = f"{_shown(self.file)}:{self.line}, in {self.function}()"
        if self._real.startswith(_FAULT_LAYERS):
            text += " (an injected fault, as the OS raises it)"
        return text

    @property
    def _real(self) -> str:
        return os.path.normcase(os.path.realpath(self.file))

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function}

    @property
    def in_library(self) -> bool:
        """Whether this is the standard library's code or sockshock's (the caller is
        more telling)."""
        real = self._real
        return real.startswith(_SOCKSHOCK) or (
            real.startswith(_STDLIB) and "site-packages" not in real
        )


def _shown(path: str) -> str:
    """A path relative to the current directory when it lies beneath it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith(os.pardir) else relative


@dataclass(frozen=True)
class ErrorDetail:
    """An exception, in full: what ``sockshock run`` prints and writes to ``--json``.

    Attributes:
        type: the exception class's name (``ValueError``).
        message: its message (``str(exc)``).
        where: where it was raised: the innermost frame.
        caller: when that frame is the standard library's or sockshock's (a
            ``recv()`` that raised ``ConnectionResetError``, an injected fault),
            the innermost frame outside them -- the line of yours that called
            it; else None.
        notes: the exception's notes (other handler errors, the check's verdict).
        traceback: the whole traceback, as Python prints it.
    """

    type: str
    message: str
    where: Where | None = None
    caller: Where | None = None
    notes: tuple[str, ...] = field(default=())
    traceback: str = ""

    @property
    def headline(self) -> str:
        """``ValueError: incomplete message b'p'`` (the message's first line)."""
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.type}: {first}" if first else self.type

    def lines(self) -> list[str]:
        """The details below the headline: where, the rest of the message, notes."""
        lines = []
        if self.where is not None:
            lines.append(f"raised at {self.where}")
        if self.caller is not None:
            lines.append(f"called from {self.caller}")
        rest = self.message.strip().splitlines()[1:]
        lines.extend(rest)
        for note in self.notes:
            if note.startswith(_CHILD_NOTE):
                lines.append(note.splitlines()[0].rstrip(":"))
            else:
                lines.extend(note.splitlines())
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "where": None if self.where is None else self.where.to_json(),
            "caller": None if self.caller is None else self.caller.to_json(),
            "notes": list(self.notes),
            "traceback": self.traceback,
        }


def _frames(exc: BaseException) -> list[Where]:
    """The frames ``exc`` was raised through, innermost last: from the traceback
    text the harness noted for one raised in a forked child (the one it carries
    here is that of its re-raising), else from its traceback."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_CHILD_NOTE):
            return [
                Where(m["file"], int(m["line"]), m["function"].strip())
                for m in _FRAME.finditer(note)
            ]
    return [  # the function's plain name, as a traceback's text has it
        Where(frame.f_code.co_filename, line, frame.f_code.co_name)
        for frame, line in traceback.walk_tb(exc.__traceback__)
    ]


def describe_error(
    exc: BaseException, *, name: str | None = None, located: bool = True
) -> ErrorDetail:
    """The details of ``exc``; ``name`` overrides the type's name (a check's own
    verdict reads as the ``AssertionError`` it is); ``located=False`` leaves out
    where it was raised (a check's verdict: its line says nothing about the
    server)."""
    frames = _frames(exc) if located else []
    where = frames[-1] if frames else None
    caller = None
    if where is not None and where.in_library:
        caller = next((f for f in reversed(frames) if not f.in_library), None)
    notes = tuple(str(note) for note in getattr(exc, "__notes__", ()))
    return ErrorDetail(
        type=name or type(exc).__name__,
        message=str(exc),
        where=where,
        caller=caller,
        notes=notes,
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )

"""The standard library's ``socketserver``, looked up -- never imported -- by sockshock.

``sockshock.install()`` must be able to put ``sockshock.socketserver`` in the
standard module's place before anything imports it, so sockshock itself never
imports the standard module. A class built on it can only exist once something
else imported it; the checks below look the module up then.
"""

from __future__ import annotations

import sys
from types import ModuleType

from sockshock import socketserver as ours

__all__ = ["classes", "put_back_stdlib", "set_aside_stdlib", "stdlib_socketserver"]

#: The standard module while ``install()`` has put ours in its place (if it had
#: been imported before).
saved: ModuleType | None = None


def stdlib_socketserver() -> ModuleType | None:
    """The standard library's ``socketserver`` if something imported it, else None."""
    module = sys.modules.get("socketserver")
    if module is None or module is ours:
        return saved
    return module


def set_aside_stdlib(module: ModuleType | None) -> None:
    """Remember the standard module while ``install()`` puts ours in its place."""
    global saved
    saved = module


def put_back_stdlib() -> ModuleType | None:
    """The standard module set aside by ``install()``, forgotten (None if none was)."""
    global saved
    module, saved = saved, None
    return module


def classes(name: str) -> tuple[type, ...]:
    """``name`` (``"BaseServer"``, ``"ThreadingMixIn"``...) from sockshock's module and,
    if it was imported, from the standard library's: for ``issubclass`` checks."""
    found: tuple[type, ...] = (getattr(ours, name),)
    stdlib = stdlib_socketserver()
    if stdlib is not None and hasattr(stdlib, name):
        found += (getattr(stdlib, name),)
    return found

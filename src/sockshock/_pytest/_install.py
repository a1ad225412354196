"""``--sockshock-install`` when other plugins came first.

pytest loads every installed plugin before ``pytest_load_initial_conftests``, the
earliest moment sockshock can install itself. A plugin that imports a server
module at load time -- pytest-httpserver imports werkzeug, which imports
``http.server`` and so the standard ``socketserver`` -- would make
:func:`sockshock.install` refuse: those modules keep the standard library's
classes. Under pytest the install works anyway: the modules built on the
standard ``socketserver`` that no plugin package owns (``http.server``,
``werkzeug.serving``...) are set aside for the session, so that conftest files and
test modules import them afresh, on ``sockshock.socketserver``; what the plugins
already hold keeps the standard library's (their own servers are theirs). The
report header says which modules were set aside and for which plugins.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sockshock._harness import Installation

__all__ = ["SessionInstall", "install_for_session"]


def _plugin_packages(config: pytest.Config) -> dict[str, str]:
    """Top-level package of each plugin module loaded from outside pytest and
    sockshock -> the plugin's name (``{"pytest_httpserver": "httpserver"}``)."""
    packages: dict[str, str] = {}
    for name, plugin in config.pluginmanager.list_name_plugin():
        module_name = getattr(plugin, "__name__", None)
        if not isinstance(plugin, ModuleType) or not isinstance(module_name, str):
            continue
        top = module_name.partition(".")[0]
        if top in ("_pytest", "pytest", "sockshock", "conftest") or top.startswith("__"):
            continue
        packages.setdefault(top, str(name))
    return packages


def _refers_to(module: ModuleType, names: set[str]) -> bool:
    for value in list(vars(module).values()):
        if isinstance(value, ModuleType):
            if value.__name__ in names:
                return True
        elif getattr(value, "__module__", None) in names:
            return True
    return False


class SessionInstall:
    """The installation for this session, and the modules set aside for it."""

    def __init__(self, installation: Installation, moved: dict[str, ModuleType], note: str):
        self.installation = installation
        self.moved = moved
        #: For the report header ("" when nothing had to be set aside).
        self.note = note

    def undo(self) -> None:
        """The standard module back, and the modules set aside with it."""
        self.installation.undo()
        for name, module in self.moved.items():
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent and parent in sys.modules:
                setattr(sys.modules[parent], child, module)
        self.moved = {}


def install_for_session(config: pytest.Config) -> SessionInstall:
    """Install, setting aside what plugins made import first (see above)."""
    from sockshock import socketserver as ours  # (imported when asked: a lazy plugin)
    from sockshock._harness import install, modules_built_on

    current = sys.modules.get("socketserver")
    users = [] if current is None or current is ours else modules_built_on(current)
    moved: dict[str, ModuleType] = {}
    kept: dict[str, ModuleType] = {}
    owners: set[str] = set()
    if users and "__main__" not in users:  # (a script calling pytest.main(): refused)
        packages = _plugin_packages(config)
        for name in users:
            top = name.partition(".")[0]
            if top in packages:
                kept[name] = sys.modules[name]  # a plugin's own: it keeps its classes
                owners.add(packages[top])
            else:
                moved[name] = sys.modules.pop(name)
        names = set(moved) | set(kept)
        for top, plugin in packages.items():
            if any(
                isinstance(module, ModuleType) and _refers_to(module, names)
                for name, module in list(sys.modules.items())
                if name == top or name.startswith(top + ".")
            ):
                owners.add(plugin)
    for name in kept:
        del sys.modules[name]  # out of install()'s sight for a moment
    try:
        installation = install()
    except BaseException:
        sys.modules.update(moved)
        raise
    finally:
        sys.modules.update(kept)
    note = ""
    if moved or kept:
        by = f" by plugin(s) {', '.join(sorted(owners))}" if owners else ""
        note = (
            f"sockshock: installed; {', '.join(sorted(moved | kept))} had been imported{by} "
            "before --sockshock-install: conftest files and tests import "
            + (", ".join(sorted(moved)) if moved else "nothing")
            + " afresh, on sockshock.socketserver; what the plugins hold keeps the "
            "standard library's"
        )
    return SessionInstall(installation, moved, note)

"""How a pytest run that used sockshock ends (see ``sockshock._util._ending``).

* SIGTERM and SIGHUP clean up before they end the run (handlers installed at
  start-up, in the controller and in every xdist worker).
* pytest-timeout's ``thread`` method ends the process with ``os._exit(1)`` from its
  timer thread: nothing unwinds. Its timer function is wrapped so that sockshock's
  emergency cleanup runs first (forked children killed, temporary directories
  removed, streams flushed); its own report and exit are unchanged.
* Non-daemon threads that request handlers left running cannot keep the process
  alive at exit: the session's exit status is noted, so that the process that has
  to be ended ends with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from sockshock._util import emergency_cleanup, install_signal_handlers, set_exit_status

__all__ = ["configure_ending", "session_finished", "unconfigure_ending"]

_WRAPPED = pytest.StashKey[tuple[Any, Any]]()


def _wrap_timeout_timer(config: pytest.Config) -> None:
    plugin = config.pluginmanager.getplugin("timeout")
    original = getattr(plugin, "timeout_timer", None)
    if plugin is None or not callable(original) or getattr(original, "_sockshock", False):
        return

    def timeout_timer(item: Any, settings: Any) -> Any:
        is_debugging = getattr(plugin, "is_debugging", None)
        debugging = (
            not getattr(settings, "disable_debugger_detection", False)
            and callable(is_debugging)
            and is_debugging()
        )
        if not debugging:  # pytest-timeout is about to os._exit(1)
            emergency_cleanup()
        return original(item, settings)

    timeout_timer._sockshock = True  # type: ignore[attr-defined]
    plugin.timeout_timer = timeout_timer
    config.stash[_WRAPPED] = (plugin, original)


def configure_ending(config: pytest.Config) -> None:
    install_signal_handlers()
    _wrap_timeout_timer(config)


def session_finished(exitstatus: int | pytest.ExitCode) -> None:
    """The hook's own ``exitstatus``: ``session.exitstatus`` is not set when a
    session is only collected (``pytester.getitems()``, IDEs)."""
    set_exit_status(int(exitstatus))


def unconfigure_ending(config: pytest.Config) -> None:
    wrapped = config.stash.get(_WRAPPED, None)
    if wrapped is not None:
        plugin, original = wrapped
        plugin.timeout_timer = original

"""How a process that used sockshock ends: nothing left behind, nothing keeping it
alive.

Abrupt ends. SIGTERM and SIGHUP kill a Python process without unwinding: no
``finally``, no ``with`` block's exit, no fixture teardown. pytest-timeout's thread
method ends it with ``os._exit(1)``. Without help, a forked child of a served server
would sleep on with parent pid 1, and the temporary directories (Unix socket
paths, forked children's reports and stack dumps) would stay. So:

* every temporary directory sockshock makes is registered while it exists
  (:func:`make_temporary_directory`, :func:`remove_temporary_directory`);
* the layers register what else must happen (:func:`on_emergency`: the harness
  kills the forked children of the servers it runs);
* :func:`install_signal_handlers` (the harness calls it when it starts a server in
  the main thread, the pytest plugin at start-up) makes SIGTERM and SIGHUP -- where
  nobody else handles them -- run :func:`emergency_cleanup` first: the callbacks,
  the directories removed, standard streams and ``logging`` flushed; then the
  signal's default action ends the process as it would have (same exit status).
  SIGINT needs nothing: its KeyboardInterrupt unwinds, and the harness's own stops
  run. In a forked child the cleanup does nothing (the parent's things are the
  parent's).

Stray threads. A request handler that starts a non-daemon thread that never ends
keeps the interpreter alive for ever at exit (Python joins non-daemon threads
before it ends), under pytest and in a pytest-xdist worker too. The harness
reports such threads (the leak audit) and hands them to :func:`watch_at_exit`:
when the interpreter ends, they get :data:`EXIT_GRACE` seconds to finish; then
sockshock prints which are still running, with their stacks, flushes and ends the
process with ``os._exit()`` and the exit status it would have had: pytest's
(:func:`set_exit_status`), else 1 after an uncaught exception, else 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "EXIT_GRACE",
    "emergency_cleanup",
    "install_signal_handlers",
    "make_temporary_directory",
    "on_emergency",
    "remove_temporary_directory",
    "set_exit_status",
    "watch_at_exit",
]

#: Seconds the threads handed to :func:`watch_at_exit` get, at exit, to finish.
EXIT_GRACE = 5.0

_PID = os.getpid()  # the process whose things these are (a forked child's are not)
_DIRECTORIES: dict[str, int] = {}  # path -> pid that made it
_CALLBACKS: list[Callable[[], None]] = []
_HANDLED = ("SIGTERM", "SIGHUP")
_PREVIOUS: dict[int, Any] = {}
_EXIT_STATUS: list[int] = []
_WATCHED: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_WATCHING: list[bool] = []


def _in_owner() -> bool:
    return os.getpid() == _PID


@contextlib.contextmanager
def _never_raises() -> Any:
    try:
        yield
    except Exception:  # an emergency path: one failure must not stop the rest
        with contextlib.suppress(Exception):
            traceback.print_exc()


def make_temporary_directory(prefix: str) -> str:
    """``tempfile.mkdtemp(prefix=prefix)``, removed by :func:`emergency_cleanup` if
    the process ends abruptly before :func:`remove_temporary_directory`."""
    path = tempfile.mkdtemp(prefix=prefix)
    _DIRECTORIES[path] = os.getpid()
    return path


def remove_temporary_directory(path: str) -> None:
    """Remove a directory :func:`make_temporary_directory` made (in the process that
    made it; a forked child leaves it to its parent)."""
    owner = _DIRECTORIES.get(path)
    if owner is not None and owner != os.getpid():
        return
    shutil.rmtree(path, ignore_errors=True)
    _DIRECTORIES.pop(path, None)


def on_emergency(callback: Callable[[], None]) -> None:
    """Run ``callback`` (quick, never blocking, taking no lock) if the process ends
    abruptly (see the module's documentation)."""
    _CALLBACKS.append(callback)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    for ref in list(getattr(logging, "_handlerList", [])):
        handler = ref() if callable(ref) else None
        if handler is not None:
            with contextlib.suppress(Exception):
                handler.flush()


def emergency_cleanup() -> None:
    """The process is ending without unwinding: run the callbacks, remove the
    temporary directories, flush standard streams and ``logging``. Idempotent enough
    to run twice; a no-op in a forked child."""
    if not _in_owner():
        return
    for callback in list(_CALLBACKS):
        with _never_raises():
            callback()
    for path, owner in list(_DIRECTORIES.items()):
        if owner == _PID:
            shutil.rmtree(path, ignore_errors=True)
            _DIRECTORIES.pop(path, None)
    _flush()


def _on_signal(signum: int, frame: Any) -> None:
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    emergency_cleanup()
    if callable(previous):  # someone else's handler, installed before ours
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # ends the process as the signal would have


def install_signal_handlers() -> None:
    """Clean up on SIGTERM and SIGHUP (see above); only from the main thread, only
    once, and only for a signal nobody else handles (or one with a Python handler of
    its own, which runs after the cleanup). Idempotent."""
    if threading.current_thread() is not threading.main_thread() or not _in_owner():
        return
    for name in _HANDLED:
        signum = getattr(signal, name, None)
        if signum is None or signum in _PREVIOUS:
            continue
        with contextlib.suppress(ValueError, OSError, TypeError):
            current = signal.getsignal(signum)
            if current is signal.SIG_IGN or current is None:
                continue  # ignored on purpose (nohup), or set from C: not ours to change
            _PREVIOUS[signum] = current
            signal.signal(signum, _on_signal)


# -- stray threads at exit ----------------------------------------------------------


def set_exit_status(status: int) -> None:
    """The exit status the process will have (pytest's session status)."""
    _EXIT_STATUS[:] = [int(status)]


def _exit_status() -> int:
    if _EXIT_STATUS:
        return _EXIT_STATUS[0]
    if hasattr(sys, "last_value") or hasattr(sys, "last_exc"):
        return 1  # an uncaught exception ended the main program
    return 0


def _stack(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    return "".join(traceback.format_stack(frame)) if frame is not None else "  (no stack)\n"


def _at_exit() -> None:
    """Called by ``threading`` before it joins non-daemon threads."""
    if not _in_owner():
        return
    deadline = time.monotonic() + EXIT_GRACE
    for thread in list(_WATCHED):
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in list(_WATCHED) if t.is_alive() and not t.daemon]
    if not stuck:
        return
    status = _exit_status()
    lines = [
        f"sockshock: {len(stuck)} non-daemon thread(s) started by request handlers were "
        f"still running {EXIT_GRACE:g} s after the program ended; they would keep this "
        f"process alive for ever, so it ends now (exit status {status}):"
    ]
    lines += [f"Thread {t.name!r}:\n{_stack(t)}" for t in stuck]
    with contextlib.suppress(Exception):
        sys.stderr.write("\n".join(lines) + "\n")
    emergency_cleanup()
    os._exit(status)


def watch_at_exit(threads: Iterable[threading.Thread]) -> None:
    """Non-daemon ``threads`` that must not keep the process alive at exit (the leak
    audit reported them): see the module's documentation."""
    threads = [t for t in threads if not t.daemon and t.is_alive()]
    if not threads or not _in_owner():
        return
    for thread in threads:
        _WATCHED.add(thread)
    if not _WATCHING:
        register = getattr(threading, "_register_atexit", None)
        if register is None:
            return
        try:
            register(_at_exit)  # runs before threading joins non-daemon threads
        except RuntimeError:  # the interpreter is shutting down already
            return
        _WATCHING.append(True)

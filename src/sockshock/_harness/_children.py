"""The servers running now, and what their forked children and the process's end
need from the harness (``serving()`` calls :func:`starting`; the handle's
``live_handle()``/``forget_handle()`` call :func:`running`/:func:`stopped`;
nothing else here is called from outside).

* In every forked child (``os.register_at_fork``): the test's client sockets are
  released (``_wire.release_inherited_clients``); a child of a forking server's
  serving thread dies with it (``_wire.die_with_parent``) and is ready to dump its
  stack when the stop asks (SIGUSR1).
* When the process ends abruptly (``_util.on_emergency``: SIGTERM, SIGHUP,
  pytest-timeout's thread method): the forked children of the servers running
  now, and the children handlers forked, are killed.
* When a server stops: non-daemon threads its handlers started are handed to the
  exit guard (``_audit.watch_stray_threads``).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import threading
import weakref
from typing import IO, Any

from sockshock._harness._audit import forked_children, kill_children, watch_stray_threads
from sockshock._util import install_signal_handlers, on_emergency
from sockshock._wire import die_with_parent, prepare_die_with_parent, release_inherited_clients

__all__ = ["running", "starting", "stopped"]

# The handles of the servers running now (ServerHandle: not imported, the handle
# module imports this one).
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_CHILD_DUMP: list[IO[str]] = []  # keeps a forked child's stack-dump file open
_PARENT = [os.getpid()]  # the pid a child was forked from (set before each fork)
_BASELINE: list[set[int]] = []  # children that were there before the first server


def starting(forks: bool) -> None:
    """Before a server starts: signal handlers (in the main thread), the children
    already there (not the harness's to kill), ``prctl()`` for a forking server."""
    install_signal_handlers()
    if not _BASELINE:  # (a handler of any server may fork)
        _BASELINE.append(set(forked_children()))
    if forks:
        prepare_die_with_parent()


def running(handle: Any) -> None:
    """The server of ``handle`` (a ServerHandle) is serving."""
    _LIVE.add(handle)


def stopped(handle: Any) -> None:
    """The server of ``handle`` has stopped: a non-daemon thread its handlers
    started (not there when it started) must not hold the process's exit."""
    _LIVE.discard(handle)
    before = getattr(handle._run, "before", None)
    if before is not None:
        watch_stray_threads(before)


def _serving_thread(handle: Any) -> int | None:
    thread = handle._run.thread
    return None if thread is None else thread.ident


def _forked_by(handle: Any, thread: int) -> bool:
    """Whether ``thread`` serves ``handle``'s server or runs one of its handlers."""
    run = handle._run
    # (No lock here: in a freshly forked child, one another thread held at the fork
    # would never be released. A list's copy is atomic.)
    threads = list(getattr(run.tracker, "_threads", ()))
    return _serving_thread(handle) == thread or any(t.ident == thread for t, _ in threads)


def _before_fork() -> None:
    _PARENT[0] = os.getpid()


def _in_forked_child() -> None:
    """In a forked child: release the test's client sockets (were they left open
    here, closing a client in the test would never reach the server as end of
    file), and, in a child of a served server, die with the serving thread and be
    ready to dump this child's stack if it gets stuck."""
    me = threading.get_ident()
    handles = [h for h in list(_LIVE) if _forked_by(h, me)]
    release_inherited_clients(h.address for h in handles)
    if any(_serving_thread(h) == me and getattr(h.server, "block_on_close", True) for h in handles):
        die_with_parent(_PARENT[0])  # a forking server's child: never outlives the run
    for handle in handles:
        if _serving_thread(handle) == me and handle._run.reporter.directory is not None:
            path = handle._run.reporter.child_file(f"stack-{os.getpid()}")
            if path is not None and hasattr(signal, "SIGUSR1"):
                with contextlib.suppress(OSError, ValueError, RuntimeError):
                    dump = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open)
                    _CHILD_DUMP.append(dump)
                    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)


def _end_forked_children() -> None:
    """The process is ending abruptly: end the children of the servers it runs, and
    the children handlers forked, rather than leave them to sleep on."""
    pids: set[int] = set()
    for handle in list(_LIVE):
        pids.update(list(getattr(handle.server, "active_children", None) or ()))
    if _BASELINE:
        pids.update(forked_children(_BASELINE[0]))
    kill_children(sorted(pids), reap_within=0.2)


def _register() -> Any:
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_child=_in_forked_child)
    on_emergency(_end_forked_children)


_register()

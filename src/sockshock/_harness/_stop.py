"""Stopping a served server within one bound, whatever it is doing.

The whole stop -- the serving loop leaving ``serve_forever()``, ``server_close()``
(which joins handler threads or reaps forked children), the handler threads
ending -- shares one deadline, ``shutdown_timeout`` after the stop began. Past it
the harness takes the stuck threads' stacks (and asks stuck forked children for
theirs), forces the connections closed and kills the children, and gives that
:data:`MARGIN` to take effect. What still runs then is abandoned: every thread
the harness or the server started is a daemon thread, so nothing can keep the
process (or a pytest-xdist worker) alive, and the report names it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass

from sockshock._harness._runner import Abandoned, Run
from sockshock._harness._stacks import describe_threads

__all__ = ["MARGIN", "SERVE_WAITING_MAX", "Stuck", "stop"]

#: Seconds after the deadline for forced closing and killing to take effect.
MARGIN = 0.25
#: At most this long (and a quarter of the bound) goes to serving what already
#: reached the server before it is stopped.
SERVE_WAITING_MAX = 1.0
_DUMP_WAIT = 0.1  # seconds a stuck child gets to write its stack
_DUMP_SIGNAL = getattr(signal, "SIGUSR1", None)


def _interrupt(thread: threading.Thread) -> bool:
    """Raise :class:`Abandoned` in ``thread`` the next time it runs Python code
    (CPython only); whether that could be asked."""
    if thread.ident is None:
        return False
    try:
        import ctypes

        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):  # not CPython
        return False
    return bool(set_async_exc(ctypes.c_ulong(thread.ident), ctypes.py_object(Abandoned)) == 1)


def serve_waiting(run: Run, bound: float) -> None:
    """Let the loop take what already reached the server -- connections waiting in
    the backlog, datagrams in the queue -- before it is stopped: a client that
    connected and sent its request inside the ``with`` block gets served."""
    end = time.monotonic() + bound
    while _will_serve(run) and not run.stop_requested.is_set() and time.monotonic() < end:
        try:
            readable, _, _ = select.select([run.server], [], [], 0)
        except (OSError, ValueError):  # closed already
            return
        if not readable:
            return
        time.sleep(0.001)


def _will_serve(run: Run) -> bool:
    """Whether the loop runs, or is about to: the harness's serving thread may not
    have entered ``serve_forever()`` yet (an adopted server's loop runs when its
    code runs it)."""
    if run.managed:
        return run.thread is not None and run.thread.is_alive()
    return run.looping


@dataclass
class Stuck:
    """What did not stop in time, and what the harness did about it."""

    phase: str
    timeout: float
    stacks: str
    children: list[str]
    abandoned: list[str]
    interrupted: bool = False  # the serving thread was ended by an exception raised in it

    def __str__(self) -> str:
        text = f"{self.phase} did not finish within {self.timeout:g} s. Stacks:\n{self.stacks}"
        if self.interrupted:
            text += (
                "\nThe serving thread was still running after the connections were "
                "forced closed: the harness ended it (an exception raised in it; "
                "server_close() did not run, the harness closed the listening socket)"
            )
        if self.children:
            text += "\nForked children:\n" + "\n".join(self.children)
        if self.abandoned:
            text += (
                "\nStill running after the connections were forced closed, abandoned "
                "(daemon threads: they cannot keep the process alive): " + ", ".join(self.abandoned)
            )
        return text


def _children(run: Run) -> list[int]:
    return sorted(getattr(run.server, "active_children", None) or ())


def _size(path: str | None) -> int:
    if path is None:
        return 0
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _kill_children(run: Run, pids: list[int]) -> list[str]:
    """Ask each stuck child for its stack, kill it, reap it; describe each."""
    dumps = {pid: run.reporter.child_file(f"stack-{pid}") for pid in pids}
    for pid, path in dumps.items():
        if path is not None and _DUMP_SIGNAL is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, _DUMP_SIGNAL)
    end = time.monotonic() + _DUMP_WAIT
    sizes: dict[int, int] = {}
    while time.monotonic() < end:
        # Written, and no longer growing: a child's dump is taken whole (read as soon
        # as it began, a loaded machine's ended mid-line).
        now = {pid: _size(path) for pid, path in dumps.items()}
        if all(path is None or 0 < now[pid] == sizes.get(pid) for pid, path in dumps.items()):
            break
        sizes = now
        time.sleep(0.005)
    described = []
    for pid, path in dumps.items():
        try:
            os.kill(pid, signal.SIGKILL)
            fate = "killed (SIGKILL)"
        except ProcessLookupError:
            fate = "had exited"
        stack = ""
        if path is not None:
            with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as f:
                stack = f.read().strip()
        described.append(
            f"  pid {pid} {fate}; it was in:\n    "
            + ("\n    ".join(stack.splitlines()) if stack else "(no stack)")
        )
    return described


def _reap(pids: list[int], end: float) -> None:
    for pid in pids:
        while time.monotonic() < end:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break  # reaped by server_close() meanwhile
            time.sleep(0.002)


def stop(run: Run, timeout: float, *, joined_only: bool = False) -> Stuck | None:
    """Stop ``run`` within ``timeout`` (+ :data:`MARGIN` if it must be forced).

    ``joined_only``: what ``shutdown()`` + ``server_close()`` wait for -- handler
    threads the server does not join (``daemon_threads``, ``block_on_close =
    False``) are left to a later stop."""
    start = time.monotonic()
    deadline = start + timeout
    run.tracker.deadline = deadline
    serve_waiting(run, min(SERVE_WAITING_MAX, timeout / 4))
    run.request_stop()
    for thread in run.pending(joined_only):
        thread.join(max(0.0, deadline - time.monotonic()))
    if not run.pending(joined_only):
        return None

    phase = {"serving": "shutdown()", "closing": "server_close()"}.get(
        run.phase, "the handler threads"
    )
    ignored = {threading.current_thread(), *run.before}
    stacks = describe_threads(t for t in threading.enumerate() if t not in ignored)
    for sock in list(run.live):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    end = time.monotonic() + MARGIN
    pids = _children(run)
    children = _kill_children(run, pids) if pids else []
    _reap(pids, end)
    for thread in run.pending():
        thread.join(max(0.0, end - MARGIN / 2 - time.monotonic()))
    # The harness's own threads still running (stuck in a handler, in the class's
    # shutdown() or server_close()): release the address at least...
    ours = [t for t in (run.thread if run.managed else None, run.stopper) if t is not None]
    if any(t.is_alive() for t in ours):
        with contextlib.suppress(OSError, AttributeError):
            run.server.socket.close()
        # ...and end them if they run Python code (a loop spinning in
        # collect_children(), a service_actions() that never returns).
        for thread in ours:
            if thread.is_alive() and run.phase != "done" and _interrupt(thread):
                thread.join(max(0.0, end - time.monotonic()))
    for thread in run.pending():
        thread.join(max(0.0, end - time.monotonic()))
    abandoned = [repr(t.name) for t in run.pending()]
    stuck = Stuck(phase, timeout, stacks, children, abandoned)
    stuck.interrupted = run.interrupted
    return stuck

"""Thread stacks, for reports of what is stuck (the stop) or left behind (the audit)."""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Iterable

__all__ = ["describe_thread", "describe_threads"]


def describe_thread(thread: threading.Thread, *, title: str = "Thread ", note: str = "") -> str:
    """``Thread 'name' (daemon=...):`` and the thread's current stack."""
    frame = sys._current_frames().get(thread.ident or -1)
    stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (no stack)\n"
    return f"{title}{thread.name!r} (daemon={thread.daemon}{note}):\n{stack}"


def describe_threads(threads: Iterable[threading.Thread]) -> str:
    """Every live thread of ``threads`` with its stack, or ``(no threads)``."""
    return "\n".join(describe_thread(t) for t in threads if t.is_alive()) or "(no threads)"

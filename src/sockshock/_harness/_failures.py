"""Handler failures: collected where the standard library prints and forgets them.

``handle_error()`` runs in the thread or the forked child whose handler failed. In
this process a failure is appended to a list; a forked child writes it to a file
of its own in a private directory (a datagram queue would hold only
``net.unix.max_dgram_qlen`` -- often 10 -- reports and then block the child), and
the parent reads them when asked. The directory exists only for servers that fork,
and is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from sockshock._util import HandlerError, make_temporary_directory, remove_temporary_directory

__all__ = ["HandlerFailure", "Reporter", "add_note", "forget_frames", "raise_outcome"]

_FAILURE = ".failure"  # a forked child's report of a handler error...
_HANDSHAKE = ".handshake"  # ...and of a failed TLS handshake


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def raise_outcome(error: BaseException | None, failures: list[BaseException]) -> None:
    """Raise ``error`` with the handler ``failures`` as notes; without one, the
    first failure with the others as notes; with neither, nothing."""
    if error is None:
        if not failures:
            return
        error, *failures = failures
    for failure in failures:
        add_note(error, f"also, a request handler raised {failure!r}")
    raise error


def forget_frames(exc: BaseException) -> None:
    """Let the frames of ``exc``'s traceback (and of the exceptions it chains) go:
    their local variables -- the handler, its files, its socket -- would otherwise
    live as long as the kept exception, and the leak audit would blame the handler
    for a socket only sockshock keeps open. The traceback itself stays (file, line,
    function of each frame): the exception re-raises and prints as before, without
    locals. Frames still running (the thread's own, the one that caught it) are left
    as they are: they end soon."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending += [current.__cause__, current.__context__]
        pending += getattr(current, "exceptions", ())  # an ExceptionGroup's


@dataclass
class HandlerFailure:
    """One exception raised by a request handler (reported through ``handle_error``)."""

    exception: BaseException
    client_address: Any
    traceback: str
    pid: int

    def __str__(self) -> str:
        where = f"pid {self.pid}" if self.pid != os.getpid() else "this process"
        return f"handler for {self.client_address!r} ({where}):\n{self.traceback}"


class Reporter:
    """Collects handler failures, in this process and from forked children.

    Args:
        forks: whether the server forks (then a private directory is made for the
            children's reports and :meth:`child_file` paths).
    """

    def __init__(self, *, forks: bool) -> None:
        self.errors: list[HandlerFailure] = []
        #: Failed TLS handshakes (:meth:`record_handshake`).
        self.handshakes: list[HandlerFailure] = []
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.directory = make_temporary_directory("sockshock-children-") if forks else None
        self.count = 0

    def child_file(self, name: str) -> str | None:
        """A path for a forked child's own file (its stack dump, say)."""
        return None if self.directory is None else os.path.join(self.directory, name)

    def record(self, client_address: Any) -> None:
        """Called from ``handle_error()``: keep the exception being handled."""
        exc = sys.exc_info()[1]
        if exc is None:
            return
        text = traceback.format_exc()
        forget_frames(exc)
        self._keep(HandlerFailure(exc, client_address, text, os.getpid()), self.errors)

    def record_handshake(self, exc: BaseException, client_address: Any) -> None:
        """A TLS handshake failed (a client that rejected the certificate, left
        before its ClientHello, stalled past the handler's timeout): kept in
        :attr:`handshakes`, apart from handler errors."""
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        forget_frames(exc)
        self._keep(HandlerFailure(exc, client_address, text, os.getpid()), self.handshakes)

    def _keep(self, failure: HandlerFailure, kept: list[HandlerFailure]) -> None:
        if os.getpid() == self.pid:
            with self.lock:
                kept.append(failure)
            return
        if self.directory is None:
            return  # a child of a server that was not expected to fork
        exc = failure.exception
        try:
            payload = pickle.dumps(failure)
        except Exception:
            payload = pickle.dumps(
                HandlerFailure(
                    HandlerError(f"{type(exc).__name__}: {exc}"),
                    repr(failure.client_address),
                    failure.traceback,
                    failure.pid,
                )
            )
        self.count += 1
        suffix = _HANDSHAKE if kept is self.handshakes else _FAILURE
        name = os.path.join(self.directory, f"{os.getpid()}-{self.count}")
        with contextlib.suppress(OSError):
            with open(name + ".tmp", "wb") as f:
                f.write(payload)
            os.rename(name + ".tmp", name + suffix)  # whole, or not at all

    def collect(self) -> None:
        """Take in the failures (and failed handshakes) forked children reported so far."""
        if self.directory is None:
            return
        with self.lock:
            try:
                names = sorted(
                    n for n in os.listdir(self.directory) if n.endswith((_FAILURE, _HANDSHAKE))
                )
            except OSError:
                return
            for name in names:
                path = os.path.join(self.directory, name)
                try:
                    with open(path, "rb") as f:
                        failure = pickle.load(f)
                except Exception as exc:  # an exception class that cannot be rebuilt
                    failure = HandlerFailure(
                        HandlerError(f"unreadable report from a child: {exc!r}"), None, "", -1
                    )
                with contextlib.suppress(OSError):
                    os.unlink(path)
                if name.endswith(_HANDSHAKE):
                    self.handshakes.append(failure)
                    continue
                add_note(
                    failure.exception,
                    f"raised in forked child pid {failure.pid}:\n{failure.traceback}",
                )
                self.errors.append(failure)

    def close(self) -> None:
        if self.directory is not None and os.getpid() == self.pid:
            remove_temporary_directory(self.directory)

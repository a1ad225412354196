"""The one runner: every server the harness runs or adopts, started and asked to stop
the same way, whatever the route.

A :class:`Run` is a server and what the harness knows about it. Under
``serving()`` and the fixture the harness runs the loop itself (*managed*): a
daemon thread calls ``serve_forever()`` with only the arguments it takes, then
``server_close()``. Under ``inject()`` the code that built the server runs its loop
(*adopted*); the per-run class tells the run when that loop starts and ends and
when ``server_close()`` returns. Either way, :meth:`Run.request_stop` -- the end of
a ``with`` block, ``assert_stops_within()``, an ``AbruptShutdown`` -- stops it the
same way: through the class's own ``shutdown()`` when it overrides it (in a thread
of its own: it blocks), else by raising the loop's flag and waking it; an adopted
server is then closed (``server_close()``) once its loop has ended, as a managed
one is. Every wait on the run is bounded by its caller (``_stop``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from sockshock._harness._failures import Reporter
from sockshock._harness._instrument import ThreadTracker
from sockshock._stdlib import stdlib_socketserver

__all__ = ["Abandoned", "Run"]

#: How long the run keeps looking for a stop request that an overriding
#: ``shutdown()`` raised by calling the standard library's, to wake the loop at once.
_NUDGE_WINDOW = 1.0


class Abandoned(BaseException):
    """Raised inside a harness thread still running after the forced stop (a loop
    stuck in ``collect_children()``, say), so that it ends instead of running on."""


class Run:
    """A server the harness runs (``managed``) or adopted (built and served by other
    code, under ``inject()``), and what the harness knows about it.

    Attributes:
        thread: the thread that runs ``serve_forever()`` -- the harness's own
            (managed), or the one that called it (adopted; None until then).
        stopper: the thread that carries out a stop request, when one is needed
            (the class's own ``shutdown()``; closing an adopted server).
        stopped: set once ``serve_forever()`` returned and ``server_close()`` ended.
    """

    def __init__(
        self,
        server: Any,
        tracker: ThreadTracker,
        reporter: Reporter,
        live: Any,
        *,
        loop_kwargs: dict[str, float | None] | None = None,
        own_shutdown: bool = False,
        managed: bool = True,
    ) -> None:
        self.server = server
        self.tracker = tracker
        self.reporter = reporter
        self.live = live  # weakref.WeakSet of accepted sockets
        self.managed = managed
        self.own_shutdown = own_shutdown
        self.loop_kwargs = dict(loop_kwargs or {})
        self.before = set(threading.enumerate())  # objects: idents get reused
        self.phase = "serving"  # then "closing", then "done"
        self.stop_requested = threading.Event()
        self.stopped = threading.Event()
        self.looping = False
        self.loop_done = threading.Event()
        self.loop_done.set()
        self.loop_errors: list[BaseException] = []
        self.interrupted = False  # a harness thread ended by the harness after the forced stop
        self.stopper: threading.Thread | None = None
        self._lock = threading.Lock()
        self._accepted = 0
        self._accepting = threading.Condition(self._lock)
        self.thread: threading.Thread | None = (
            threading.Thread(
                target=self._serve,
                daemon=True,
                name=f"sockshock serving {type(server).__name__}",
            )
            if managed
            else None
        )

    # -- starting ------------------------------------------------------------------

    def start(self) -> None:
        """Serve in the harness's thread (managed runs)."""
        assert self.thread is not None
        self.thread.start()

    def _serve(self) -> None:
        try:
            try:
                self.server.serve_forever(**self.loop_kwargs)
            except Abandoned:
                raise
            except BaseException as exc:  # re-raised in the test's thread
                self.loop_errors.append(exc)
            self._close()
        except Abandoned:  # the harness gave up on it (and closed its socket)
            self.interrupted = True
        finally:
            self.phase = "done"
            self.stopped.set()

    def _close(self) -> None:
        self.phase = "closing"
        try:
            if _closes_before_joining(self.server):
                self.tracker.join()  # the handlers' replies go out before the socket closes
            self.server.server_close()
        except Abandoned:
            raise
        except BaseException as exc:
            self.loop_errors.append(exc)

    # -- what the per-run class reports --------------------------------------------

    def loop_entered(self) -> None:
        """``serve_forever()`` started (in the calling thread)."""
        if not self.managed:
            self.thread = threading.current_thread()
        self.looping = True
        self.loop_done.clear()

    def loop_left(self) -> None:
        """``serve_forever()`` returned or raised."""
        self.looping = False
        self.loop_done.set()

    def accepted(self) -> None:
        """The server accepted a connection."""
        with self._accepting:
            self._accepted += 1
            self._accepting.notify_all()

    @property
    def connections(self) -> int:
        """How many connections the server has accepted so far."""
        return self._accepted

    def wait_accepted(self, count: int, timeout: float) -> bool:
        """Wait until the server has accepted ``count`` connections in all (or
        stopped); whether it has."""
        with self._accepting:
            return (
                self._accepting.wait_for(
                    lambda: self._accepted >= count or self.stopped.is_set(), timeout
                )
                and self._accepted >= count
            )

    def closed(self) -> None:
        """``server_close()`` returned: an adopted server has stopped (unless its loop
        still runs)."""
        if not self.managed and not self.looping:
            self.phase = "done"
            self.stopped.set()

    # -- stopping ------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the server to stop, without waiting (callable from any thread, a
        handler's included, and more than once)."""
        with self._lock:
            first = not self.stop_requested.is_set()
            self.stop_requested.set()
            if first and (self.own_shutdown or not self.managed):
                self.stopper = threading.Thread(
                    target=self._stop,
                    daemon=True,
                    name=f"sockshock stopping {type(self.server).__name__}",
                )
                self.stopper.start()
        if not self.own_shutdown:
            self._raise_flag()  # again on every request: the wake-up is idempotent

    def _stop(self) -> None:
        closed = False
        try:
            try:
                if self.own_shutdown:
                    self._own_shutdown()
                if not self.managed and not self.stopped.is_set():
                    while not self.loop_done.wait(0.05):  # in slices: interruptible
                        pass  # (bounded by whoever waits for this thread)
                    self._close()
                    closed = True
            except Abandoned:
                raise
            except BaseException as exc:  # re-raised after the block (both routes)
                self.loop_errors.append(exc)
        except Abandoned:
            self.interrupted = True
        finally:
            if closed:
                self.phase = "done"
                self.stopped.set()

    def _own_shutdown(self) -> None:
        """The class's own ``shutdown()``. One that ends by calling the standard
        library's raises the loop's flag without waking sockshock's loop: woken here."""
        wake = getattr(self.server, "_wake", None)
        if wake is None:
            self.server.shutdown()
            return
        errors: list[BaseException] = []

        def call() -> None:
            try:
                self.server.shutdown()
            except BaseException as exc:
                errors.append(exc)

        caller = threading.Thread(target=call, daemon=True, name=self.stopper_name("shutdown()"))
        caller.start()
        end = time.monotonic() + _NUDGE_WINDOW
        while caller.is_alive() and time.monotonic() < end:
            if self.looping and getattr(self.server, "_BaseServer__shutdown_request", False):
                wake()
                break
            caller.join(0.002)
        caller.join()
        if errors:
            raise errors[0]

    def stopper_name(self, what: str) -> str:
        """A harness thread's name."""
        return f"sockshock {what} of {type(self.server).__name__}"

    def _raise_flag(self) -> None:
        """sockshock's loop and the standard library's share the flag's name (both
        are ``BaseServer.__shutdown_request``). Ours wakes at once; the standard
        library's looks at the flag when ``select()`` returns, so it is woken by a
        connection (or an empty datagram) it never accepts."""
        server = self.server
        server._BaseServer__shutdown_request = True
        wake = getattr(server, "_wake", None)
        if wake is not None:
            wake()
        elif self.looping:
            _poke(server)

    def pending(self, joined_only: bool = False) -> list[threading.Thread]:
        """The threads a stop waits for: the harness's serving thread (managed), the
        stopper, the handler threads (``joined_only``: those ``server_close()`` joins)."""
        own = [self.thread] if self.managed else []
        if self.stopper is not None:
            own.append(self.stopper)
        return [
            t
            for t in (*own, *self.tracker.alive(joined_only=joined_only))
            if t is not None and t.is_alive()
        ]


def _closes_before_joining(server: Any) -> bool:
    """A standard-library threading *datagram* server: its ``server_close()`` closes
    the socket its handlers reply on, then joins them (they fail with EBADF).
    sockshock's own classes join first."""
    if server.socket_type != socket.SOCK_DGRAM:
        return False
    stdlib = stdlib_socketserver()
    return stdlib is not None and isinstance(server, stdlib.ThreadingMixIn)


def _poke(server: Any) -> None:
    with (
        contextlib.suppress(OSError, AttributeError),
        socket.socket(server.address_family, server.socket_type) as poke,
    ):
        poke.setblocking(False)
        address = server.server_address
        if server.socket_type == socket.SOCK_DGRAM:
            poke.sendto(b"", address)
        else:
            poke.connect_ex(address)

"""The run handle: :class:`ClientRun` runs one client once, here or in the background."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic

from sockshock._clients._control import JOIN_GRACE, Control
from sockshock._clients._results import R
from sockshock._util import SockshockError, check_number

__all__ = ["ClientRun"]


class ClientRun(Generic[R]):
    """One misbehaving client, ready to run once.

    ``run.result()`` runs it in the calling thread and returns its result (a
    :class:`StreamResult` or :class:`DatagramResult`). ``with run:`` (or
    :meth:`start`) runs it in a background thread; leaving the block stops it,
    joins the thread and closes every socket it opened -- also when the block
    raises -- and ``run.result()`` then returns what happened. An exception the
    client itself raised (not a socket error: those are in the result) is
    re-raised by :meth:`result` and by leaving the block.

    A run that is never started does nothing: call :meth:`result` or use ``with``.
    """

    def __init__(self, kind: str, control: Control, runner: Callable[[Control], R]) -> None:
        self.kind = kind
        self._control = control
        self._runner: Callable[[Control], R] = runner
        self._lock = threading.Lock()
        self._claimed = False
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._result: R | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = "done" if self._done.is_set() else "running" if self._claimed else "not started"
        return f"<ClientRun {self.kind} to {self._control.target.sockaddr!r}: {state}>"

    @property
    def running(self) -> bool:
        """Whether the client has started and not finished."""
        return self._claimed and not self._done.is_set()

    def _claim(self) -> bool:
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _execute(self) -> None:
        control = self._control
        control.begin()
        try:
            self._result = self._runner(control)
        except BaseException as exc:  # handed to result() / __exit__
            self._error = exc
        finally:
            control.close_all()
            control.connected.set()
            control.sent.set()
            self._done.set()

    def start(self) -> ClientRun[R]:
        """Run the client in a background (daemon) thread.

        Returns:
            This run, to use as a context manager or to :meth:`stop` later.

        Raises:
            SockshockError: the run was already started (each runs once).
        """
        if not self._claim():
            raise SockshockError(
                f"this {self.kind} client was already started; "
                "make a new one (each client runs once)"
            )
        self._thread = threading.Thread(
            target=self._execute, daemon=True, name=f"sockshock client {self.kind}"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the client to end now; it does within a few tens of milliseconds."""
        self._control.stop.set()

    def wait_connected(self, timeout: float = 1.0) -> bool:
        """Wait until the client made its connections (or gave up, or ended).

        Returns:
            False if ``timeout`` seconds passed first.
        """
        check_number("timeout", timeout, low=0, source="wait_connected()")
        return self._control.connected.wait(timeout)

    def wait_sent(self, timeout: float = 1.0) -> bool:
        """Wait until the client sent what it sends up front (or ended).

        That is: slowloris, connect_and_idle -- the connections and the request
        start are there; drip_feed -- the whole payload; never_reads -- every
        request; half_close -- the request and the half-close; rst_on_close --
        the reset; connection_flood -- every connection was tried;
        datagram_burst -- every datagram.

        Returns:
            False if ``timeout`` seconds passed first.
        """
        check_number("timeout", timeout, low=0, source="wait_sent()")
        return self._control.sent.wait(timeout)

    def result(self) -> R:
        """Run the client here if it has not started, else wait for it to finish.

        Returns:
            What happened.

        Raises:
            SockshockError: the background thread did not finish (a bug).
            Exception: whatever the client itself raised.
        """
        if self._claim():
            self._execute()
        else:
            self._join()
        if self._error is not None:
            raise self._error
        if self._result is None:  # pragma: no cover - _execute sets one or the other
            raise SockshockError(f"the {self.kind} client produced no result")
        return self._result

    def _join(self) -> None:
        bound = self._control.duration + JOIN_GRACE
        if not self._done.wait(bound):
            self._control.shutdown_all()  # wake whatever it waits on
            if not self._done.wait(1.0):
                raise SockshockError(
                    f"the {self.kind} client did not finish within "
                    f"{bound + 1:g} s (its duration plus a grace period)"
                )
        if self._thread is not None:
            self._thread.join(1.0)

    def __enter__(self) -> ClientRun[R]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        try:
            self._join()
        except SockshockError as error:
            if exc is None:
                raise
            _add_note(exc, str(error))
            return
        if self._error is not None and self._error is not exc:
            if exc is None:
                raise self._error
            _add_note(exc, f"also, the {self.kind} client raised {self._error!r}")


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]

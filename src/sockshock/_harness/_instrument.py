"""What the harness adds to a server it runs, without changing how it serves.

``serving()`` runs a per-run subclass of the server class (same name, same
methods) whose ``handle_error()`` also reports to the harness and whose
``get_request()`` notes each connection (so that a stuck one can be shut down),
whose ``serve_forever()`` and ``server_close()`` tell the run (``_runner``) when the
loop starts and ends and when the server closed (whoever calls them),
and gives the instance a :class:`ThreadTracker` as ThreadingMixIn's ``_threads``:
handler threads start as daemon threads, so that a stuck handler can never keep the
process alive, while ``server_close()`` still waits for the ones it would have
waited for -- until the harness's deadline.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
import weakref
from typing import Any

from sockshock._harness._audit import note_connection
from sockshock._harness._failures import Reporter
from sockshock._harness._stacks import describe_threads
from sockshock._stdlib import classes, grafts

__all__ = ["ThreadTracker", "attach", "instrument", "track_threads"]


class ThreadTracker:
    """Stands in for ThreadingMixIn's ``_threads`` (and hears of ThreadPoolMixIn's
    workers): every thread it is given before ``start()`` becomes a daemon thread.

    ``join()`` -- what ``server_close()`` calls -- waits for the threads that were
    not daemon threads to begin with, as the standard library's would, but not
    past :attr:`deadline`.
    """

    def __init__(self, server: Any, join_timeout: float | None = None) -> None:
        self._server = weakref.ref(server)
        self._lock = threading.Lock()
        self._threads: list[tuple[threading.Thread, bool]] = []
        #: ``join()`` waits no later than this (``time.monotonic()``)...
        self.deadline: float | None = None
        #: ...or, without a deadline, this long.
        self.join_timeout = join_timeout
        #: What ``join()`` gave up on: the stuck threads' stacks.
        self.gave_up: str | None = None

    def append(self, thread: threading.Thread) -> None:
        joinable = not thread.daemon
        if thread.ident is None:  # not started yet
            thread.daemon = True
        with self._lock:
            self._threads = [(t, j) for t, j in self._threads if t.is_alive()]
            self._threads.append((thread, joinable))

    def join(self) -> None:
        server = self._server()
        if server is not None and not getattr(server, "block_on_close", True):
            return
        with self._lock:
            threads = [t for t, joinable in self._threads if joinable]
        deadline = self.deadline
        if deadline is None and self.join_timeout is not None:
            deadline = time.monotonic() + self.join_timeout
        for thread in threads:
            if thread.ident is None:
                continue
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        stuck = [t for t in threads if t.is_alive()]
        if stuck and self.deadline is None:
            self.gave_up = describe_threads(stuck)

    def alive(self, *, joined_only: bool = False) -> list[threading.Thread]:
        """Every thread given to the tracker that is still running (``joined_only``:
        those ``server_close()`` waits for -- not daemon threads, not with
        ``block_on_close`` false)."""
        if joined_only:
            server = self._server()
            if server is not None and not getattr(server, "block_on_close", True):
                return []
        with self._lock:
            return [
                t for t, joinable in self._threads if t.is_alive() and (joinable or not joined_only)
            ]


def _get_request_noting(base_get_request: Any) -> Any:
    def get_request(self: Any) -> tuple[Any, Any]:
        request, client_address = base_get_request(self)
        if isinstance(request, socket.socket):
            self._sockshock_live.add(request)
            note_connection(request, client_address)  # for a leak report, later
            run = getattr(self, "_sockshock_runner", None)
            if run is not None:
                run.accepted()
        return request, client_address

    return get_request


def _serve_forever_noting(base_serve_forever: Any) -> Any:
    @functools.wraps(base_serve_forever)
    def serve_forever(self: Any, *args: Any, **kwargs: Any) -> Any:
        run = getattr(self, "_sockshock_runner", None)
        if run is None:
            return base_serve_forever(self, *args, **kwargs)
        run.loop_entered()
        try:
            return base_serve_forever(self, *args, **kwargs)
        finally:
            run.loop_left()

    return serve_forever


def _server_close_noting(base_server_close: Any) -> Any:
    @functools.wraps(base_server_close)
    def server_close(self: Any) -> Any:
        try:
            return base_server_close(self)
        finally:
            run = getattr(self, "_sockshock_runner", None)
            if run is not None:
                run.closed()

    return server_close


def _counting_requests(base_handle_request_noblock: Any) -> Any:
    """``_handle_request_noblock()`` counted in ``_sockshock_taking`` -- from the
    accept (or the datagram read) until the request is handled, or handed to a
    thread, the pool or a child -- so that ``wait_idle()`` sees no gap between a
    connection waiting and its handler running."""

    def _handle_request_noblock(self: Any) -> None:
        self._sockshock_taking += 1
        try:
            base_handle_request_noblock(self)
        finally:
            self._sockshock_taking -= 1

    return _handle_request_noblock


def _finish_request_under_tls(base_finish_request: Any) -> Any:
    def finish_request(self: Any, request: Any, client_address: Any) -> None:
        tls = self._sockshock_tls
        if tls is not None:  # in the handler's thread or child: the handshake too
            request = tls.wrap(request)
            timeout = getattr(self.RequestHandlerClass, "timeout", None)
            if not tls.handshake(request, timeout, self._sockshock_reporter, client_address):
                return  # failed: dropped, as the standard library's servers do
        base_finish_request(self, request, client_address)

    return finish_request


# Per-run classes without class attributes of their own, by base class: making a
# class costs more than a whole round trip, and they differ only by instance state.
_PLAIN: weakref.WeakKeyDictionary[type[Any], type[Any]] = weakref.WeakKeyDictionary()


def instrument(base: type[Any], attrs: dict[str, Any]) -> type[Any]:
    """A subclass of ``base`` (same name) whose ``handle_error()`` reports to the
    instance's ``_sockshock_reporter``, whose ``get_request()`` notes accepted sockets
    in its ``_sockshock_live`` (see :func:`attach`) and which, for a class built on
    the standard library's module, serves with sockshock's loop (``_graft``);
    ``attrs`` become class attributes."""
    if not attrs:
        cached = _PLAIN.get(base)
        if cached is not None:
            return cached
    original_handle_error = base.handle_error
    defaults = tuple(getattr(cls, "handle_error") for cls in classes("BaseServer"))  # noqa: B009

    def handle_error(self: Any, request: Any, client_address: Any) -> None:
        self._sockshock_reporter.record(client_address)
        if original_handle_error not in defaults:
            original_handle_error(self, request, client_address)

    namespace: dict[str, Any] = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        "_sockshock_run": True,  # a per-run class (inject() leaves these alone)
        **grafts(base),
        "handle_error": handle_error,
        **attrs,
    }
    namespace["get_request"] = _get_request_noting(namespace.get("get_request", base.get_request))
    namespace["serve_forever"] = _serve_forever_noting(
        namespace.get("serve_forever", base.serve_forever)
    )
    namespace["server_close"] = _server_close_noting(base.server_close)
    namespace["finish_request"] = _finish_request_under_tls(base.finish_request)
    namespace["_sockshock_tls"] = None
    if hasattr(base, "_handle_request_noblock") or "_handle_request_noblock" in namespace:
        namespace["_handle_request_noblock"] = _counting_requests(
            namespace.get("_handle_request_noblock", getattr(base, "_handle_request_noblock", None))
        )
        namespace["_sockshock_taking"] = 0
    cls = type(base.__name__, (base,), namespace)
    if not attrs:
        _PLAIN[base] = cls
    return cls


def attach(
    server: Any, reporter: Reporter, live: weakref.WeakSet[socket.socket], run: Any = None
) -> None:
    """Where an instrumented server reports handler errors, notes connections and
    tells its run (``_runner.Run``) when its loop starts and ends and when it closed."""
    server._sockshock_reporter = reporter
    server._sockshock_live = live
    server._sockshock_runner = run


def track_threads(server: Any, join_timeout: float | None = None) -> ThreadTracker:
    """Give ``server`` a :class:`ThreadTracker` as its ``_threads``."""
    tracker = ThreadTracker(server, join_timeout)
    with contextlib.suppress(AttributeError):  # a server with __slots__
        server._threads = tracker
    return tracker

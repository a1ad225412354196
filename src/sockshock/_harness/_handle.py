"""ServerHandle: a server under test and ways to reach it, whatever the route
(``serving()``, the fixture, ``inject()``)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import sys
import threading
import time
from typing import Any, Generic

from sockshock._clients import connect
from sockshock._faults import FaultPlan, make_plan
from sockshock._harness._children import running, stopped
from sockshock._harness._failures import HandlerFailure
from sockshock._harness._runner import Run
from sockshock._harness._stop import SERVE_WAITING_MAX, stop
from sockshock._harness._types import ServerT
from sockshock._stdlib import kind_of
from sockshock._util import (
    DEFAULT_TOLERANCE,
    InvalidArgument,
    ShutdownTooSlow,
    check_number,
    check_seconds,
    exported_by,
    make_temporary_directory,
    remove_temporary_directory,
)
from sockshock._wire import FaultLayer, forks, wait_for_fork

__all__ = [
    "DEFAULT_SLACK",
    "DEFAULT_TOLERANCE",
    "DEFAULT_WAIT",
    "ServerHandle",
    "forget_handle",
    "live_handle",
]


def _running(pid: int) -> bool:
    """Whether a forked child is still running (a zombie has finished)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False  # gone (reaped)


_AF_UNIX = getattr(socket, "AF_UNIX", None)

#: ``assert_stops_within()`` allows ``seconds * DEFAULT_TOLERANCE + DEFAULT_SLACK``
#: by default, for noisy CI machines (DEFAULT_TOLERANCE: ``_util``'s).
DEFAULT_SLACK = 0.1
#: ``wait_stopped()`` waits at most this many seconds by default.
DEFAULT_WAIT = 30.0

#: The longest file name (NAME_MAX on Linux and macOS), in bytes.
_NAME_MAX = 255


@exported_by("sockshock")
class ServerHandle(Generic[ServerT]):
    """A server under test and ways to reach it: what ``serving()`` yields, what the
    fixture's ``serve()`` returns and what ``inject()`` lists for each server built
    inside its block -- the same methods whatever the route.

    Attributes:
        server: the server instance.
        address: where it listens (``server.server_address``).
        layer: the :class:`~sockshock.layer.FaultLayer`, or ``None`` without faults.
    """

    def __init__(
        self,
        run: Run,
        layer: FaultLayer | None,
        directory: str | None,
        tls: Any = None,
        *,
        seed: int | None = None,
    ) -> None:
        self._run = run
        self._tls = tls
        self.server: ServerT = run.server
        self.address: Any = run.server.server_address
        self.layer = layer
        # Without faults: an empty plan (false, no models, an empty log), seeded with
        # ``seed`` (the test's, in pytest) -- ``srv.plan.describe()`` works on every handle.
        self._plan = layer.plan if layer is not None else make_plan([], seed=seed)
        self._directory = directory
        self._lock = threading.Lock()  # connect() may be called from several threads
        self._clients: list[socket.socket] = []

    @property
    def thread(self) -> threading.Thread | None:
        """The thread that runs ``serve_forever()``: the harness's own (and then
        ``server_close()``), or, for a server built inside ``inject()``, the one
        its code runs it in (``None`` until it does)."""
        return self._run.thread

    @property
    def errors(self) -> list[HandlerFailure]:
        """Handler failures so far (forked children's included); clear this list to
        acknowledge them, so that leaving the ``with`` block does not re-raise them."""
        self._run.reporter.collect()
        return self._run.reporter.errors

    @property
    def failed_handshakes(self) -> list[HandlerFailure]:
        """TLS handshakes that failed so far (forked children's included): the
        exception each connection's handshake raised, its client address, the
        error in one line (``.traceback``) and the pid. Dropped, as the standard
        library's servers drop them; errors only with ``tls_strict=True``."""
        self._run.reporter.collect()
        return self._run.reporter.handshakes

    @property
    def plan(self) -> FaultPlan:
        """The fault plan in force -- ``plan.seed``, ``plan.log``, ``plan.describe()``;
        without faults an empty one (no models, nothing logged; false, as an empty
        list is)."""
        return self._plan

    @property
    def family(self) -> int:
        """The server's address family (``AF_INET``, ``AF_INET6`` or ``AF_UNIX``)."""
        return int(self._run.server.address_family)

    @property
    def type(self) -> int:
        """The server's socket type (``SOCK_STREAM`` or ``SOCK_DGRAM``)."""
        return int(self._run.server.socket_type)

    def wait_stopped(self, timeout: float = DEFAULT_WAIT) -> bool:
        """Wait until the server has stopped -- ``serve_forever()`` returned and
        ``server_close()`` finished -- however it was asked to (an
        ``AbruptShutdown``, a handler calling ``shutdown()``, the end of the block).

        Args:
            timeout: seconds in [0, 3600]; default :data:`DEFAULT_WAIT` (30 s: a
                server nothing asks to stop never stops, and the wait must end).

        Returns:
            True if the server has stopped, False if ``timeout`` ran out first.
        """
        check_seconds("timeout", timeout, allow_zero=True, source="wait_stopped()")
        return self._run.stopped.wait(timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no handler call is under way: no connection (or datagram)
        waiting to be taken, every connection accepted so far handled (its socket
        closed), every handler thread ended, the pool's
        queue empty and its workers waiting, every forked child exited, and no
        thread inside the server's ``finish_request()`` -- for a property about
        clients that leave without reading, say. ``timeout``: seconds in
        (0, 3600] (default 5). Whether it went quiet in time."""
        check_number("timeout", timeout, low=0, low_open=True, high=3600, source="wait_idle()")
        end = time.monotonic() + timeout
        while self._busy():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            self._run.stopped.wait(min(0.002, remaining))  # a stop ends handler calls too
        return True

    def _busy(self) -> bool:
        """Whether a handler call is under way (see :meth:`wait_idle`)."""
        server = self.server
        listening = getattr(server, "socket", None)
        if listening is not None and listening.fileno() != -1 and not self._run.stopped.is_set():
            with contextlib.suppress(OSError, ValueError):
                if select.select([listening], [], [], 0)[0]:
                    return True  # a connection (a datagram) waits to be taken
        if getattr(server, "_sockshock_taking", 0):
            return True  # between the accept and the handler (or its thread) starting
        if any(sock.fileno() != -1 for sock in list(self._run.live)):
            return True  # accepted, not yet closed by shutdown_request()
        pool = getattr(server, "_pool", None)
        if pool is not None:
            with pool._lock:
                if pool._queue or pool._idle < sum(w.is_alive() for w in pool._workers):
                    return True
        elif self._run.tracker.alive():
            return True  # a thread per request (ThreadingMixIn)
        for pid in list(getattr(server, "active_children", None) or ()):
            if _running(pid):
                return True
        frames = sys._current_frames()
        for thread in threading.enumerate():  # a synchronous server runs its handler
            frame = frames.get(thread.ident or -1)
            while frame is not None:
                if (
                    frame.f_code.co_name == "finish_request"
                    and frame.f_locals.get("self") is server
                ):
                    return True
                frame = frame.f_back
        return False

    def temporary_path(self, name: str) -> str:
        """A path inside this handle's private temporary directory; ``name`` is a
        plain file name (no directory part).

        Args:
            name: a plain file name.

        Returns:
            The path, as a string; the directory goes when the handle's block ends.
        """
        if not isinstance(name, str):
            raise InvalidArgument(
                f"expected a file name (str) but got name={name!r} "
                f"(type={type(name).__name__}) (from temporary_path())"
            )
        if (
            not name
            or name in (".", "..")
            or "\0" in name
            or os.sep in name
            or (os.altsep is not None and os.altsep in name)
        ):
            raise InvalidArgument(
                f"name={name!r} (from temporary_path()) must be a plain file "
                "name, without a directory part: the path stays inside the "
                "handle's private directory"
            )
        if len(os.fsencode(name)) > _NAME_MAX:
            raise InvalidArgument(
                f"name={name!r} (from temporary_path()) is {len(os.fsencode(name))} bytes "
                f"long; file names are at most {_NAME_MAX} bytes"
            )
        if self._directory is None:
            self._directory = make_temporary_directory("sockshock-")
        return os.path.join(self._directory, name)

    def assert_stops_within(
        self,
        seconds: float,
        *,
        busy: int = 0,
        stalled: int = 0,
        request: bytes = b"an unfinished request",
        tolerance: float = DEFAULT_TOLERANCE,
        slack: float = DEFAULT_SLACK,
    ) -> float:
        """Stop the server now, under load, and fail if that takes too long.

        Opens ``busy`` clients that sent part of a request (``request``, with no
        end) and ``stalled`` clients that sent nothing, lets the server take them,
        then times ``shutdown()`` + ``server_close()`` -- with the handler threads
        ``server_close()`` joins (not daemon ones, ``daemon_threads = True``: those
        end, or are reported, when the ``with`` block ends). A noisy CI machine is
        allowed ``seconds * tolerance + slack``.

        Args:
            seconds: the bound, before ``tolerance`` and ``slack``.
            busy: clients that sent part of a request.
            stalled: clients that sent nothing.
            request: what the busy clients send (no end, so the handler waits).
            tolerance: the factor for a noisy machine.
            slack: seconds added to the bound.

        Returns:
            The seconds stopping took.

        Raises:
            ShutdownTooSlow: (an ``AssertionError``) with the stuck threads'
                stacks; the harness then forces the stuck connections closed.
        """
        source = "assert_stops_within()"
        check_seconds("seconds", seconds, source=source)
        for name, value in (("busy", busy), ("stalled", stalled)):
            check_number(name, value, low=0, high=1000, integer=True, source=source)
        check_number("tolerance", tolerance, low=1, high=100, source=source)
        check_number("slack", slack, low=0, high=60, source=source)
        if not isinstance(request, (bytes, bytearray, memoryview)):
            raise InvalidArgument(
                f"expected bytes but got request={request!r} "
                f"(type={type(request).__name__}) (from {source})"
            )
        if self._run.stopped.is_set():
            raise InvalidArgument(
                f"{source}: {type(self.server).__name__} has stopped already, so there is "
                "no stop left to measure; call it inside the serving() block, before "
                "anything else stops the server"
            )
        stream = self.type == socket.SOCK_STREAM
        before = self._run.connections
        for _ in range(busy if stream else 0):
            self.connect().sendall(request)
        for _ in range(stalled if stream else 0):
            self.connect()
        if stream and busy + stalled:
            # The server takes them before the stop is timed: every one (one only,
            # for a synchronous server, which serves one connection at a time).
            sync = kind_of(type(self._run.server)).concurrency == "sync"
            taken = before + (1 if sync else busy + stalled)
            self._run.wait_accepted(taken, SERVE_WAITING_MAX)
        allowed = seconds * tolerance + slack
        start = time.monotonic()
        stuck = stop(self._run, allowed, joined_only=True)
        elapsed = time.monotonic() - start
        if stuck or elapsed > allowed:
            load = f"{busy} busy and {stalled} stalled clients" if stream else "no clients"
            raise ShutdownTooSlow(
                f"{type(self.server).__name__} took {elapsed:.3f} s to shut down and close "
                f"with {load}; the bound is {seconds:g} s (x{tolerance:g} + {slack:g} s for "
                f"a noisy machine: {allowed:.3f} s)" + (f"\n{stuck}" if stuck else "")
            )
        return elapsed

    @property
    def tls(self) -> bool:
        """Whether the server runs TLS."""
        return self._tls is not None

    def client_context(self, **options: Any) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (``tls=True``:
        sockshock's CA) and verifies it and the host name; ``options`` as for
        :func:`sockshock.tls.client_context` (``client_certificate=``...).

        Args:
            **options: keyword arguments of :func:`sockshock.tls.client_context`.

        Returns:
            A new client ``ssl.SSLContext``.
        """
        if self._tls is None or not self._tls.ours:
            raise InvalidArgument(
                "client_context(): this server was not served with tls=True; with your "
                "own context, make the client context that trusts it yourself"
            )
        from sockshock._tls import client_context

        return client_context(**options)

    def connect(
        self, *, timeout: float | None = 5.0, tls: bool | ssl.SSLContext = False
    ) -> socket.socket:
        """A client socket of the server's family and type, connected to it.

        sockshock's one client (every in-process connection it makes to a server
        under test is made this way). Datagram clients are connected too
        (``send``/``recv`` work); Unix datagram clients are bound to a path of their
        own so that the server can answer, in a private temporary directory removed
        when the client closes. With ``tls=True`` (:meth:`client_context`) or a
        client ``ssl.SSLContext``, an ``ssl.SSLSocket`` that has completed its
        handshake, verifying the server as ``localhost``. When the ``with`` block ends, the harness ends the
        sending side of every stream client it made that is still open (the handler
        sees end of file after what was sent; its replies still arrive), stops the
        server, then closes them all (and, for forking servers, closes the copies a
        forked child inherits, so that closing a client reaches the server as end of
        file); under ``inject()``, they are closed when its block ends.

        Args:
            timeout: the client socket's timeout in seconds (``None``: blocking).
            tls: ``True`` to run TLS with :meth:`client_context`, or your own client
                ``ssl.SSLContext``; ``False`` (default): plain.

        Returns:
            A connected ``socket.socket`` (an ``ssl.SSLSocket`` with ``tls``).
        """
        if timeout is not None:
            check_seconds("timeout", timeout, source="connect()")
        if not isinstance(tls, (bool, ssl.SSLContext)):
            raise InvalidArgument(
                f"expected True, False or an ssl.SSLContext but got tls={tls!r} "
                f"(type={type(tls).__name__}) (from connect())"
            )
        if tls is True and self._tls is None:  # (a context of your own is yours to give:
            # a handler may do TLS itself)
            raise InvalidArgument(
                f"tls=True (from connect()): "
                f"{type(self.server).__name__} was not served with tls=, "
                "so sockshock runs no TLS on it; connect() without tls=, or "
                "with a client SSLContext of your own"
            )
        if tls is False:
            return self._connect(timeout)
        return self._connect(timeout, self.client_context() if tls is True else tls)

    def _connect(
        self, timeout: float | None, context: ssl.SSLContext | None = None
    ) -> socket.socket:
        def register(client: socket.socket) -> None:
            with self._lock:  # (a forked child releases it: the one client notes it)
                self._clients.append(client)

        transport = "datagram" if self.type == socket.SOCK_DGRAM else "stream"
        forking = context is not None and hasattr(self.server, "active_children")
        before = forks()
        client = connect(
            self.address,
            transport,
            timeout=timeout,
            tls=None if forking else context,
            source="connect()",
            before_connect=register,
        )
        if forking:
            # No handshake while the server forks the child for this connection: a
            # child forked while this thread holds one of OpenSSL's locks would
            # wait for it for ever (see _wire._forks.wait_for_fork).
            assert context is not None
            wait_for_fork(before, min(1.0, timeout or 1.0))
            try:
                client = context.wrap_socket(client, server_hostname="localhost")
            except BaseException:
                client.close()
                raise
        if client not in self._clients:  # under TLS: the SSLSocket over the one registered
            with self._lock:
                self._clients.append(client)
        return client

    def _remove_directory(self) -> None:
        """Remove the handle's private temporary directory (``temporary_path()``)."""
        if self._directory is not None:
            remove_temporary_directory(self._directory)

    def _end_clients(self) -> None:
        """Before the stop: end the sending side of every stream client still open
        (a TLS client sends its close_notify first), so that a handler waiting for
        more sees end of file after what was sent -- and its replies still arrive.
        The clients are closed after the stop (:meth:`close_clients`)."""
        if self.type != socket.SOCK_STREAM:
            return
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            if client.fileno() == -1:
                continue
            if isinstance(client, ssl.SSLSocket):
                with contextlib.suppress(OSError, ValueError):
                    client.setblocking(False)  # send close_notify, do not wait for the peer's
                    client.unwrap()
            with contextlib.suppress(OSError, ValueError):
                socket.socket.shutdown(client, socket.SHUT_WR)

    def close_clients(self) -> None:
        """Close every client ``connect()`` made (a Unix datagram client's own path
        goes with it), as the block's end does."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.close()

    def __repr__(self) -> str:
        return f"<ServerHandle {type(self.server).__name__} at {self.address!r}>"


def live_handle(handle: ServerHandle[Any]) -> None:
    """A handle whose server runs: its forked children release the test's clients
    and die with the serving thread, an abrupt end kills them (``_children``)."""
    running(handle)


def forget_handle(handle: ServerHandle[Any]) -> None:
    """The handle's server has stopped (or its block ended): non-daemon threads its
    handlers started are watched at exit (``_children``)."""
    stopped(handle)

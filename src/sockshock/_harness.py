"""``serving()``: run a server for the length of a ``with`` block, and never hang.

The harness starts the server on a loopback port chosen by the kernel (or on a
Unix path inside a private temporary directory), serves in a daemon thread, and on
exit lets the loop take what already reached the server (connections in the
backlog, datagrams in the queue), then stops everything within a bound: ``shutdown()``, ``server_close()``, the
serving thread. Exceptions raised by request handlers -- which the standard library
prints to stderr and forgets -- are collected (from forked children too) and
re-raised. If stopping does not finish in time, the harness captures the stacks of
the stuck threads, forces the stuck connections closed (and kills stuck children)
so that the test run can go on, and raises :class:`ShutdownTimeout`.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import ipaddress
import os
import pickle
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sockshock import socketserver as _ss
from sockshock._audit import register_unix_path
from sockshock._errors import InvalidArgument, InvalidType, SockshockError, check_number
from sockshock._faults._plan import FaultPlan
from sockshock._injection import FaultLayer

__all__ = [
    "HandlerError",
    "HandlerFailure",
    "ServerHandle",
    "ShutdownTimeout",
    "ShutdownTooSlow",
    "resolve_server_class",
    "serving",
]



class ShutdownTimeout(SockshockError):
    """A server did not stop within the harness's bound.

    The message holds the stacks of the threads that were stuck, captured before
    the harness forced their connections closed.
    """


class ShutdownTooSlow(SockshockError, AssertionError):
    """``assert_stops_within()``: stopping took longer than the stated bound."""


class HandlerError(SockshockError):
    """A request handler failed in a forked child with an exception that could not
    be sent to the parent as itself; the message holds the child's traceback."""


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


def _server_names() -> list[str]:
    return sorted(
        name for name in _ss.__all__
        if isinstance(getattr(_ss, name), type) and issubclass(getattr(_ss, name), _ss.BaseServer)
        and name != "BaseServer"
    )


def import_object(spec: str, *, source: str) -> Any:
    """``"package.module:attr"`` -> the object, or one error naming the value."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidArgument(f"{source}={spec!r}: expected 'module:attr'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgument(
            f"{source}={spec!r}: cannot import {attr!r} from {module_name!r} ({exc})") from exc


def resolve_server_class(spec: Any, *, source: str = "server_class") -> type[Any]:
    """Turn a server class, a name from ``sockshock.socketserver`` or ``"module:attr"``
    into a server class, with one clear error naming the value otherwise."""
    if isinstance(spec, type):
        cls: Any = spec
    elif isinstance(spec, str):
        if ":" in spec:
            cls = import_object(spec, source=source)
        else:
            cls = getattr(_ss, spec, None)
            if cls is None or spec not in _server_names():
                names = _server_names()
                close = difflib.get_close_matches(spec, names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise InvalidArgument(
                    f"{source}={spec!r} is not a server class of sockshock.socketserver; "
                    f"{hint}known: {', '.join(names)}; or give 'module:attr'"
                )
    else:
        raise InvalidType(
            f"expected a server class or its name but got {source}={spec!r} "
            f"(type={type(spec).__name__})"
        )
    import socketserver as stdlib_socketserver

    bases = (_ss.BaseServer, stdlib_socketserver.BaseServer)
    if not (isinstance(cls, type) and issubclass(cls, bases)):
        raise InvalidType(f"{source}={spec!r} is {cls!r}, not a subclass of socketserver.BaseServer")
    return cls


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass(eq=False)
class ServerHandle:
    """What ``serving()`` yields: the running server and ways to reach it."""

    server: Any
    address: Any
    thread: threading.Thread
    _reporter: _Reporter
    layer: FaultLayer | None = None
    _directory: str | None = None
    _clients: list[socket.socket] = field(default_factory=list)
    _live: weakref.WeakSet[socket.socket] = field(default_factory=weakref.WeakSet)
    _before: set[int | None] = field(default_factory=set)

    @property
    def errors(self) -> list[HandlerFailure]:
        """Handler failures so far (forked children's included); clear this list to
        acknowledge them, so that leaving the ``with`` block does not re-raise them."""
        self._reporter.collect()
        return self._reporter.errors

    @property
    def plan(self) -> FaultPlan | None:
        """The fault plan in force (``None`` without faults): ``plan.seed``,
        ``plan.log``, ``plan.describe()``."""
        return self.layer.plan if self.layer is not None else None

    @property
    def family(self) -> int:
        return int(self.server.address_family)

    @property
    def type(self) -> int:
        return int(self.server.socket_type)

    def temporary_path(self, name: str) -> str:
        """A path inside this handle's private temporary directory."""
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="sockshock-")
        return os.path.join(self._directory, name)

    def assert_stops_within(self, seconds: float, *, busy: int = 0, stalled: int = 0,
                            request: bytes = b"an unfinished request",
                            tolerance: float = 2.0, slack: float = 0.1) -> float:
        """Stop the server now, under load, and fail if that takes too long.

        Opens ``busy`` clients that sent part of a request (``request``, with no
        end) and ``stalled`` clients that sent nothing, lets the server take them,
        then times ``shutdown()`` + ``server_close()``. A noisy CI machine is
        allowed ``seconds * tolerance + slack``.

        Returns:
            The seconds stopping took.

        Raises:
            ShutdownTooSlow: (an ``AssertionError``) with the stuck threads'
                stacks; the harness then forces the stuck connections closed.
        """
        check_number("seconds", seconds, low=0, low_open=True, source="assert_stops_within()")
        for name, value in (("busy", busy), ("stalled", stalled)):
            check_number(name, value, low=0, high=1000, integer=True,
                         source="assert_stops_within()")
        check_number("tolerance", tolerance, low=1, source="assert_stops_within()")
        stream = self.type == socket.SOCK_STREAM
        for _ in range(busy if stream else 0):
            self.connect().sendall(request)
        for _ in range(stalled if stream else 0):
            self.connect()
        _drain(self.server, self.thread, _DRAIN_MAX)
        allowed = seconds * tolerance + slack
        start = time.monotonic()
        stacks = _stop(self.server, self.thread, self._live, allowed, self._before)
        elapsed = time.monotonic() - start
        if stacks or elapsed > allowed:
            load = f"{busy} busy and {stalled} stalled clients" if stream else "no clients"
            raise ShutdownTooSlow(
                f"{type(self.server).__name__} took {elapsed:.3f} s to shut down and close "
                f"with {load}; the bound is {seconds:g} s (x{tolerance:g} + {slack:g} s for "
                f"a noisy machine: {allowed:.3f} s)" + (f"\n{stacks}" if stacks else ""))
        return elapsed

    def connect(self, *, timeout: float | None = 5.0) -> socket.socket:
        """A client socket of the server's family and type, connected to it.

        Datagram clients are connected too (``send``/``recv`` work); Unix datagram
        clients are bound to a path of their own so that the server can answer.
        The harness closes every client it made when the ``with`` block ends
        (and, for forking servers, closes the copies a forked child inherits, so
        that closing a client reaches the server as end of file).
        """
        client = socket.socket(self.family, self.type)
        # Registered before connect(): a forking server may fork as soon as the
        # kernel completes the handshake, and its child must close its copy.
        self._clients.append(client)
        try:
            client.settimeout(timeout)
            if self.type == socket.SOCK_DGRAM and self.family == getattr(socket, "AF_UNIX", None):
                client.bind(self.temporary_path(f"client-{len(self._clients)}.sock"))
            client.connect(self.address)
        except BaseException:
            self._clients.remove(client)
            client.close()
            raise
        return client


_LIVE_HANDLES: weakref.WeakSet[ServerHandle] = weakref.WeakSet()


def _close_clients_in_child() -> None:
    # A forked server child inherits the test's client sockets; were they left
    # open there, closing a client in the test would never reach the server as
    # end of file.
    for handle in list(_LIVE_HANDLES):
        for client in handle._clients:
            with contextlib.suppress(OSError):
                client.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_clients_in_child)


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def _thread_stacks(exclude: set[int]) -> str:
    frames = sys._current_frames()
    parts = []
    for thread in threading.enumerate():
        if thread.ident in exclude or thread.ident not in frames:
            continue
        stack = "".join(traceback.format_stack(frames[thread.ident]))
        parts.append(f"Thread {thread.name!r} (daemon={thread.daemon}):\n{stack}")
    return "\n".join(parts) or "(no other threads)"


class _Reporter:
    """Collects handler failures, in this process and from forked children.

    A child writes each failure to a file of its own in a private directory (a
    datagram queue would hold only ``net.unix.max_dgram_qlen`` -- often 10 --
    reports and then block the child); the parent reads them when asked.
    """

    def __init__(self, errors: list[HandlerFailure]) -> None:
        self.errors = errors
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.directory = tempfile.mkdtemp(prefix="sockshock-failures-")
        self.count = 0

    def record(self, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is None:
            return
        text = traceback.format_exc()
        failure = HandlerFailure(exc, client_address, text, os.getpid())
        if os.getpid() == self.pid:
            with self.lock:
                self.errors.append(failure)
            return
        # In a forked child: leave the failure for the parent.
        try:
            payload = pickle.dumps(failure)
        except Exception:
            payload = pickle.dumps(HandlerFailure(
                HandlerError(f"{type(exc).__name__}: {exc}"), repr(client_address), text,
                os.getpid()))
        self.count += 1
        name = os.path.join(self.directory, f"{os.getpid()}-{self.count}")
        with contextlib.suppress(OSError):
            with open(name + ".tmp", "wb") as f:
                f.write(payload)
            os.rename(name + ".tmp", name + ".failure")  # whole, or not at all

    def collect(self) -> None:
        with self.lock:
            try:
                names = sorted(n for n in os.listdir(self.directory) if n.endswith(".failure"))
            except OSError:
                return
            for name in names:
                path = os.path.join(self.directory, name)
                try:
                    with open(path, "rb") as f:
                        failure = pickle.load(f)
                except Exception as exc:  # an exception class that cannot be rebuilt
                    failure = HandlerFailure(
                        HandlerError(f"unreadable report from a child: {exc!r}"), None, "", -1)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                _add_note(failure.exception,
                          f"raised in forked child pid {failure.pid}:\n{failure.traceback}")
                self.errors.append(failure)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _make_class(base: type[Any], attrs: dict[str, Any], reporter: _Reporter,
                live: weakref.WeakSet[socket.socket], layer: FaultLayer | None) -> type[Any]:
    for name in attrs:
        if not hasattr(base, name):
            raise InvalidArgument(
                f"{base.__name__} has no attribute {name!r} to set (server_attrs "
                f"{name}={attrs[name]!r}); it is not a setting of this server class"
            )
    original_handle_error = base.handle_error
    default_handle_error: tuple[Any, ...] = (_ss.BaseServer.handle_error,)
    with contextlib.suppress(ImportError):
        import socketserver as stdlib_socketserver

        default_handle_error += (stdlib_socketserver.BaseServer.handle_error,)

    def handle_error(self: Any, request: Any, client_address: Any) -> None:
        reporter.record(client_address)
        if original_handle_error not in default_handle_error:
            original_handle_error(self, request, client_address)

    base_get_request = base.get_request

    def get_request(self: Any) -> tuple[Any, Any]:
        request, client_address = base_get_request(self)
        if isinstance(request, socket.socket):
            live.add(request)
        return request, client_address

    namespace: dict[str, Any] = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        "handle_error": handle_error,
        "get_request": get_request,
        **attrs,
    }
    if layer is not None:
        base_service_actions = base.service_actions

        def service_actions(self: Any) -> None:
            base_service_actions(self)
            layer.poll_children()  # forked children's fault log, shutdown requests

        namespace["service_actions"] = service_actions
        namespace["socket_layer"] = layer
    return type(base.__name__, (base,), namespace)


def _make_layer(cls: type[Any], faults: Any, clock: Any, seed: int | None) -> FaultLayer | None:
    if faults is None:
        if clock is not None or seed is not None:
            raise InvalidArgument("clock= and seed= only apply with faults=; "
                                  "pass faults=[...] (an empty list for none)")
        return None
    if not issubclass(cls, _ss.BaseServer):
        raise InvalidArgument(
            f"{cls.__module__}.{cls.__qualname__} has no socket layer, so faults cannot "
            f"reach it; use sockshock.socketserver.{cls.__name__} or a subclass of "
            "sockshock.socketserver's classes (or the fault proxy for black-box servers)")
    if isinstance(faults, FaultLayer):
        if clock is not None or seed is not None:
            raise InvalidArgument("clock= and seed= cannot change a ready FaultLayer")
        return faults
    if isinstance(faults, FaultPlan):
        if seed is not None:
            raise InvalidArgument(f"seed={seed!r} conflicts with the plan's own "
                                  f"seed={faults.seed}; give one or the other")
        return FaultLayer(faults, clock)
    if isinstance(faults, (list, tuple)):
        return FaultLayer(FaultPlan(*faults, seed=seed), clock)
    raise InvalidType(
        f"expected a FaultPlan, a list of fault models or a FaultLayer but got "
        f"faults={faults!r} (type={type(faults).__name__})")


def _default_address(cls: type[Any], handle_path: Any) -> Any:
    family = cls.address_family
    if family == getattr(socket, "AF_UNIX", object()):
        return handle_path("server.sock")
    if family == socket.AF_INET6:
        return ("::1", 0)
    return ("127.0.0.1", 0)


def _check_address(cls: type[Any], address: Any) -> None:
    if cls.address_family in (socket.AF_INET, socket.AF_INET6):
        if not (isinstance(address, tuple) and address and isinstance(address[0], str)):
            raise InvalidArgument(f"address={address!r} for {cls.__name__} must be a (host, port) tuple")
        if not _is_loopback(address[0]):
            raise InvalidArgument(
                f"address={address!r}: sockshock serves on loopback addresses only "
                "(127.0.0.0/8, ::1, localhost); use port 0 to let the kernel choose"
            )


@contextlib.contextmanager
def serving(
    server_class: Any,
    handler_class: Any,
    *,
    address: Any = None,
    faults: FaultPlan | list[Any] | tuple[Any, ...] | FaultLayer | None = None,
    clock: Any = None,
    seed: int | None = None,
    shutdown_timeout: float = 5.0,
    poll_interval: float = 0.5,
    **server_attrs: Any,
) -> Iterator[ServerHandle]:
    """Run ``server_class(address, handler_class)`` for the length of a ``with`` block.

    Args:
        server_class: a server class, or its name in ``sockshock.socketserver``
            (``"ThreadingTCPServer"``), or ``"module:attr"``.
        handler_class: the request handler class.
        address: where to listen; default: port 0 on 127.0.0.1 (``::1`` for IPv6
            servers) or a path in a private temporary directory for Unix servers.
        faults: a :class:`~sockshock.faults.FaultPlan`, a list of fault models
            (made into a plan with ``seed``), or a ready FaultLayer. The server's
            sockets then come from a :class:`~sockshock.FaultLayer`; the server
            class must be one of sockshock's (it needs the socket-layer seam).
        clock: ``"real"`` (default) or ``"virtual"`` (delays advance virtual time
            instead of sleeping), or a Clock; only with ``faults``.
        seed: the seed of the plan made from a list of models (default: random;
            always readable as ``handle.plan.seed``).
        shutdown_timeout: seconds that stopping may take before the harness raises
            :class:`ShutdownTimeout` with the stuck threads' stacks.
        poll_interval: passed to ``serve_forever()`` (only paces
            ``service_actions()``; shutdown does not wait for it).
        **server_attrs: class attributes to set on the server (for example
            ``request_queue_size=16``, ``daemon_threads=True``, ``max_workers=4``);
            each must already exist on the class.

    Yields:
        A :class:`ServerHandle`: ``.address``, ``.server``, ``.connect()``,
        ``.errors`` (handler failures so far; clear it to acknowledge them).

    Raises:
        The first exception a request handler raised (with the others in its notes),
        after the server has stopped; :class:`ShutdownTimeout` if it would not stop.
    """
    cls = resolve_server_class(server_class)
    layer = _make_layer(cls, faults, clock, seed)
    errors: list[HandlerFailure] = []
    reporter = _Reporter(errors)
    live: weakref.WeakSet[socket.socket] = weakref.WeakSet()
    directory: list[str] = []

    def temporary_path(name: str) -> str:
        if not directory:
            directory.append(tempfile.mkdtemp(prefix="sockshock-"))
        return os.path.join(directory[0], name)

    try:
        server_type = _make_class(cls, server_attrs, reporter, live, layer)
        if address is None:
            address = _default_address(cls, temporary_path)
        else:
            _check_address(cls, address)
        server = server_type(address, handler_class)
        if isinstance(server.server_address, str) and server.server_address:
            register_unix_path(server.server_address)
        if layer is not None:
            layer.bind_server(server)
    except BaseException:
        if layer is not None:
            layer.close()
        reporter.close()
        for path in directory:
            shutil.rmtree(path, ignore_errors=True)
        raise

    before = {t.ident for t in threading.enumerate()}
    loop_errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.serve_forever(poll_interval=poll_interval)
        except BaseException as exc:  # re-raised in the test's thread
            loop_errors.append(exc)

    thread = threading.Thread(target=serve, name=f"sockshock serving {cls.__name__}", daemon=True)
    handle = ServerHandle(server=server, address=server.server_address, thread=thread,
                          _reporter=reporter, layer=layer,
                          _directory=directory[0] if directory else None,
                          _live=live, _before=before)
    _LIVE_HANDLES.add(handle)
    thread.start()
    body_error: BaseException | None = None
    try:
        yield handle
    except BaseException as exc:
        body_error = exc
        raise
    finally:
        if layer is not None:
            layer.join_shutdown(shutdown_timeout)
        stuck = _stop(server, thread, live, shutdown_timeout, before)
        for client in handle._clients:
            client.close()
        _LIVE_HANDLES.discard(handle)
        if layer is not None:
            layer.close()
        reporter.collect()
        reporter.close()
        for path in {*directory, *([handle._directory] if handle._directory else [])}:
            shutil.rmtree(path, ignore_errors=True)
        _raise_outcome(body_error, stuck, loop_errors, errors, cls)


def _stop(server: Any, thread: threading.Thread, live: weakref.WeakSet[socket.socket],
          timeout: float, before: set[int | None]) -> str | None:
    """Stop the loop, close the server, join the thread; return stuck stacks if any."""
    deadline = time.monotonic() + timeout
    mine = {threading.get_ident()}
    stacks: str | None = None
    _drain(server, thread, min(_DRAIN_MAX, timeout / 2))

    def within(step: Any, name: str) -> bool:
        nonlocal stacks
        runner = threading.Thread(target=step, name=f"sockshock {name}", daemon=True)
        runner.start()
        runner.join(max(0.0, deadline - time.monotonic()))
        if not runner.is_alive():
            return True
        if stacks is None:
            ignored = mine | {i for i in (runner.ident, *before) if i is not None}
            stacks = f"{name} did not finish within {timeout:g} s. Stacks:\n" + _thread_stacks(
                ignored)
        _force_unstick(server, live)
        runner.join(2.0)
        return not runner.is_alive()

    if thread.is_alive():
        within(server.shutdown, "shutdown()")
    within(server.server_close, "server_close()")
    thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
    return stacks


_DRAIN_MAX = 1.0


def _drain(server: Any, thread: threading.Thread, bound: float) -> None:
    """Let the loop take what already reached the server -- connections waiting in
    the backlog, datagrams in the queue -- before it is stopped: a client that
    connected and sent its request inside the ``with`` block gets served."""
    end = time.monotonic() + bound
    while thread.is_alive() and time.monotonic() < end:
        try:
            readable, _, _ = select.select([server], [], [], 0)
        except (OSError, ValueError):  # closed already (an abrupt shutdown)
            return
        if not readable:
            return
        time.sleep(0.001)


def _force_unstick(server: Any, live: weakref.WeakSet[socket.socket]) -> None:
    for sock in list(live):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    for pid in list(getattr(server, "active_children", None) or ()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _raise_outcome(body_error: BaseException | None, stuck: str | None,
                   loop_errors: list[BaseException], errors: list[HandlerFailure],
                   cls: type[Any]) -> None:
    failures = [f.exception for f in errors] + loop_errors
    if body_error is not None:
        if stuck:
            _add_note(body_error, f"also, {cls.__name__} did not stop: {stuck}")
        for failure in failures:
            _add_note(body_error, f"also, a request handler raised {failure!r}")
        return  # the body's exception propagates
    if stuck:
        error = ShutdownTimeout(f"{cls.__name__} {stuck}")
        for failure in failures:
            _add_note(error, f"also, a request handler raised {failure!r}")
        raise error
    if failures:
        first, *rest = failures
        for other in rest:
            _add_note(first, f"also, a request handler raised {other!r}")
        raise first


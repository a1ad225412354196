"""Reaching servers built where a test cannot pass them anything.

:func:`install` puts ``sockshock.socketserver`` in place of the standard library's
``socketserver`` for everything imported afterwards (the pytest plugin's
``--sockshock-install`` does it before conftest files and test modules are
imported). :func:`inject` gives every server created inside a ``with`` block a
fault layer, error capture and sockshock's loop, and hands the test their handles:
``logging.config.listen()``-style code, which builds and serves its server
itself, becomes testable.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from sockshock import socketserver as ours
from sockshock._faults import make_plan
from sockshock._harness._failures import Reporter, raise_outcome
from sockshock._harness._handle import ServerHandle, forget_handle, live_handle
from sockshock._harness._instrument import attach, instrument, track_threads
from sockshock._harness._resolve import (
    DEFAULT_SHUTDOWN_TIMEOUT,
    check_address,
    check_clock,
    check_expected_errors,
)
from sockshock._harness._runner import Run
from sockshock._harness._signatures import own_shutdown
from sockshock._harness._stacks import describe_threads
from sockshock._harness._types import ClockArg, ExpectedErrors, FaultsArg, Server
from sockshock._stdlib import (
    init_loop_state,
    needs_loop_state,
    put_back_stdlib,
    set_aside_stdlib,
    stdlib_socketserver,
)
from sockshock._util import (
    InvalidArgument,
    ShutdownTimeout,
    check_number,
    check_seconds,
    exported_by,
    resolve_clock,
)
from sockshock._wire import FaultLayer

__all__ = ["InjectedServers", "Installation", "inject", "install", "modules_built_on"]


def _uses(module: ModuleType, server_module: ModuleType) -> bool:
    """Whether ``module`` holds ``server_module`` (a socketserver) or a class defined
    there."""
    for value in list(vars(module).values()):
        if value is server_module or (
            isinstance(value, type) and value.__module__ == server_module.__name__
        ):
            return True
    return False


def modules_built_on(stdlib: ModuleType) -> list[str]:
    """The modules built on the standard ``socketserver``, in the order they were
    imported (sockshock's own excluded)."""
    return [
        name
        for name, module in list(sys.modules.items())
        if isinstance(module, ModuleType)
        and name != "socketserver"
        and not name.startswith("sockshock")
        and _uses(module, stdlib)
    ]


class Installation:
    """``sockshock.socketserver`` in place of ``socketserver``; :meth:`undo` (or the
    end of a ``with`` block) puts the standard module back and forgets the modules
    imported meanwhile that were built on ours."""

    def __init__(self) -> None:
        self._active = False
        current = sys.modules.get("socketserver")
        if current is ours:
            return  # installed already: nothing to undo here
        if current is not None:
            users = modules_built_on(current)
            if users:
                first = users[0]
                if first == "__main__":
                    advice = (
                        "otherwise call sockshock.install() at the top of your script, "
                        "before it imports socketserver or a module built on it."
                    )
                else:
                    advice = f"otherwise call sockshock.install() before importing {first!r}."
                raise InvalidArgument(
                    "socketserver was imported before sockshock.install(): "
                    + ("your script ('__main__')" if first == "__main__" else repr(first))
                    + " is built on the standard library's"
                    + (f" (and {', '.join(map(repr, users[1:]))})" if users[1:] else "")
                    + " and would keep its classes. Install first: with pytest, "
                    "`pytest --sockshock-install` (or `sockshock_install = true` in the ini "
                    "file) installs before conftest files and test modules are imported; " + advice
                )
            set_aside_stdlib(current)
        self._before = set(sys.modules)
        sys.modules["socketserver"] = ours
        self._active = True

    def undo(self) -> None:
        """Put the standard ``socketserver`` back (idempotent)."""
        if not self._active:
            return
        self._active = False
        for name in set(sys.modules) - self._before:
            module = sys.modules.get(name)
            if (
                isinstance(module, ModuleType)
                and not name.startswith("sockshock")
                and _uses(module, ours)
            ):
                del sys.modules[name]  # built on ours: imported afresh next time
        saved = put_back_stdlib()
        if saved is not None:
            sys.modules["socketserver"] = saved
        else:
            sys.modules.pop("socketserver", None)

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


@exported_by("sockshock")
def install() -> Installation:
    """Put ``sockshock.socketserver`` in place of ``socketserver`` for everything
    imported from now on (``http.server``, ``xmlrpc.server``, ``logging.config``,
    packages built on ``socketserver``); as a context manager, only for the block.

    Returns:
        An installation: ``.undo()`` puts the standard module back; as a context
        manager it undoes itself when the block ends.

    Raises:
        InvalidArgument: (also a ``ValueError``) a module
            built on the standard ``socketserver`` was imported already (named in the
            message, with what to do).
    """
    return Installation()


class InjectedServers(list[ServerHandle[Server]]):
    """The servers built inside an :func:`inject` block, in order of creation: a
    :class:`ServerHandle` each."""

    def __init__(self) -> None:
        super().__init__()
        self._added = threading.Condition()

    def wait(self, count: int = 1, timeout: float = 5.0) -> InjectedServers:
        """Wait until ``count`` servers exist (library code may build them in a
        thread of its own); raise ``TimeoutError`` after ``timeout`` seconds."""
        check_number("count", count, low=1, high=1000, integer=True, source="servers.wait()")
        check_seconds("timeout", timeout, allow_zero=True, source="servers.wait()")
        with self._added:
            if not self._added.wait_for(lambda: len(self) >= count, timeout):
                raise TimeoutError(
                    f"{len(self)} of {count} server(s) were built within {timeout:g} s"
                )
        return self

    def _add(self, server: ServerHandle[Server]) -> None:
        with self._added:
            self.append(server)
            self._added.notify_all()


def _server_classes() -> list[type[Any]]:
    found: list[type[Any]] = [ours.TCPServer]
    stdlib = stdlib_socketserver()
    if stdlib is not None:
        found.append(stdlib.TCPServer)
    return found


def _check_injected_address(cls: type[Any], address: Any) -> None:
    """Before a server built inside :func:`inject` binds: a loopback address (or a
    Unix path), as ``serving()`` requires -- never ``0.0.0.0`` or ``""``."""
    if getattr(cls, "address_family", None) in (socket.AF_INET, socket.AF_INET6):
        try:
            check_address(cls, address, source="server_address", new=False)
        except InvalidArgument as exc:
            raise type(exc)(
                f"{cls.__name__} built inside sockshock.inject() would bind "
                f"{address!r}, refused before binding: {exc}"
            ) from None


@exported_by("sockshock")
@contextlib.contextmanager
def inject(
    faults: FaultsArg | None = None,
    *,
    seed: int | None = None,
    clock: ClockArg | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    expect_errors: ExpectedErrors = (),
) -> Iterator[InjectedServers]:
    """Give every server built inside the block a fault layer.

    Each server -- sockshock's or one built on the standard library's module, made
    by your code or by a library's -- gets its own plan of the same models and seed
    (``faults`` as for ``serving()``), its handler errors collected, its handler
    threads as daemon threads and sockshock's loop. The block yields the list of
    their :class:`ServerHandle`\\ s -- the handle ``serving()`` yields, with the same
    methods: ``connect()``, ``errors``, ``plan``, ``wait_stopped()``,
    ``assert_stops_within()`` -- in order of creation (``servers.wait(1)`` for one a
    library builds in a thread of its own). Running and stopping them is the code's
    that built them (for ``logging.config.listen()``:
    ``logging.config.stopListening()``); an ``AbruptShutdown`` stops one as under
    ``serving()`` (its own ``shutdown()`` if it overrides it, else its loop's, then
    ``server_close()``), and so does ``assert_stops_within()``. Their
    ``server_close()`` waits at most ``shutdown_timeout`` for handler threads.

    Args:
        faults: a FaultPlan or a list of fault models (as for ``serving()``), each
            server getting a plan of its own with the same models and seed.
        seed: the seed of the plans made from a list of models (default: random).
        clock: ``"real"`` (default) or ``"virtual"``, as for ``serving()``.
        shutdown_timeout: seconds each server's ``server_close()`` may wait for its
            handler threads.
        expect_errors: exception classes handlers are expected to raise: kept in
            each handle's ``errors``, not re-raised.

    Yields:
        The servers built so far, as handles (``.server``, ``.address``,
        ``.layer``, ``.plan``, ``.errors``); ``servers.wait(n)`` waits for ``n``.

    Raises:
        ShutdownTimeout: after the block, if a server's ``server_close()`` gave up
            on stuck handler threads, or a stop the harness began did not end within
            ``shutdown_timeout`` (with their stacks).
        Exception: after the block, the first handler error not in
            ``expect_errors``, or an error of a stop the harness began.
    """
    check_seconds("shutdown_timeout", shutdown_timeout, source="inject()")
    template = make_plan(
        [] if faults is None else faults, seed=seed, source="faults", where="inject(faults=...)"
    )
    check_clock(clock, source="inject()")
    the_clock = resolve_clock(clock, source="inject(clock=...)")
    expected = check_expected_errors(expect_errors, source="inject()")
    servers = InjectedServers()
    originals = {cls: cls.__dict__["__init__"] for cls in _server_classes()}

    def adopt(server: Any) -> None:
        if getattr(type(server), "_sockshock_run", False):
            return  # served by serving() inside the block: it has its own
        cls = type(server)
        layer = FaultLayer(template.replay() if servers else template, the_clock)
        reporter = Reporter(forks=hasattr(cls, "collect_children"))
        live: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        server.__class__ = instrument(cls, {})
        if needs_loop_state(server):
            init_loop_state(server)
        tracker = track_threads(server, join_timeout=shutdown_timeout)
        if isinstance(server.socket, socket.socket):
            server.socket = layer.wrap(server.socket)
        server.socket_layer = layer
        run = Run(server, tracker, reporter, live, own_shutdown=own_shutdown(cls), managed=False)
        attach(server, reporter, live, run)
        layer.on_abrupt_shutdown = run.request_stop
        handle: ServerHandle[Server] = ServerHandle(run, layer, None)
        live_handle(handle)
        servers._add(handle)

    def patched(original: Any) -> Any:
        @functools.wraps(original)  # its signature stays readable (_signatures)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            address = args[0] if args else kwargs.get("server_address")
            if not getattr(type(self), "_sockshock_run", False):
                _check_injected_address(type(self), address)
            original(self, *args, **kwargs)
            adopt(self)

        return __init__

    for cls, original in originals.items():
        cls.__init__ = patched(original)
    try:
        yield servers
    finally:
        for cls, original in originals.items():
            cls.__init__ = original
        stuck = _finish(servers, shutdown_timeout)
    failures = [
        f.exception
        for s in servers
        for f in s._run.reporter.errors
        if not isinstance(f.exception, expected)
    ] + [error for s in servers for error in s._run.loop_errors]  # a stop the harness began
    for handle in servers:
        handle._run.reporter.close()
    raise_outcome(ShutdownTimeout("\n".join(stuck)) if stuck else None, failures)


def _finish(servers: InjectedServers, shutdown_timeout: float) -> list[str]:
    """At the end of an :func:`inject` block: the test's clients closed, the stops
    the harness began awaited (bounded), the fault logs and errors taken in; what
    got stuck, described."""
    stuck: list[str] = []
    deadline = time.monotonic() + shutdown_timeout
    for handle in servers:
        run = handle._run
        handle.close_clients()
        forget_handle(handle)
        if run.stopper is not None:
            run.stopper.join(max(0.0, deadline - time.monotonic()))
            if run.stopper.is_alive():
                stuck.append(
                    f"{type(handle.server).__name__}: the stop the harness began (an "
                    f"AbruptShutdown) did not end within {shutdown_timeout:g} s "
                    f"(in {run.phase}; abandoned: a daemon thread). Stacks:\n"
                    + describe_threads([run.stopper])
                )
        if handle.layer is not None:
            handle.layer.on_abrupt_shutdown = None
            handle.layer.close()  # takes in what forked children sent
        run.reporter.collect()
        handle._remove_directory()
        if run.tracker.gave_up:
            stuck.append(
                f"{type(handle.server).__name__} server_close() gave up after "
                f"{shutdown_timeout:g} s on handler threads that did not finish (abandoned: "
                f"daemon threads, they cannot keep the process alive). Stacks:\n"
                f"{run.tracker.gave_up}"
            )
    return stuck

"""The ``sockshock`` fixture: servers for one test, stopped and audited at teardown.

The fixtures pytest sees are declared in ``_plugin`` and call these when a test
uses them: only then is the harness imported."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any, overload

import pytest

from sockshock._faults import FaultModel
from sockshock._harness import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    AddressArg,
    ClockArg,
    ExpectedErrors,
    FaultsArg,
    HandlerClass,
    InjectedServers,
    LeakAudit,
    Server,
    ServerHandle,
    ServerT,
    TLSArg,
    add_note,
    audit,
    inject,
    raise_outcome,
    resolve_spec,
    serve_spec,
    user_location,
    watch_stray_threads,
)
from sockshock._pytest._hypothesis import adopt_hypothesis_test
from sockshock._pytest._markers import (
    CALL_FAILED,
    FIXTURE,
    PROXIES,
    marker_faults,
    rerun_lines,
    seed_for_test,
    shutdown_bound,
)
from sockshock._pytest._settings import check_marker, setting

__all__ = [
    "SockshockFixture",
    "sockshock_audit_fixture",
    "sockshock_fixture",
    "sockshock_proxy_fixture",
]

_UNSET: Any = object()


class SockshockFixture:
    """What the ``sockshock`` fixture gives a test.

    The fixture's name shadows the ``sockshock`` module inside a test: import the
    package's names under another name there (``from sockshock.errors import ...``).
    """

    def __init__(self, request: pytest.FixtureRequest, stack: contextlib.ExitStack) -> None:
        self._request = request
        self._stack = stack
        item = request.node
        config = request.config
        self.seed: int = seed_for_test(config, item)
        self.shutdown_timeout: float = setting(config, item, "shutdown_timeout")
        self.clock: str = setting(config, item, "clock")
        self.handles: list[ServerHandle[Any]] = []
        self.injected: list[InjectedServers] = []  # inject()'s server lists
        self.hypothesis_seeded = False  # the seed also seeds the test's @given examples
        self._example: tuple[Any, contextlib.ExitStack] | None = None  # hypothesis' current

    def __repr__(self) -> str:
        return f"<sockshock fixture: seed {self.seed}, {len(self.handles)} server(s)>"

    def __getattr__(self, name: str) -> Any:
        # The fixture's name is the package's, so a test that takes it no longer sees
        # the module under that name: say so instead of a bare AttributeError.
        raise AttributeError(
            f"the sockshock fixture has no attribute {name!r}; in a test that takes the "
            f"fixture, the name 'sockshock' is the fixture, not the package: import what "
            f"you need under another name (import sockshock as ss; from sockshock.errors "
            f"import InvalidArgument)"
        )

    def _marker_faults(self) -> tuple[list[FaultModel], list[Any]]:
        return marker_faults(self._request.config, self._request.node)

    @overload
    def serve(
        self,
        server: type[ServerT],
        handler_class: HandlerClass | str | None = None,
        *,
        faults: FaultsArg | None = None,
        address: AddressArg | None = None,
        server_kwargs: Mapping[str, object] | None = None,
        clock: ClockArg | None = None,
        seed: int | None = None,
        shutdown_timeout: float = ...,
        poll_interval: float | None = ...,
        expect_errors: ExpectedErrors = ...,
        tls: TLSArg | None = None,
        **server_attrs: object,
    ) -> ServerHandle[ServerT]: ...

    @overload
    def serve(
        self,
        server: str = ...,
        handler_class: HandlerClass | str | None = None,
        *,
        faults: FaultsArg | None = None,
        address: AddressArg | None = None,
        server_kwargs: Mapping[str, object] | None = None,
        clock: ClockArg | None = None,
        seed: int | None = None,
        shutdown_timeout: float = ...,
        poll_interval: float | None = ...,
        expect_errors: ExpectedErrors = ...,
        tls: TLSArg | None = None,
        **server_attrs: object,
    ) -> ServerHandle[Server]: ...

    @overload
    def serve(
        self,
        server: ServerT,
        handler_class: None = None,
        *,
        faults: FaultsArg | None = None,
        address: None = None,
        server_kwargs: None = None,
        clock: ClockArg | None = None,
        seed: int | None = None,
        shutdown_timeout: float = ...,
        poll_interval: float | None = ...,
        expect_errors: ExpectedErrors = ...,
        tls: TLSArg | None = None,
        **server_attrs: object,
    ) -> ServerHandle[ServerT]: ...

    def serve(
        self,
        server: Any = "ThreadingTCPServer",
        handler_class: Any = None,
        *,
        faults: Any = None,
        **options: Any,
    ) -> ServerHandle[Any]:
        """Start a server for this test, as :func:`sockshock.serving` does; it is
        stopped at teardown -- or, called inside a hypothesis example, when that
        example ends (its handler errors then fail the example).

        ``serve(server, handler_class)``: the arguments of ``serving()`` -- a server
        class, its name in ``sockshock.socketserver`` or ``"module:attr"`` (default
        ``"ThreadingTCPServer"``), or a ready-made server instance with no handler;
        both may be given by keyword too (``server=``, ``handler_class=``).

        Args:
            faults: a FaultPlan or a list of models; default: the models of the
                test's ``@pytest.mark.faults`` (none: no fault layer). A list
                gets the test's seed.
            **options: ``serving()``'s keyword arguments (``address=``,
                ``server_kwargs=``, ``poll_interval=``, ``expect_errors=`` -- default
                the test's ``@pytest.mark.sockshock(expect_errors=...)``...) and
                server attributes (``max_workers=4``, ``app=...``).
        """
        clients: list[Any] = []
        if faults is None:
            models, clients = self._marker_faults()
            faults = models or None
        arguments: dict[str, Any] = {
            "address": None,
            "clock": None,
            "seed": None,
            "server_kwargs": None,
            "shutdown_timeout": self.shutdown_timeout,
            "poll_interval": DEFAULT_POLL_INTERVAL,
            "expect_errors": setting(self._request.config, self._request.node, "expect_errors"),
            "tls": None,
            "tls_strict": False,
        }
        for name in list(options):
            if name in arguments:
                arguments[name] = options.pop(name)
        stack = example_stack(self) or self._stack  # inside @given: until the example ends
        departures = _Departures.of(arguments, clients) if stack is self._stack else None
        spec = resolve_spec(
            server,
            handler_class,
            faults=faults,
            server_attrs=options,
            default_seed=self.seed,
            default_clock=self.clock,
            **arguments,
        )
        spec.warn_at = user_location()  # the server stops in teardown: name the test's line
        if departures is not None:
            stack.push(departures.judge)  # after the server stopped
        handle = stack.enter_context(serve_spec(spec))
        self.handles.append(handle)
        datagram = handle.type == socket.SOCK_DGRAM
        runs = [
            self._stack.enter_context(client.run(handle.address))
            for client in clients  # a scenario's misbehaving clients, until teardown
            if (client.kind == "datagram_burst") == datagram
        ]
        if runs:
            from sockshock._scenarios import CLIENTS_CONNECT_WAIT

            for run in runs:  # in place before the test's own traffic, as in sockshock run
                run.wait_connected(CLIENTS_CONNECT_WAIT)
        if departures is not None:
            departures.handle = handle
            self._stack.callback(departures.clients_leave)  # before they are stopped
        return handle

    @contextlib.contextmanager
    def inject(
        self,
        faults: FaultsArg | None = None,
        *,
        seed: int | None = None,
        clock: ClockArg | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        expect_errors: ExpectedErrors | None = None,
    ) -> Iterator[InjectedServers]:
        """:func:`sockshock.inject` with this test's seed (``seed=`` overrides it) and,
        when ``faults`` is None, the models of the test's ``@pytest.mark.faults``
        (``expect_errors``: the test's ``@pytest.mark.sockshock(expect_errors=...)``
        unless given); the injected servers' fault logs go into a failing test's
        report."""
        if faults is None:
            faults = self._marker_faults()[0] or None
        if expect_errors is None:
            expect_errors = setting(self._request.config, self._request.node, "expect_errors")
        with inject(
            faults,
            seed=self.seed if seed is None else seed,
            clock=clock,
            shutdown_timeout=shutdown_timeout,
            expect_errors=expect_errors if expect_errors is not None else (),
        ) as servers:
            self.injected.append(servers)
            yield servers

    def report(self) -> str:
        """The section a failing test's report gets."""
        lines = rerun_lines(self._request.config, self._request.node, self.seed)
        if self.hypothesis_seeded:
            lines.append("  (the seed also seeds hypothesis: the same examples, in the same order)")
        for handle in self.handles:
            if handle.layer is not None:
                lines.append(f"{type(handle.server).__name__} at {handle.address!r}:")
                lines.append(handle.plan.describe())
            lines.extend(failed_handshake_lines(handle))
        for injected in (server for servers in self.injected for server in servers):
            if injected.layer is not None:  # (always: inject() gives each server a layer)
                lines.append(
                    f"{type(injected.server).__name__} at {injected.address!r} "
                    "(built inside inject()):"
                )
                lines.append(injected.plan.describe())
        return "\n".join(lines)


def failed_handshake_lines(handle: ServerHandle[Any]) -> list[str]:
    """A failing test's report: the TLS handshakes its server dropped."""
    failed = handle.failed_handshakes
    if not failed:
        return []
    return [
        f"{type(handle.server).__name__} at {handle.address!r}: {len(failed)} failed TLS "
        "handshake(s), dropped (tls_strict=True makes them handler errors):",
        *(f"  from {f.client_address!r}: {f.traceback}" for f in failed),
    ]


class _Departures:
    """A scenario's misbehaving clients are stopped at teardown, before the server:
    they leave mid-exchange, and a handler then writing to or reading from their
    connection gets a reset or a broken pipe -- or not, by a few microseconds. As
    in ``sockshock run SCENARIO``, such errors (``ConnectionError``) raised once the
    clients were stopped are the clients' leaving, not the handler's failure: kept
    in ``srv.errors``, not raised. Those raised before still fail the test."""

    def __init__(self, expected: tuple[type[BaseException], ...]) -> None:
        self.expected = expected  # the test's own expect_errors
        self.handle: ServerHandle[Any] | None = None
        self.cutoff: int | None = None

    @classmethod
    def of(cls, arguments: dict[str, Any], clients: list[Any]) -> _Departures | None:
        given = arguments["expect_errors"]
        expected = given if isinstance(given, tuple) else (given,)
        if not clients or not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in expected
        ):
            return None  # (a bad expect_errors= gets serving()'s own error)
        arguments["expect_errors"] = (*expected, ConnectionError)
        return cls(expected)

    def clients_leave(self) -> None:
        if self.handle is not None:
            self.cutoff = len(self.handle.errors)

    def judge(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.handle is None:
            return False
        failures = self.handle.errors
        early: list[BaseException] = [
            f.exception
            for index, f in enumerate(failures)
            if isinstance(f.exception, ConnectionError)
            and not isinstance(f.exception, self.expected)
            and (self.cutoff is None or index < self.cutoff)
        ]
        if exc is not None:
            for failure in early:
                add_note(exc, f"also, a request handler raised {failure!r}")
            return False
        raise_outcome(None, early)
        return False


def _check_shutdown_bounds(request: pytest.FixtureRequest, fixture: SockshockFixture) -> None:
    bound = shutdown_bound(request.config, request.node)
    if bound is None:
        return
    seconds, kwargs = bound
    tolerance = setting(request.config, request.node, "shutdown_tolerance")
    for handle in fixture.handles:
        if not handle.wait_stopped(0):
            handle.assert_stops_within(seconds, tolerance=tolerance, **kwargs)


def sockshock_fixture(request: pytest.FixtureRequest) -> Iterator[SockshockFixture]:
    """Start servers with ``sockshock.serve(server, handler_class, faults=...)``; they
    are stopped, their handler errors re-raised and leaks audited at teardown."""
    check_marker(request.node)
    leak_audit = LeakAudit() if setting(request.config, request.node, "audit") else None
    threads = set(threading.enumerate())
    with contextlib.ExitStack() as stack:
        stack.callback(watch_stray_threads, threads)  # whatever the outcome
        fixture = SockshockFixture(request, stack)
        request.node.stash[FIXTURE] = fixture
        fixture.hypothesis_seeded = adopt_hypothesis_test(request, fixture.seed)
        yield fixture
        _check_shutdown_bounds(request, fixture)
    # Servers stopped without error. A failed test reports its failure, not the
    # mess it may have left.
    if leak_audit is not None and not request.node.stash.get(CALL_FAILED, False):
        leak_audit.check()


def sockshock_audit_fixture(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves threads, descriptors, child processes or Unix socket
    files behind (the sockshock fixture does this too)."""
    if not setting(request.config, request.node, "audit"):
        yield
        return
    with audit():
        yield


def sockshock_proxy_fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``sockshock_proxy(upstream, faults=[...], transport="stream")`` starts a
    :class:`~sockshock.FaultProxy` in front of any address -- a server in a
    subprocess included -- seeded with the test's seed, and returns it (give clients
    its ``.address``). Every proxy is stopped at teardown; a failing test's report
    shows their fault logs."""
    from sockshock._proxy import sockshock_proxy as proxies

    factory_run = proxies(seed=seed_for_test(request.config, request.node))
    factory = next(factory_run)
    request.node.stash[PROXIES] = factory
    yield factory
    with contextlib.suppress(StopIteration):
        next(factory_run)


def example_stack(fixture: SockshockFixture) -> contextlib.ExitStack | None:
    """Inside a hypothesis example: the stack of the servers this example starts,
    closed when the example ends (``None`` outside examples). The fixture's
    ``handles`` are then those of the latest example."""
    hypothesis = sys.modules.get("hypothesis")
    if hypothesis is None or not hypothesis.currently_in_test_context():
        return None
    from hypothesis.control import cleanup, current_build_context

    context = current_build_context()
    current = fixture._example
    if current is not None and current[0] is context:
        return current[1]
    stack = contextlib.ExitStack()
    fixture._example = (context, stack)
    fixture.handles = []
    cleanup(stack.close)
    return stack

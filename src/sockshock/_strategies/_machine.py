"""ServerMachine: stateful fuzzing of a live server (public: ``sockshock.strategies``).

A ``hypothesis.stateful`` machine that starts a server with ``serving()`` (any
class, with faults), opens clients that follow drawn client scripts, and carries
their steps out one at a time, interleaved as hypothesis chooses -- several
clients are connected at once. When a client's script ends, the machine checks
its reply; at the end of a run it finishes every script, stops the server within
a bound, re-raises what handlers raised, and audits leaks. Everything hypothesis
draws is drawn in the test's thread: fault decisions come from a drawn seed, so
that the server's threads never draw.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from sockshock._clients import ClientScript, HalfClose, Read, ScriptRun
from sockshock._faults import FaultModel, FaultPlan
from sockshock._harness import ClockArg, LeakAudit, ServerHandle, serving
from sockshock._strategies._strategies import client_scripts, fault_plans
from sockshock._util import FaultNeverFired, InvalidArgument

__all__ = ["ServerMachine"]


class ServerMachine(RuleBasedStateMachine):
    """Fuzz a live server with concurrent scripted clients.

    Subclass it and set the class attributes; add invariants with hypothesis'
    ``@invariant()`` or override :meth:`check_client`; run it as a test with
    ``TestMyServer = MyMachine.TestCase`` (``MyMachine.TestCase.settings =
    settings(max_examples=..., stateful_step_count=...)``).

    Attributes:
        server_class: what ``serving()`` takes: a class (sockshock's, the standard
            library's, ``http.server.ThreadingHTTPServer``...) or a name.
        handler_class: the request handler class (``None``: the one the server
            class's constructor takes by default).
        server_attrs: attributes for ``serving()`` (``{"daemon_threads": True}``).
        server_kwargs: keyword arguments of the server's constructor.
        faults: ``None``; a list of fault models and model classes (parameters and
            seed drawn); or a strategy of seeded plans
            (``fault_plans(..., seeded=True)``).
        clock: ``"virtual"`` (default: injected delays cost no time) or ``"real"``.
        scripts: a strategy of :class:`~sockshock.scripts.ClientScript`; default
            :func:`client_scripts` with 20 ms pauses at most and a 1 s read bound.
        max_clients: how many clients may be connected at once.
        stop_within: the bound, in seconds, on stopping the server at the end of a
            run (x2 + 0.1 s for a noisy machine, as ``assert_stops_within()``).
        audit: check that the run left no threads, descriptors, children or socket
            files behind.
        expect_errors: exception classes handlers may raise (kept in
            ``srv.errors``, not re-raised); default ``ConnectionError``: what a
            client that resets or goes away mid-reply makes a handler raise.
    """

    server_class: ClassVar[Any] = "ThreadingTCPServer"
    handler_class: ClassVar[Any] = None
    server_attrs: ClassVar[dict[str, Any]] = {}
    server_kwargs: ClassVar[dict[str, Any] | None] = None
    faults: ClassVar[Any] = None
    clock: ClassVar[ClockArg] = "virtual"
    scripts: ClassVar[st.SearchStrategy[ClientScript] | None] = None
    max_clients: ClassVar[int] = 4
    stop_within: ClassVar[float] = 2.0
    audit: ClassVar[bool] = True
    expect_errors: ClassVar[type[BaseException] | tuple[type[BaseException], ...]] = (
        ConnectionError,
    )

    def __init__(self) -> None:
        super().__init__()
        self.leak_audit = LeakAudit() if self.audit else None
        self.stack = contextlib.ExitStack()
        self.srv: ServerHandle[Any] | None = None
        #: Clients whose scripts are under way, and those that finished.
        self.clients: list[ScriptRun] = []
        self.finished: list[ScriptRun] = []

    # -- what a run draws ----------------------------------------------------------

    def _plan_strategy(self) -> st.SearchStrategy[FaultPlan] | None:
        faults = self.faults
        if faults is None:
            return None
        if isinstance(faults, st.SearchStrategy):
            return faults
        if isinstance(faults, Sequence) and not isinstance(faults, (str, bytes)):
            if all(isinstance(m, FaultModel) for m in faults):
                return st.integers(0, 2**32 - 1).map(lambda seed: FaultPlan(*faults, seed=seed))
            return fault_plans(
                models=list(faults), min_models=1, max_models=len(faults), seeded=True
            )
        raise InvalidArgument(
            f"expected None, a list of fault models or a strategy of plans but "
            f"got faults={faults!r} (from {type(self).__name__})"
        )

    def _scripts(self) -> st.SearchStrategy[ClientScript]:
        return (
            self.scripts
            if self.scripts is not None
            else client_scripts(max_pause=0.02, timeout=1.0)
        )

    # -- rules ---------------------------------------------------------------------

    @initialize(data=st.data())
    def start_server(self, data: st.DataObject) -> None:
        """Start the server, with a drawn fault plan."""
        strategy = self._plan_strategy()
        plan = None if strategy is None else data.draw(strategy, label="faults")
        if plan is not None and (plan._shared_rng or plan._model_rngs) is not None:
            raise InvalidArgument(
                f"{type(self).__name__}.faults draws plans whose decisions all connections "
                "share, in an order up to the server's threads; use "
                "fault_plans(..., seeded=True): decisions per connection, from a seed"
            )
        self.srv = self.stack.enter_context(
            serving(
                self.server_class,
                self.handler_class,
                faults=plan,
                clock=self.clock if plan is not None else None,
                server_kwargs=self.server_kwargs,
                expect_errors=self.expect_errors,
                shutdown_timeout=max(self.stop_within * 2 + 0.1, 1.0),
                **self.server_attrs,
            )
        )

    @precondition(lambda self: len(self.clients) < self.max_clients)
    @rule(data=st.data())
    def open_client(self, data: st.DataObject) -> None:
        """Connect a client that will follow a drawn script."""
        assert self.srv is not None
        script = data.draw(self._scripts(), label="script")
        self.clients.append(ScriptRun(script, self.srv.connect(timeout=script.timeout)))

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data())
    def step_client(self, data: st.DataObject) -> None:
        """One step of one connected client's script."""
        index = data.draw(st.integers(0, len(self.clients) - 1), label="client")
        run = self.clients[index]
        run.step()
        if run.done:
            self._finish(self.clients.pop(index))

    def _finish(self, run: ScriptRun) -> None:
        run.close()
        self.finished.append(run)
        self.check_client(run)

    # -- what is checked -----------------------------------------------------------

    def expected_reply(self, request: bytes) -> bytes | None:
        """The complete reply to ``request``, or ``None`` not to compare replies
        (the default).

        Args:
            request: what a client sent, whole.

        Returns:
            The bytes the server must answer with, or ``None``.
        """
        return None

    def check_reply(self, request: bytes, reply: bytes) -> None:
        """Every complete request gets a complete reply: called for each client that
        sent its request, half-closed and read to end of file, with what it sent and
        got. By default, ``reply`` must be :meth:`expected_reply` (unless that is
        ``None``). Override to check replies you cannot spell out.

        Args:
            request: what the client sent.
            reply: everything it read until end of file.
        """
        expected = self.expected_reply(request)
        if expected is not None:
            assert reply == expected, (
                f"a client sent {request!r} and half-closed; it got "
                f"{reply!r} instead of {expected!r}"
            )

    def check_client(self, run: ScriptRun) -> None:
        """Called when a client's script has ended; by default, for a client that
        sent its request, half-closed and read to end of file (as
        :func:`client_scripts`' ``"half_close"`` ending does), :meth:`check_reply`.

        Args:
            run: the client's finished ScriptRun (``.script``, ``.results``,
                ``.received``).
        """
        steps = run.script.steps
        if (
            len(steps) >= 2
            and isinstance(steps[-2], HalfClose)
            and steps[-1] == Read()
            and run.results[-1].outcome != "closed"
        ):
            self.check_reply(run.script.request, run.received)

    def teardown(self) -> None:
        """Finish every script, stop the server within the bound, re-raise handler
        errors, audit leaks."""
        with warnings.catch_warnings(), self.stack:  # serving() notes or raises handler errors
            # A drawn model whose scope missed every operation is no mistake here.
            warnings.simplefilter("ignore", FaultNeverFired)
            try:
                while self.clients:  # in the order they connected
                    run = self.clients.pop(0)
                    run.run()
                    self._finish(run)
                if self.srv is not None:
                    self.srv.assert_stops_within(self.stop_within)
            finally:
                for run in self.clients:
                    run.close()
        if self.leak_audit is not None:
            self.leak_audit.check()

"""ServerMachine: stateful fuzzing of a live server (public: ``sockshock.strategies``).

A ``hypothesis.stateful`` machine that starts a server with ``serving()`` (any
class, with faults), opens clients that follow drawn client scripts, and carries
their steps out one at a time, interleaved as hypothesis chooses -- several
clients are connected at once. When a client's script ends, the machine checks
its reply; at the end of a run it finishes every script, stops the server within
a bound, re-raises what handlers raised, and audits leaks. Everything hypothesis
draws is drawn in the test's thread: fault decisions come from a drawn seed, so
that the server's threads never draw.

No failure is lost. Hypothesis aborts an example whose data runs out (``StopTest``)
and runs ``teardown()`` all the same; a check that fails there -- the teardown
finishes every script and checks it -- would be taken for part of the abort and
dropped. The machine keeps it instead: ``MyMachine.TestCase`` raises it when the
run ends (after hypothesis' own failure, if any, as a note on it), and a machine
run any other way (``run_state_machine_as_test``) fails at once with
:class:`AbortedExampleFailure`.
"""

from __future__ import annotations

import contextlib
import sys
import unittest
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.errors import StopTest
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from sockshock._clients import ClientScript, HalfClose, Read, ScriptRun, abbreviate
from sockshock._faults import FaultModel, FaultPlan
from sockshock._harness import ClockArg, LeakAudit, ServerHandle, add_note, serving
from sockshock._strategies._strategies import client_scripts, fault_plans
from sockshock._util import FaultNeverFired, InvalidArgument, exported_by

__all__ = ["AbortedExampleFailure", "ServerMachine"]


class AbortedExampleFailure(BaseException):
    """A check failed in the teardown of an example hypothesis had aborted, in a
    machine run without ``MyMachine.TestCase`` (which reports the check's own
    error at the end of the run instead). A ``BaseException``: hypothesis takes
    any ``Exception`` raised while it aborts an example for part of the abort.
    The check's error is the ``__cause__``."""


#: While ``MyMachine.TestCase`` runs: the failures kept from aborted examples.
_KEEPERS: list[list[BaseException]] = []
#: Examples (``ServerMachine._key()``) that failed in this process: one that
#: passes later is retried (``ServerMachine.retries``).
_FAILED: dict[str, None] = {}
_FAILED_KEPT = 1000


def _remember_failure(key: str) -> None:
    _FAILED[key] = None
    while len(_FAILED) > _FAILED_KEPT:
        del _FAILED[next(iter(_FAILED))]


def _aborting() -> bool:
    """Whether hypothesis is aborting the example: ``teardown()`` runs in the
    ``finally`` of its state machine runner while a ``StopTest`` propagates."""
    return isinstance(sys.exc_info()[1], StopTest)


class _KeepingTestCase:
    """``MyMachine.TestCase``: hypothesis' test case, which also reports the
    failures kept from aborted examples when the run ends."""

    def __get__(self, obj: object, owner: type[Any] | None = None) -> type[unittest.TestCase]:
        cls = type(obj) if obj is not None else owner
        assert cls is not None
        case: type[unittest.TestCase] | None = cls.__dict__.get("_sockshock_test_case")
        if case is not None:
            return case
        base: type[unittest.TestCase] = RuleBasedStateMachine.__dict__["TestCase"].__get__(
            None, cls
        )

        class KeepingTestCase(base):  # type: ignore[valid-type,misc]
            def runTest(self) -> None:
                kept: list[BaseException] = []
                _KEEPERS.append(kept)
                try:
                    base.runTest(self)  # type: ignore[attr-defined]
                except BaseException as exc:
                    if kept:
                        add_note(exc, _kept_note(kept, "also, "))
                    raise
                finally:
                    _KEEPERS.remove(kept)
                if kept:
                    first = kept[0]
                    if len(kept) > 1:
                        add_note(first, _kept_note(kept[1:], "and "))
                    raise first

        KeepingTestCase.__name__ = base.__name__
        KeepingTestCase.__qualname__ = base.__qualname__
        KeepingTestCase.__module__ = cls.__module__
        type.__setattr__(cls, "_sockshock_test_case", KeepingTestCase)
        return KeepingTestCase

    def __set__(self, obj: object, value: object) -> None:
        raise AttributeError("Cannot set TestCase")


def _kept_note(kept: list[BaseException], prefix: str) -> str:
    count = "1 check" if len(kept) == 1 else f"{len(kept)} checks"
    return (
        f"{prefix}{count} failed in examples hypothesis aborted (kept by ServerMachine); "
        f"the first: {abbreviate(repr(kept[0]))}"
    )


@exported_by("sockshock.strategies")
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
        retries: how many times to run an example again -- its clients, their
            scripts and steps, against a fresh server with the same plan -- when
            it passes although it failed before in this run (hypothesis replaying
            a failure), before letting hypothesis call it flaky: a failure that
            depends on how threads interleave then replays, and shrinks.
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
    retries: ClassVar[int] = 0

    TestCase = _KeepingTestCase()  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.leak_audit = LeakAudit() if self.audit else None
        self.stack = contextlib.ExitStack()
        self.srv: ServerHandle[Any] | None = None
        #: Clients whose scripts are under way, and those that finished.
        self.clients: list[ScriptRun] = []
        self.finished: list[ScriptRun] = []
        self.plan: FaultPlan | None = None
        self._actions: list[tuple[str, Any]] = []  # what the rules did, for retries

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
        if plan is not None and not plan.seeded:
            raise InvalidArgument(
                f"{type(self).__name__}.faults draws plans whose decisions all connections "
                "share, in an order up to the server's threads; use "
                "fault_plans(..., seeded=True): decisions per connection, from a seed"
            )
        self._start(plan)

    def _start(self, plan: FaultPlan | None) -> None:
        self.plan = plan
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
        self._open(data.draw(self._scripts(), label="script"))

    def _open(self, script: ClientScript) -> None:
        assert self.srv is not None
        self._actions.append(("_open", script))
        self.clients.append(ScriptRun(script, self.srv.connect(timeout=script.timeout)))

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data())
    def step_client(self, data: st.DataObject) -> None:
        """One step of one connected client's script."""
        self._step(data.draw(st.integers(0, len(self.clients) - 1), label="client"))

    def _step(self, index: int) -> None:
        self._actions.append(("_step", index))
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
        script = run.script
        steps = script.steps
        if (
            script.complete
            and len(steps) >= 2
            and isinstance(steps[-2], HalfClose)
            and steps[-1] == Read()
            and run.results[-1].outcome != "closed"
        ):
            self.check_reply(script.request, run.received)

    def teardown(self) -> None:
        """Finish every script, stop the server within the bound, re-raise handler
        errors, audit leaks. In an example hypothesis is aborting, a failure here is
        kept and reported when the run ends (see the module's docstring); an
        example that failed before and passes now is run again (``retries``)."""
        if not _aborting():
            failing = sys.exc_info()[1] is not None  # a rule or an invariant failed
            key = self._key()
            try:
                self._teardown()
            except Exception:
                _remember_failure(key)
                raise
            if failing:
                _remember_failure(key)
            elif self.retries and key in _FAILED:
                self._retry()
            return
        try:
            self._teardown()
        except Exception as exc:
            if isinstance(exc.__context__, StopTest):  # hypothesis' abort, not the failure's
                exc.__context__ = None
            add_note(
                exc,
                "ServerMachine: this check failed in the teardown of an example hypothesis "
                "had aborted (its data ran out), so hypothesis could neither shrink nor "
                "replay it; what the clients did:\n" + self._describe_clients(),
            )
            if not _KEEPERS:
                raise AbortedExampleFailure(
                    f"a check failed in an example hypothesis aborted: {exc!r}; run the "
                    f"machine as {type(self).__name__}.TestCase to have it reported with "
                    "the rest of the run"
                ) from exc
            _KEEPERS[-1].append(exc)

    def _key(self) -> str:
        """What identifies this example's run: the class, the plan, the actions."""
        return repr((type(self).__qualname__, self.plan, self._actions))

    def _retry(self) -> None:
        """Run this example's actions again, up to ``retries`` times, each against a
        fresh server with the same plan; raise the first failure."""
        for attempt in range(1, self.retries + 1):
            again = type(self)()
            try:
                again._start(None if self.plan is None else self.plan.replay())
                for name, argument in self._actions:
                    getattr(again, name)(argument)
                again._teardown()
            except Exception as exc:
                add_note(
                    exc,
                    f"ServerMachine: this example failed before in this run, passed when "
                    f"hypothesis replayed it, and failed again on retry {attempt} of "
                    f"{self.retries} ({type(self).__name__}.retries): it depends on how "
                    "threads interleave",
                )
                raise
            finally:
                again.stack.close()

    def _describe_clients(self) -> str:
        """Each client's script and what its steps met, for a failure report."""
        lines = []
        for i, run in enumerate([*self.finished, *self.clients]):
            met = ", ".join(
                r.outcome + (f" {abbreviate(r.data)}" if r.data else "") for r in run.results
            )
            lines.append(f"  client {i}: {run.script!r} -> [{met}]")
        return "\n".join(lines) or "  (no client)"

    def _teardown(self) -> None:
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

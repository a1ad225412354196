"""Running the checks: servers x checks, each with its own fault seed, the
shutdown bound and a leak audit, and an outcome -- ``pass``, ``FAIL``,
``expected`` or ``skip`` -- with the failure in full (:class:`CheckResult`).

``sockshock run`` prints these as progress lines, a matrix and failure details;
:func:`check_server` (public: ``sockshock.checks``) runs them against one server
class from Python and raises ``AssertionError`` naming every failure.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sockshock._checks._checks import (
    CHECKS,
    SERVED,
    Check,
    Expected,
    Target,
    Unsupported,
    Verdict,
    name_of,
    with_reply,
)
from sockshock._checks._details import ErrorDetail, describe_error
from sockshock._checks._replies import Expectation
from sockshock._harness import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    HandlerClass,
    LeakAudit,
    LeakReport,
    Server,
    ServerHandle,
    resolve_spec,
)
from sockshock._stdlib import ServerKind, kind_of
from sockshock._util import InvalidArgument, check_seed, check_type, exported_by, format_address

__all__ = [
    "CheckResult",
    "check_seed_for",
    "check_server",
    "leak_lines",
    "leaks_json",
    "planned",
    "run_check",
    "run_matrix",
    "session_seed",
]

# Python 3.12+ warns that a forking server forks a multi-threaded process (as
# CPython's own test_socketserver does); sockshock's forking path re-initialises
# its locks in the child. Not the server's fault: not a note.
_FORK_WARNING = re.compile(r"This process .* is multi-threaded, use of fork")


@dataclass
class CheckResult:
    """How one check went on one server class.

    Attributes:
        server: the server class's name.
        check: the check's name (its column in ``sockshock run``'s matrix).
        outcome: ``"pass"``, ``"FAIL"``, ``"expected"`` (a known property, such as
            a synchronous server starved by a slow client) or ``"skip"`` (the
            handler fails on this server even without faults).
        seconds: how long the check took, its server's start and stop included.
        reason: for anything but a pass, why, in one line.
        seed: the check's fault seed (``sockshock run --seed N`` runs every check
            with seed N: the same faults again).
        error: for a failure, the exception in full: type, message, where it was
            raised, notes, traceback.
        leaks: what the check left behind -- threads, descriptors (sockets with
            their addresses), child processes, socket files --; empty when
            nothing, None when not audited (a failed check's mess is not judged).
        notes: warnings the check raised, such as a fault that never fired.
        fault_log: for a failure, the faults its servers injected, connection by
            connection (``FaultPlan.describe()``).
    """

    server: str
    check: str
    outcome: str
    seconds: float = 0.0
    reason: str = ""
    seed: int | None = None
    error: ErrorDetail | None = None
    leaks: LeakReport | None = None
    notes: list[str] = field(default_factory=list)
    fault_log: str = ""

    @property
    def leaked(self) -> bool:
        """Whether the check left something behind."""
        return bool(self.leaks)

    def failure_lines(self) -> list[str]:
        """The failure's details beneath its one-line reason (none for a pass)."""
        return [] if self.error is None else self.error.lines()

    def to_json(self) -> dict[str, Any]:
        """This result as ``--json`` writes it."""
        return {
            "server": self.server,
            "check": self.check,
            "outcome": self.outcome,
            "seconds": self.seconds,
            "reason": self.reason,
            "seed": self.seed,
            "error": None if self.error is None else self.error.to_json(),
            "leaks": None if self.leaks is None else leaks_json(self.leaks),
            "notes": list(self.notes),
            "fault_log": self.fault_log,
        }


def leaks_json(report: LeakReport) -> dict[str, list[str]]:
    """A leak report as ``--json`` writes it."""
    return {
        "threads": list(report.threads),
        "descriptors": list(report.descriptors),
        "children": list(report.children),
        "socket_files": list(report.socket_files),
    }


def leak_lines(report: LeakReport) -> list[str]:
    """A leak report as lines, without its ``leaked:`` heading: ``1 descriptors:``
    and, indented, each descriptor."""
    return [line.removeprefix("  ") for line in str(report).splitlines()[1:]]


def session_seed() -> int:
    """A random seed that the checks' seeds derive from."""
    return random.SystemRandom().randrange(2**32)


def check_seed_for(session: int, server: str, check: str) -> int:
    """A check's fault seed: derived from the session seed and the check's place
    (as the pytest plugin derives a test's from the session seed and node id)."""
    digest = hashlib.sha256(f"{session}/{server}/{check}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def run_check(check: Check, kind: ServerKind, target: Target, *, seed: int) -> CheckResult:
    """Run one check, audited; its outcome."""
    expected_failure = check.expected_failure(kind)
    result = CheckResult(kind.name, check.name, "pass", seed=seed if check.faults else None)
    leak_audit = LeakAudit()
    started = time.monotonic()
    served: list[ServerHandle[Any]] = []
    token = SERVED.set(served)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                check.function(target, seed=seed)
            except Unsupported as exc:
                result.outcome, result.reason = "skip", str(exc)
            except Expected as exc:
                result.outcome, result.reason = "expected", str(exc)
            except Verdict as exc:
                if expected_failure is not None:
                    result.outcome, result.reason = "expected", expected_failure
                else:
                    result.outcome = "FAIL"
                    result.error = describe_error(exc, name=name_of(exc), located=False)
            except Exception as exc:  # the handler's error, a client's, a slow stop
                result.outcome, result.error = "FAIL", describe_error(exc, name=name_of(exc))
            else:
                if expected_failure is not None:
                    result.outcome = "FAIL"
                    result.reason = f"passed, though it was expected not to: {expected_failure}"
    finally:
        SERVED.reset(token)
    result.seconds = time.monotonic() - started
    if result.error is not None:
        result.reason = result.error.headline
    if result.outcome == "FAIL":
        result.fault_log = "\n".join(
            f"{type(h.server).__name__} at {format_address(h.address)}: {h.plan.describe(limit=40)}"
            for h in served
            if h.layer is not None
        )
    result.notes = [
        str(w.message)
        for w in caught
        if not (issubclass(w.category, DeprecationWarning) and _FORK_WARNING.search(str(w.message)))
    ]
    if result.outcome != "FAIL":  # a failed check's mess is not judged
        result.leaks = leak_audit.report()
    return result


def planned(servers: list[ServerKind]) -> list[tuple[ServerKind, Check]]:
    """Every (server, check) pair that applies, in the order they run."""
    return [(kind, check) for kind in servers for check in CHECKS if check.applies_to(kind)]


def run_matrix(
    servers: list[ServerKind],
    target_for: Callable[[ServerKind], Target],
    *,
    seed: int | None = None,
    session: int | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Every check that applies to each server class, server by server.

    Args:
        servers: the server classes.
        target_for: the :class:`Target` (handler, request, expectation) of each.
        seed: every check's fault seed (default: each derives its own from
            ``session``).
        session: the session seed (default: random).
        on_result: called with each result as it comes (progress).
    """
    session = session_seed() if session is None else session
    results: list[CheckResult] = []
    for kind in servers:
        checks = [check for check in CHECKS if check.applies_to(kind)]
        target = target_for(kind)
        try:
            target = with_reply(target)  # also: does the handler support this server?
            unsupported = None
        except Unsupported as exc:
            unsupported = str(exc)
        for check in checks:
            check_seed = (
                seed if seed is not None else check_seed_for(session, kind.name, check.name)
            )
            if unsupported is not None:
                result = CheckResult(kind.name, check.name, "skip", reason=unsupported)
            else:
                result = run_check(check, kind, target, seed=check_seed)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _expectation(expect: Any) -> Expectation:
    if expect is None:
        return Expectation()
    if isinstance(expect, (bytes, bytearray)):
        if not expect:
            raise InvalidArgument("expect=b'' must be a non-empty reply (from check_server())")
        return Expectation("exact", bytes(expect))
    if isinstance(expect, re.Pattern) and isinstance(expect.pattern, bytes):
        return Expectation("regex", expect.pattern, expect.flags)
    raise InvalidArgument(
        f"expected None, bytes or a compiled bytes pattern but got expect={expect!r} "
        f"(type={type(expect).__name__}) (from check_server())"
    )


@exported_by("sockshock.checks")
def check_server(
    server_class: type[Server] | str,
    handler_class: HandlerClass | str | None = None,
    *,
    request: bytes = b"ping\n",
    expect: bytes | re.Pattern[bytes] | None = None,
    seed: int | None = None,
) -> list[CheckResult]:
    """Run sockshock's built-in robustness checks against a server class: an echo
    round trip; partial reads; partial writes; a slow client while another is
    served; lost datagrams with client retries; an abrupt shutdown mid-request --
    each under its faults, with the shutdown bound and a leak audit. The checks
    ``sockshock run`` runs, from Python: in a test of yours, say.

    Args:
        server_class: a server class (sockshock's, the standard library's, one
            built on either), its name in ``sockshock.socketserver`` or
            ``"module:attr"``.
        handler_class: the request handler class (default: the one the class's
            constructor defaults to).
        request: what each client sends (a stream client then ends its side).
        expect: the reply: ``bytes`` (exactly these) or a compiled bytes pattern
            (one it matches); default: the handler's own reply to the request
            without faults, with runs of digits allowed to differ.
        seed: every check's fault seed (default: random, shown in the failure).

    Returns:
        A result per check, in the matrix's order: ``.check`` (its name),
        ``.outcome`` (``"pass"``, or ``"expected"`` for a known property such as a
        synchronous server starved by a slow client), ``.seconds``, ``.seed``,
        ``.leaks`` (what it left behind: nothing), ``.notes``.

    Raises:
        InvalidArgument: for a bad argument, before anything runs.
        AssertionError: naming every check that failed or leaked, with where the
            failure was raised and the seed that replays it -- and if the
            handler fails on this server even without faults.
    """
    source = "check_server()"
    check_type("request", request, (bytes, bytearray), source=source)
    if not request:
        raise InvalidArgument(f"request=b'' must be a non-empty request (from {source})")
    expectation = _expectation(expect)
    if seed is not None:
        check_seed(seed, source=source)
    spec = resolve_spec(  # the one resolver: every argument checked, nothing started
        server_class,
        handler_class,
        address=None,
        faults=None,
        clock=None,
        seed=None,
        shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT,
        poll_interval=DEFAULT_POLL_INTERVAL,
        server_attrs={},
    )
    target = Target(spec.server_class, spec.handler_class, bytes(request), expectation)
    session = session_seed()
    results = run_matrix(
        [kind_of(spec.server_class)], lambda kind: target, seed=seed, session=session
    )
    problems = [r for r in results if r.outcome in ("FAIL", "skip") or r.leaked]
    if problems:
        raise AssertionError(_failure_message(problems, len(results)))
    return results


def _failure_message(problems: list[CheckResult], total: int) -> str:
    lines = [f"{len(problems)} of {total} checks failed:"]
    for r in problems:
        if r.outcome == "FAIL":
            again = "" if r.seed is None else f" (fault seed {r.seed}: seed={r.seed} re-runs it)"
            lines.append(f"FAIL {r.server} x {r.check}: {r.reason}{again}")
            lines.extend("    " + line for line in r.failure_lines())
        elif r.outcome == "skip":
            lines.append(f"{r.server} x {r.check}: {r.reason}")
        if r.leaks:
            lines.append(f"FAIL {r.server} x {r.check}: leaked {r.leaks.summary()}")
            lines.extend("    " + line for line in leak_lines(r.leaks))
    return "\n".join(lines)

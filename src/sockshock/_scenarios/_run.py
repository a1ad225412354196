"""Running a scenario and judging what it expects.

In this process: the server is served with the scenario's faults (through the
fault layer), its misbehaving clients run in the background, well-behaved load
clients send their requests meanwhile, and then the server is stopped against the
scenario's bound; the leak audit watches the whole run. Against a server in
another process (``target=``), faults go through the fault proxy instead, and
only what can be seen from outside is judged.
"""

from __future__ import annotations

import contextlib
import errno
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sockshock._clients import connect, request
from sockshock._faults import check_fit
from sockshock._harness import (
    SERVING_PARAMETERS,
    HandlerClass,
    LeakAudit,
    LeakReport,
    Server,
    choose_handler,
    import_handler_class,
    resolve_server_class,
    serving,
    split_server_attrs,
)
from sockshock._scenarios._model import Scenario
from sockshock._scenarios._report import Mistake, Report
from sockshock._util import (
    FaultNeverFired,
    InvalidArgument,
    ShutdownTimeout,
    ShutdownTooSlow,
    exported_by,
)

__all__ = [
    "CLIENTS_CONNECT_WAIT",
    "Check",
    "Resolved",
    "ScenarioResult",
    "check_transport",
    "resolve",
    "resolve_into",
    "run",
    "run_against",
]


@contextlib.contextmanager
def _blame(where: str | None) -> Iterator[None]:
    """A configuration error raised in the block, as ``where: message``."""
    try:
        yield
    except InvalidArgument as exc:
        if where is None:
            raise
        raise type(exc)(f"{where}: {exc}") from None


def _report(scenario: Scenario, report: Report | None) -> Report:
    """``report``, or a new one for ``scenario`` (its file's, its name)."""
    if report is None:
        report = Report(scenario.path)
        report.scenario = scenario.name
    return report


def _index(report: Report, kind: str, position: int) -> int:
    """The file's index of the scenario's ``kind`` entry at ``position``."""
    kept = report.indices.get(kind)
    return kept[position] if kept is not None and position < len(kept) else position


def check_transport(
    scenario: Scenario,
    transport: str,
    *,
    tls: bool,
    server: str,
    proxied: bool = False,
    report: Report | None = None,
) -> None:
    """The scenario's faults and clients can act on a ``transport`` server (named by
    ``server``: ``"UDPServer"``, ``"--target='127.0.0.1:53' --udp"``), TLS included;
    otherwise an error at the line of each key that cannot -- into ``report`` if
    given, else raised together."""
    given = report
    report = _report(scenario, report)
    if tls and transport == "datagram":
        report.add(
            InvalidArgument(
                f"{scenario.where('server', 'tls') or scenario.name}: tls=true: "
                f"{server} is a datagram server; TLS runs over stream connections"
            ),
            ("server", "tls"),
        )
    for position, model in enumerate(scenario.faults):
        index = _index(report, "faults", position)
        blamed: list[str] = []  # the key check_fit blames: "model" or "layer"

        def where(_: int, __: Any, key: str, index: int = index, blamed: list[str] = blamed) -> str:
            blamed.append(key)
            return scenario.where("faults", index, key) or scenario.name

        with report.checking("faults", index):
            try:
                check_fit(
                    [model],
                    transport=transport,
                    tls=tls,
                    proxied=proxied,
                    target=server,
                    where=where,
                    fix="leave it out, or serve a server it can act on (tls = true in "
                    "[server] for layer='plaintext')",
                )
            except InvalidArgument as exc:
                raise Mistake(str(exc), ("faults", index, *blamed[-1:])) from None
    for position, client in enumerate(scenario.clients):
        index = _index(report, "clients", position)
        datagram = client.kind == "datagram_burst"
        if datagram != (transport == "datagram"):
            report.add(
                InvalidArgument(
                    f"{scenario.where('clients', index, 'kind') or scenario.name}: "
                    f"kind={client.kind!r} is a {'datagram' if datagram else 'stream'} client, "
                    f"but {server} is a {transport} server; leave it out or serve a server of "
                    "the other kind"
                ),
                ("clients", index, "kind"),
            )
    if given is None:
        report.raise_if_any()


@dataclass(frozen=True)
class Resolved:
    """What :func:`run` serves for a scenario, checked (nothing started)."""

    server_class: type[Any]
    handler: Any  # None: the constructor's own (its default, or the class picks it)
    transport: str


def resolve(
    scenario: Scenario,
    *,
    server_class: Any = None,
    handler: Any = None,
    server_source: str = "server_class",
    handler_source: str = "handler",
) -> Resolved:
    """Everything :func:`run` needs, resolved and checked as ``serving()`` would --
    the server class, the handler, TLS, the server attributes, the faults and the
    clients against the server's transport -- without starting anything.
    ``server_class``/``handler`` override the scenario's ``[server]`` (their errors
    name ``server_source``/``handler_source``); errors for the scenario's own values
    start with the ``file:line`` of the key.

    Raises:
        InvalidArgument: every mistake, together (see ``_report``).
    """
    report = _report(scenario, None)
    resolved = resolve_into(
        report,
        scenario,
        server_class=server_class,
        handler=handler,
        server_source=server_source,
        handler_source=handler_source,
    )
    report.raise_if_any()
    assert resolved is not None  # nothing could not be resolved: no problem
    return resolved


def resolve_into(
    report: Report,
    scenario: Scenario,
    *,
    server_class: Any = None,
    handler: Any = None,
    server_source: str = "server_class",
    handler_source: str = "handler",
) -> Resolved | None:
    """:func:`resolve`, every problem into ``report`` (a check that depends on a key
    with a problem there already is skipped); None if something could not be
    resolved."""
    section = scenario.server
    overrides = (server_class is not None, handler is not None)
    cls = chosen = None
    class_key = () if overrides[0] else ("server", "class")
    if overrides[0] or not report.failed("server", "class"):
        with (
            report.checking(*class_key),
            _blame(None if overrides[0] else scenario.where("server", "class")),
        ):
            cls = resolve_server_class(
                server_class if overrides[0] else section.server_class,
                source=server_source if overrides[0] else "class",
            )
    chosen = handler if overrides[1] else section.handler
    handler_where = None if overrides[1] else scenario.where("server", "handler")
    handler_ok = overrides[1] or not report.failed("server", "handler")
    if isinstance(chosen, str) and handler_ok:
        handler_key = () if overrides[1] else ("server", "handler")
        with report.checking(*handler_key), _blame(handler_where):
            chosen = import_handler_class(
                chosen, source=handler_source if overrides[1] else "handler"
            )
        handler_ok = not isinstance(chosen, str)
    if cls is None or not handler_ok:
        return None
    # A pair that does not fit: blamed on the handler's line if the file gave it, else
    # on the class's line if the file gave that (the default handler always fits).
    class_where = None if overrides[0] else scenario.where("server", "class")
    choice = None
    blamed = ("server", "handler") if not overrides[1] else class_key
    with report.checking(*blamed), _blame(handler_where if not overrides[1] else class_where):
        choice = choose_handler(
            cls,
            chosen,
            source=handler_source if overrides[1] else "handler",
            demo=True,
            where="the scenario" if not overrides[1] else "the command line",
        )
    if not report.failed("server", "attrs"):
        with report.checking("server", "attrs"), _blame(scenario.where("server", "attrs")):
            split_server_attrs(
                cls,
                section.attrs,
                adopting=False,
                source="[server] attrs",
                parameters=SERVING_PARAMETERS,
            )
    if choice is not None and not report.failed("server", "tls"):
        origin = f" (from {server_source})" if overrides[0] else ""
        check_transport(
            scenario,
            choice.transport,
            tls=section.tls,
            server=f"{cls.__name__}{origin}",
            report=report,
        )
    if choice is None:
        return None
    return Resolved(cls, choice.handler_class, choice.transport)


@dataclass
class Check:
    """One expectation and how it went."""

    name: str
    passed: bool | None  # None: not judged (not visible from outside the target)
    detail: str = ""
    #: What lies behind the detail, for reports in full: the handler errors (or the
    #: stop's error), and what leaked.
    errors: list[BaseException] = field(default_factory=list)
    leaks: LeakReport | None = None


@dataclass
class ScenarioResult:
    """How a scenario went against one server."""

    scenario: str
    server: str
    seed: int
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    log: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. a model that never fired

    @property
    def passed(self) -> bool:
        return all(check.passed is not False for check in self.checks)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.passed is False]


#: How often a load client sends its datagram again while no reply came (a lost one).
RESEND = 0.05

Opener = Callable[[float], socket.socket]
"""Opens one load client (the one client: ``srv.connect()``, or ``connect()`` to the
proxy), connected within the given seconds."""


#: Seconds of silence that end a stream reply the target did not end by closing the
#: connection (``run_against``): the reply without faults ends after this long
#: without a byte; a reply under faults only once it is as long as that one.
REPLY_IDLE = 0.2


@dataclass(frozen=True)
class Reply:
    """Where a stream reply ends: at a line's end (``until``: a reply line answers,
    in this process), or -- ``until`` None -- when the server closes the connection
    or, once the reply has ``at_least`` bytes, stays quiet for :data:`REPLY_IDLE`
    seconds."""

    until: bytes | None = b"\n"
    at_least: int = 1


def _ask(open_client: Opener, request_bytes: bytes, timeout: float, reply: Reply) -> bytes:
    """One well-behaved client: its request, and the reply within ``timeout`` (a lost
    datagram is sent again); raises what the connection raised."""
    deadline = time.monotonic() + timeout
    with open_client(timeout) as client:
        return request(
            client,
            request_bytes,
            until=reply.until,
            resend=RESEND,
            timeout=max(0.001, deadline - time.monotonic()),
            idle=REPLY_IDLE if reply.until is None else None,
            at_least=reply.at_least,
        )


def _exchange(
    open_client: Opener, request_bytes: bytes, timeout: float, reply: Reply = Reply()
) -> bytes | None:
    """:func:`_ask`, None if no reply came."""
    try:
        return _ask(open_client, request_bytes, timeout, reply) or None
    except (OSError, ValueError):
        return None


#: How a reply is judged: (reply, the reply without faults) -> None if as
#: expected, else why not (``sockshock run``'s ``Expectation.judge``).
Judge = Callable[[bytes, bytes], "str | None"]


def _load(
    scenario: Scenario,
    open_client: Opener,
    *,
    request_bytes: bytes | None = None,
    judge: Judge | None = None,
    baseline: bytes = b"",
) -> tuple[int, int, str | None]:
    """(answered, sent, why the first wrong reply was wrong) for the scenario's
    well-behaved clients; with ``judge``, a reply counts only if it is as expected."""
    load = scenario.load
    sending = load.request if request_bytes is None else request_bytes
    # A judged reply is read whole (see Reply), as long as the reply without faults.
    rule = Reply() if judge is None else Reply(until=None, at_least=len(baseline))
    answered = failed = 0
    wrong: list[str] = []
    lock = threading.Lock()
    queue = list(range(load.clients))
    # Once more requests went unanswered than the expectation allows, the verdict
    # is in: the rest are not sent (a stuck server costs one timeout, not many).
    affordable = load.clients * (1.0 - scenario.expect.answered)

    def worker() -> None:
        nonlocal answered, failed
        while True:
            with lock:
                if not queue or failed > affordable:
                    return
                queue.pop()
            reply = _exchange(open_client, sending, load.timeout, rule)
            ok = reply is not None
            if reply is not None and judge is not None:
                problem = judge(reply, baseline)
                if problem is not None:
                    ok = False
                    with lock:
                        wrong.append(problem)
            with lock:
                answered += ok
                failed += not ok

    threads = [
        threading.Thread(target=worker, name="sockshock scenario load")
        for _ in range(min(load.concurrency, max(1, load.clients)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(load.timeout * load.clients + 5)
    return answered, load.clients, wrong[0] if wrong else None


#: Seconds the load waits at most for a scenario's misbehaving clients to connect.
CLIENTS_CONNECT_WAIT = 1.0


@contextlib.contextmanager
def _clients(scenario: Scenario, address: Any, transport: str) -> Iterator[None]:
    """The scenario's misbehaving clients, in the background for the block -- which
    starts once they made their connections (at most :data:`CLIENTS_CONNECT_WAIT`
    seconds later): the load comes to a server they already occupy."""
    with contextlib.ExitStack() as stack:
        runs = [
            stack.enter_context(spec.run(address))
            for spec in scenario.clients
            if (spec.kind == "datagram_burst") == (transport == "datagram")
        ]
        for run in runs:
            run.wait_connected(CLIENTS_CONNECT_WAIT)
        yield


def _judge_answered(scenario: Scenario, answered: int, sent: int) -> Check:
    wanted = scenario.expect.answered
    ratio = answered / sent if sent else 1.0
    return Check(
        "answered", ratio >= wanted, f"{answered} of {sent} requests answered (wanted {wanted:.0%})"
    )


def _judge_errors(scenario: Scenario, errors: list[Any]) -> Check:
    allowed = scenario.expect.handler_errors
    names = [type(f.exception).__name__ for f in errors]
    unexpected = (
        names
        if allowed == ()
        else []
        if allowed is None
        else [n for n in names if n not in allowed]
    )
    return Check(
        "handler errors",
        not unexpected,
        "none" if not names else f"{len(names)}: " + ", ".join(sorted(set(names))),
        errors=[f.exception for f in errors],
    )


@exported_by("sockshock.scenarios")
def run(
    scenario: Scenario,
    *,
    server_class: type[Server] | str | None = None,
    handler: HandlerClass | str | None = None,
    seed: int | None = None,
) -> ScenarioResult:
    """Run ``scenario`` against a server in this process (its ``[server]`` unless
    ``server_class``/``handler`` say otherwise) and judge its ``[expect]``.

    Args:
        scenario: a scenario from :func:`load`.
        server_class: the server to run it against instead of its ``[server]``
            (a class, a name in ``sockshock.socketserver`` or ``"module:attr"``).
        handler: the request handler instead of its ``[server]``'s.
        seed: the fault seed instead of the scenario's (default: its own, or random).

    Returns:
        The result: what was answered, how fast the server stopped, the handler
        errors and leaks, each judged against ``[expect]``, with the seed that
        replays it.
    """
    if not isinstance(scenario, Scenario):
        load_it = (
            f"; load it first: sockshock.scenarios.load({scenario!r})"
            if isinstance(scenario, str)
            else ""
        )
        raise InvalidArgument(
            f"expected a Scenario (from sockshock.scenarios.load()) but got "
            f"scenario={scenario!r} (type={type(scenario).__name__}) (from scenarios.run())"
            + load_it
        )
    resolved = resolve(scenario, server_class=server_class, handler=handler)
    cls, handler, transport = resolved.server_class, resolved.handler, resolved.transport
    plan = scenario.plan(seed)
    result = ScenarioResult(scenario.name, cls.__name__, plan.seed)
    started = time.monotonic()
    leak_audit = LeakAudit() if scenario.expect.no_leaks else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FaultNeverFired)
        errors = _serve(scenario, result, cls, handler, plan, transport)
    result.notes[:0] = [str(w.message) for w in caught if issubclass(w.category, FaultNeverFired)]
    result.checks.append(_judge_errors(scenario, errors))
    if leak_audit is not None:
        report = leak_audit.report()
        result.checks.append(
            Check("no leaks", not report, report.summary() if report else "none", leaks=report)
        )
    result.seconds = time.monotonic() - started
    result.log = plan.describe(limit=40)
    return result


def _serve(
    scenario: Scenario,
    result: ScenarioResult,
    cls: type[Any],
    handler: Any,
    plan: Any,
    transport: str,
) -> list[Any]:
    """Serve, run the clients and the load, stop; the handler failures."""
    errors: list[Any] = []
    try:
        with serving(
            cls,
            handler,
            faults=plan,
            tls=scenario.server.tls or None,
            expect_errors=BaseException,
            shutdown_timeout=max(5.0, scenario.expect.stops_within * 4),
            **scenario.server.attrs,
        ) as srv:
            ends = time.monotonic() + scenario.duration
            with _clients(scenario, srv.address, transport):
                answered, sent, _ = _load(
                    scenario, lambda timeout: srv.connect(timeout=timeout, tls=srv.tls)
                )
                time.sleep(max(0.0, ends - time.monotonic()))  # the clients' window
                cutoff = len(srv.errors)  # the misbehaving clients leave now
            result.checks.append(_judge_answered(scenario, answered, sent))
            try:
                seconds = srv.assert_stops_within(scenario.expect.stops_within, tolerance=1.0)
                result.checks.append(Check("stops within", True, f"{seconds:.3f} s"))
            except ShutdownTooSlow as exc:
                result.checks.append(
                    Check("stops within", False, str(exc).splitlines()[0], errors=[exc])
                )
            except InvalidArgument:
                if not srv.wait_stopped(0):
                    raise
                # Its faults stopped it already (an AbruptShutdown): nothing to time.
                result.checks.append(Check("stops within", True, "stopped by itself already"))
            # A handler that finds a misbehaving client gone as it leaves (mid-exchange:
            # a reset or a broken pipe, or not, by microseconds) is not failing; the
            # pytest fixture judges the same way.
            errors = [
                f
                for index, f in enumerate(srv.errors)
                if index < cutoff or not isinstance(f.exception, ConnectionError)
            ]
            left = len(srv.errors) - len(errors)
            if left:
                result.notes.append(
                    f"{left} handler error(s) as the misbehaving clients "
                    "left, at the end (not judged)"
                )
    except ShutdownTimeout as exc:
        result.checks.append(Check("stops within", False, str(exc).splitlines()[0], errors=[exc]))
    return errors


def run_against(
    scenario: Scenario,
    target: Any,
    *,
    transport: str = "tcp",
    seed: int | None = None,
    request: bytes | None = None,
    judge: Judge | None = None,
) -> ScenarioResult:
    """Run ``scenario`` against a server in another process at ``target`` (loopback
    ``(host, port)``, or a Unix path with ``transport="unix"``, the CLI's words): its faults go
    through a :class:`~sockshock.FaultProxy`, its clients and load to the proxy.
    Only the answers are judged: the server's stop, its handler errors and its
    leaks are not visible from here.

    A reply counts as answered when ``judge(reply, baseline)`` finds nothing wrong
    with it, ``baseline`` being the target's reply to the same request without
    faults (asked first, straight from the target); without ``judge``, when it is
    the baseline, runs of digits aside (dates, counters) -- as ``sockshock run``'s
    built-in checks judge. ``request`` replaces the scenario's ``[load] request``.
    """
    from sockshock._proxy import FaultProxy, transport_of

    kind_name = "datagram" if transport == "udp" else "stream"
    check_transport(
        scenario,
        kind_name,
        tls=scenario.server.tls,
        server=f"the target {transport}:{target!r}",
        proxied=True,
    )
    plan = scenario.plan(seed)
    result = ScenarioResult(scenario.name, f"{transport}:{target}", plan.seed)
    started = time.monotonic()
    context = None
    if scenario.server.tls:
        from sockshock._tls import client_context

        context = client_context()
    sending = scenario.load.request if request is None else request

    def opener(address: Any) -> Opener:
        return lambda timeout: connect(
            address, kind_name, timeout=timeout, tls=context, source="the load"
        )

    baseline = None
    try:
        baseline = _ask(opener(target), sending, scenario.load.timeout, Reply(until=None))
        why = "" if baseline else "it closed the connection without a reply"
    except TimeoutError:
        why = f"no reply within {scenario.load.timeout:g} s"
    except OSError as exc:
        why = _failed_connection(exc, target)
    if not baseline:
        result.checks.append(
            Check(
                "answered",
                False,
                f"the target did not answer {sending!r} without faults: {why}; nothing "
                "to judge the replies under faults by",
            )
        )
        result.seconds = time.monotonic() - started
        return result
    with (
        warnings.catch_warnings(record=True) as caught,
        FaultProxy(target, faults=plan, transport=transport_of(transport)) as proxy,
    ):
        warnings.simplefilter("always", FaultNeverFired)
        ends = time.monotonic() + scenario.duration
        address = proxy.address
        with _clients(scenario, address, kind_name):
            answered, sent, wrong = _load(
                scenario,
                opener(address),
                request_bytes=sending,
                judge=_same_as_baseline if judge is None else judge,
                baseline=baseline,
            )
            time.sleep(max(0.0, ends - time.monotonic()))  # the clients' window
    result.notes = [str(w.message) for w in caught]
    answered_check = _judge_answered(scenario, answered, sent)
    detail = f"; the reply without faults: {baseline[:60]!r}"
    if wrong is not None:
        detail += f"; first wrong reply: {wrong}"
    result.checks.append(
        Check(answered_check.name, answered_check.passed, answered_check.detail + detail)
    )
    for name in ("stops within", "handler errors", "no leaks"):
        result.checks.append(Check(name, None, "not visible from outside the target"))
    result.seconds = time.monotonic() - started
    result.log = plan.describe(limit=40)
    return result


def _failed_connection(exc: OSError, target: Any) -> str:
    """Why the connection to ``target`` failed, as the OS said it: ``the connection
    to 127.0.0.1:1 was refused (ECONNREFUSED: Connection refused)``."""
    where = f"{target[0]}:{target[1]}" if isinstance(target, tuple) else str(target)
    if isinstance(exc, ssl.SSLError):  # its errno is OpenSSL's, not the OS's
        return f"the TLS handshake with {where} failed ({exc.reason or exc})"
    code = exc.errno
    name = errno.errorcode.get(code, str(code)) if code is not None else None
    said = f" ({name}: {exc.strerror})" if name else f" ({exc})"
    if isinstance(exc, ConnectionRefusedError):
        return f"the connection to {where} was refused{said}"
    if isinstance(exc, ConnectionResetError):
        return f"the connection to {where} was reset{said}"
    if isinstance(exc, FileNotFoundError):
        return f"no Unix socket at {where}{said}"
    return f"the connection to {where} failed{said}"


_DIGITS = re.compile(rb"\d+")


def _same_as_baseline(reply: bytes, baseline: bytes) -> str | None:
    """The built-in checks' default: the reply without faults, digits aside."""
    if reply == baseline or _DIGITS.sub(b"0", reply) == _DIGITS.sub(b"0", baseline):
        return None
    return f"{reply[:60]!r} is not the reply without faults (digits aside)"

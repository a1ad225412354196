"""``sockshock run``: the built-in robustness checks, as a matrix.

The checks are a pytest module (``_run_checks``) run by ``pytest.main`` with
sockshock's own plugin, so every check gets what every sockshock test gets: a
seed, the fault log in its failure report, the shutdown bound and the leak audit.
:class:`RunTarget` is registered as a plugin of that run: it tells the checks what
to check and collects the outcomes for the progress lines and the matrix.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from sockshock._checks import Expectation
from sockshock._harness import (
    choose_handler,
    import_handler_class,
    resolve_server_class,
)
from sockshock._stdlib import ServerKind, classes, kind_of, server_kinds
from sockshock._util import InvalidArgument, __version__, check_seed

__all__ = ["DEFAULT_REQUEST", "RunTarget", "check_common", "check_writable", "run", "write_json"]

AUDIT = "leak audit"
#: What the built-in checks send unless --request says otherwise.
DEFAULT_REQUEST = "ping\\n"


def _checks() -> dict[str, str]:
    """The check functions and their columns, as the checks module declares them."""
    from sockshock._checks._checks import CHECKS

    return CHECKS


@dataclass
class Result:
    server: str
    check: str
    outcome: str  # "pass", "FAIL", "expected", "skip"
    seconds: float = 0.0
    reason: str = ""
    seed: int | None = None  # the check's fault seed, for a failure's re-run line


@dataclass(eq=False)
class RunTarget:
    """What ``sockshock run`` checks; registered as the pytest plugin "sockshock-run"."""

    is_sockshock_run_target = True

    servers: list[ServerKind]
    handler: Any
    request: bytes
    expectation: Expectation
    out: TextIO
    results: list[Result] = field(default_factory=list)
    baselines: dict[str, bytes | Exception] = field(default_factory=dict)
    audit_failures: dict[str, str] = field(default_factory=dict)
    total: int = 0

    def handler_for(self, server: ServerKind) -> Any:
        """The handler to serve ``server`` with (None: its constructor's own), as
        the one resolver chooses it: --handler; else the class's default; else
        sockshock's demo echo handler."""
        return choose_handler(
            server.server_class, self.handler, source="--handler", demo=True, where="sockshock run"
        ).handler_class

    # -- pytest hooks ------------------------------------------------------------

    def pytest_configure(self, config: Any) -> None:
        config.addinivalue_line("markers", "transport(kind): only for stream or datagram servers")

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        # Checks of a transport none of the servers has: not applicable, not shown.
        kept = [
            item
            for item in items
            if isinstance(
                getattr(item, "callspec", None) and item.callspec.params.get("server"), ServerKind
            )
        ]
        dropped = [item for item in items if item not in kept]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        self.total = len(items)

    def pytest_runtest_logreport(self, report: Any) -> None:
        name, _, rest = report.nodeid.rpartition("::")[2].partition("[")
        server = rest.rstrip("]")
        check = _checks().get(name, name)
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            if report.passed:
                outcome = "pass"
            elif getattr(report, "wasxfail", None) is not None:
                outcome = "expected"
            elif report.skipped:
                outcome = "skip"
            else:
                outcome = "FAIL"
            reason = _reason(report) if outcome in ("FAIL", "expected") else ""
            if outcome == "expected":
                reason = str(report.wasxfail)
            elif outcome == "skip":
                reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
                reason = reason.removeprefix("Skipped: ")
            self.results.append(
                Result(
                    server,
                    check,
                    outcome,
                    report.duration,
                    reason,
                    _seed(report) if outcome == "FAIL" else None,
                )
            )
            done = len(self.results)
            self.out.write(
                f"[{done:3}/{self.total}] {server:<30} {check:<16} {outcome:<8} "
                f"{report.duration * 1000:7.1f} ms\n"
            )
            self.out.flush()
        elif report.when == "teardown" and report.failed:
            reason = _reason(report)
            if "LeakError" in reason:
                self.audit_failures.setdefault(server, reason)
            else:  # handler errors, shutdown bounds: the check failed after all
                for result in reversed(self.results):
                    if result.server == server and result.check == check:
                        if result.outcome != "FAIL":  # its progress line said otherwise
                            self.out.write(
                                f"{'':8}{server:<30} {check:<16} FAIL     "
                                f"(was {result.outcome}: at teardown, "
                                f"{reason})\n"
                            )
                            self.out.flush()
                        result.outcome, result.reason = "FAIL", reason
                        result.seed = _seed(report)
                        break


def _seed(report: Any) -> int | None:
    """The fault seed the plugin put in a failing check's report section."""
    for title, text in report.sections:
        if title.startswith("sockshock"):
            found = re.search(r"^fault seed: (\d+)", text, re.MULTILINE)
            if found:
                return int(found.group(1))
    return None


def _reason(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else "failed"


def _servers(args: argparse.Namespace, handler: Any) -> list[ServerKind]:
    if args.server is not None:
        cls = resolve_server_class(args.server, source="--server")
        # an incompatible pair, given explicitly: a usage error
        choose_handler(cls, handler, source="--handler", demo=True, where="sockshock run")
        return [kind_of(cls)]
    if handler is not None:
        datagram = isinstance(handler, type) and issubclass(
            handler, classes("DatagramRequestHandler")
        )
        return server_kinds("datagram" if datagram else "stream")
    return server_kinds()


def _expectation(args: argparse.Namespace) -> Expectation:
    given = [
        (kind, value)
        for kind, value in (
            ("exact", args.expect),
            ("prefix", args.expect_prefix),
            ("regex", args.expect_regex),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise InvalidArgument("give one of --expect, --expect-prefix, --expect-regex")
    if not given:
        return Expectation()
    kind, text = given[0]
    flag = {"exact": "--expect", "prefix": "--expect-prefix", "regex": "--expect-regex"}[kind]
    value = _escaped(text, flag)
    if kind == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise InvalidArgument(f"{flag}={text!r} is not a regular expression: {exc}") from None
    return Expectation(kind, value)


def _matrix(target: RunTarget) -> str:
    servers = list(dict.fromkeys(r.server for r in target.results))
    columns = [c for c in _checks().values() if any(r.check == c for r in target.results)] + [AUDIT]
    cells: dict[tuple[str, str], str] = {}
    for r in target.results:
        timed = r.outcome in ("pass", "FAIL")
        cells[(r.server, r.check)] = f"{r.outcome} {r.seconds * 1000:.0f}ms" if timed else r.outcome
    for server in servers:
        cells[(server, AUDIT)] = "FAIL" if server in target.audit_failures else "pass"
    widths = {c: max([len(c)] + [len(cells.get((s, c), "-")) for s in servers]) for c in columns}
    name_width = max([len("server class")] + [len(s) for s in servers])
    lines = ["  ".join(["server class".ljust(name_width)] + [c.ljust(widths[c]) for c in columns])]
    for server in servers:
        lines.append(
            "  ".join(
                [server.ljust(name_width)]
                + [cells.get((server, c), "-").ljust(widths[c]) for c in columns]
            )
        )
    return "\n".join(lines)


def _escaped(text: str, source: str) -> bytes:
    """``ping\\n`` -> ``b"ping\\n"``, or one error naming the value."""
    try:
        value: bytes = codecs.escape_decode(text.encode())[0]
    except ValueError as exc:
        raise InvalidArgument(
            f"{source}={text!r}: not a valid escaped byte string ({exc}); write a backslash as \\\\"
        ) from None
    if not value:
        raise InvalidArgument(f"{source}={text!r} is empty")
    return value


def check_writable(path: str, source: str) -> None:
    """``path`` can be written (tried, before anything runs: a run that ends in an
    unwritable file has lost its results)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not path:
        raise InvalidArgument(f"{source}={path!r}: expected a file name")
    if os.path.isdir(path):
        raise InvalidArgument(f"{source}={path!r} is a directory; give a file name")
    if not os.path.isdir(directory):
        raise InvalidArgument(f"{source}={path!r}: the directory {directory!r} does not exist")
    existed = os.path.lexists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise InvalidArgument(
            f"{source}={path!r}: cannot write it ({exc.strerror or exc})"
        ) from None
    if not existed:
        with contextlib.suppress(OSError):
            os.unlink(path)


def write_json(path: str, data: Any, source: str = "--json") -> bool:
    """Write the results; one line on stderr (and False) if that fails after all."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
    except OSError as exc:
        print(
            f"sockshock run: {source}={path!r}: cannot write the results ({exc.strerror or exc})",
            file=sys.stderr,
        )
        return False
    return True


def check_common(args: argparse.Namespace) -> None:
    """The options both kinds of run share, and those that belong to one kind only."""
    if args.seed is not None:
        check_seed(args.seed, name="--seed", source="sockshock run")
    if args.json is not None:
        check_writable(args.json, "--json")
    if not args.scenarios:
        if args.target is not None:
            raise InvalidArgument(
                f"--target={args.target!r} applies to scenarios only (a "
                "server in another process): give the scenarios to run, "
                "e.g. sockshock run partial-io --target HOST:PORT"
            )
        if args.udp:
            raise InvalidArgument(
                "--udp applies to scenarios with --target HOST:PORT only (a "
                "UDP server in another process)"
            )
        return
    for flag, value in (
        ("--request", args.request),
        ("--expect", args.expect),
        ("--expect-prefix", args.expect_prefix),
        ("--expect-regex", args.expect_regex),
    ):
        if value is not None:
            raise InvalidArgument(
                f"{flag}={value!r} applies to the built-in checks only; a "
                "scenario's requests are its [load] request"
            )
    if args.udp and args.target is None:
        raise InvalidArgument(
            "--udp applies with --target HOST:PORT only (a UDP server in another process)"
        )


def run(args: argparse.Namespace) -> int:
    try:
        import pytest
    except ImportError:
        print("sockshock run needs pytest: pip install 'sockshock[pytest]'", file=sys.stderr)
        return 2
    if os.getcwd() not in sys.path:  # --handler myservers:Handler, as python -m would
        sys.path.insert(0, os.getcwd())
    try:
        check_common(args)
        request = _escaped(DEFAULT_REQUEST if args.request is None else args.request, "--request")
        expectation = _expectation(args)
        handler = (
            None if args.handler is None else import_handler_class(args.handler, source="--handler")
        )
        servers = _servers(args, handler)
    except InvalidArgument as exc:
        print(f"sockshock run: {exc}", file=sys.stderr)
        return 2
    demo = all(
        choose_handler(s.server_class, handler, source="--handler", demo=True).origin == "demo"
        for s in servers
    )
    if demo and expectation.kind == "baseline":
        expectation = Expectation("exact", request)  # the demo handlers echo
    out = sys.stderr
    target = RunTarget(servers, handler, request, expectation, out)
    checks = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_checks", "_checks.py"
    )
    started = time.monotonic()
    out.write(f"sockshock {__version__}: {len(servers)} server class(es) x robustness checks\n")
    with tempfile.TemporaryDirectory(prefix="sockshock-run-") as workdir:
        ini = os.path.join(workdir, "pytest.ini")
        with open(ini, "w", encoding="utf-8") as f:
            f.write("[pytest]\n")
        argv = [
            checks,
            "-c",
            ini,
            "--rootdir",
            workdir,
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-p",
            "no:terminal",
            "-p",
            "no:xdist",
            "-p",
            "no:hypothesispytest",  # its import alone costs 0.5-2 s
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
        ]
        plugins: list[Any] = [target]
        if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            from sockshock import pytest_plugin

            plugins.append(pytest_plugin)
        if args.seed is not None:
            argv.append(f"--sockshock-seed={args.seed}")
        code = pytest.main(argv, plugins=plugins)
    elapsed = time.monotonic() - started
    print("\n" + _matrix(target))
    failures = [r for r in target.results if r.outcome == "FAIL"]
    for r in failures:
        again = (
            ""
            if r.seed is None
            else f" (fault seed {r.seed}: add --seed {r.seed} to re-run it with the same faults)"
        )
        print(f"FAIL {r.server} x {r.check}: {r.reason}{again}")
    for server, reason in target.audit_failures.items():
        print(f"FAIL {server} x {AUDIT}: {reason}")
    skipped: dict[str, list[str]] = {}
    for r in target.results:
        if r.outcome == "skip":
            skipped.setdefault(r.reason, [])
            if r.server not in skipped[r.reason]:
                skipped[r.reason].append(r.server)
    for reason, names in skipped.items():  # one line per cause
        print(f"skipped on {', '.join(names)}: {reason}")
    ok = not failures and not target.audit_failures and code in (0, 1) and target.results
    print(
        f"\n{len(target.results)} checks in {elapsed:.1f} s: "
        f"{'all passed' if ok else f'{len(failures) + len(target.audit_failures)} failed'}"
    )
    if args.json is not None and not write_json(
        args.json,
        {
            "sockshock": __version__,
            "seconds": round(elapsed, 3),
            "passed": bool(ok),
            "results": [r.__dict__ for r in target.results],
            "leak_audit": {s.name: target.audit_failures.get(s.name, "pass") for s in servers},
        },
    ):
        return 2
    return 0 if ok else 1

"""``sockshock run``: the built-in robustness checks, as a matrix.

The checks are plain functions (``sockshock._checks``), run here server by
server: each with its own fault seed, the shutdown bound and a leak audit. This
module turns their results into progress lines (stderr), the matrix, one block per
failure -- its reason, where it was raised, the seed that re-runs it --, the leak
audit's findings with what each leaked descriptor is, one line per cause of skips
(stdout), and ``--json``. No pytest.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import os
import re
import sys
import time
import warnings
from typing import Any, TextIO

from sockshock._checks import (
    CHECKS,
    CheckResult,
    Expectation,
    Target,
    leak_lines,
    planned,
    run_matrix,
)
from sockshock._harness import (
    choose_handler,
    import_handler_class,
    resolve_server_class,
)
from sockshock._stdlib import ServerKind, classes, kind_of, server_kinds
from sockshock._util import InvalidArgument, __version__, check_seed

__all__ = ["DEFAULT_REQUEST", "check_common", "check_writable", "run", "write_json"]

AUDIT = "leak audit"
_LOG_LINES = 12  # of a failure's fault log, in the text (--json has it all)
#: What the built-in checks send unless --request says otherwise.
DEFAULT_REQUEST = "ping\\n"


def _servers(args: argparse.Namespace, handler: Any) -> list[ServerKind]:
    if args.server is not None:
        cls = resolve_server_class(args.server, source="--server")
        # An incompatible pair, given explicitly: a usage error.
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


def _matrix(results: list[CheckResult]) -> str:
    servers = list(dict.fromkeys(r.server for r in results))
    present = {r.check for r in results}
    columns = [check.name for check in CHECKS if check.name in present] + [AUDIT]
    cells: dict[tuple[str, str], str] = {}
    for r in results:
        timed = r.outcome in ("pass", "FAIL")
        cells[(r.server, r.check)] = f"{r.outcome} {r.seconds * 1000:.0f}ms" if timed else r.outcome
    leaked = {r.server for r in results if r.leaked}
    for server in servers:
        cells[(server, AUDIT)] = "FAIL" if server in leaked else "pass"
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
        with warnings.catch_warnings():  # '\\q': a DeprecationWarning, and b'\\q' kept as is
            warnings.simplefilter("error", DeprecationWarning)
            value: bytes = codecs.escape_decode(text.encode())[0]
    except (ValueError, DeprecationWarning) as exc:
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
        if value is not None and args.target is None:
            raise InvalidArgument(
                f"{flag}={value!r} applies to the built-in checks and to scenarios run "
                "with --target only; a scenario's requests are its [load] request"
            )
    if args.udp and args.target is None:
        raise InvalidArgument(
            "--udp applies with --target HOST:PORT only (a UDP server in another process)"
        )


def _target_for(handler: Any, request: bytes, expectation: Expectation | None) -> Any:
    """Each server's :class:`Target`: ``--handler``; else the handler the class's
    constructor defaults to (judged against its own reply without faults); else the
    demo echo handlers (whose reply is the request)."""

    def target(kind: ServerKind) -> Target:
        choice = choose_handler(  # the harness's one resolver (None: the class's own)
            kind.server_class, handler, source="--handler", demo=True, where="sockshock run"
        )
        judged = expectation
        if choice.origin == "demo":
            judged = judged or Expectation("exact", request)  # the demo handlers echo
        return Target(kind.server_class, choice.handler_class, request, judged or Expectation())

    return target


def _progress(out: TextIO, total: int) -> Any:
    done = 0

    def report(r: CheckResult) -> None:
        nonlocal done
        done += 1
        out.write(
            f"[{done:3}/{total}] {r.server:<30} {r.check:<16} {r.outcome:<8} "
            f"{r.seconds * 1000:7.1f} ms\n"
        )
        out.flush()

    return report


def _indented(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def report_lines(results: list[CheckResult]) -> list[str]:
    """What follows the matrix: every failure in full, the leak audit's findings,
    one line per cause of skips, notes."""
    lines: list[str] = []
    for r in results:
        if r.outcome == "FAIL":
            again = (
                ""
                if r.seed is None
                else f" (fault seed {r.seed}: add --seed {r.seed} to re-run it with the same faults)"
            )
            lines.append(f"FAIL {r.server} x {r.check}: {r.reason}{again}")
            lines.extend(_indented(r.failure_lines()))
            log = r.fault_log.splitlines()
            if log:
                shown = log[:_LOG_LINES] + (
                    [f"  ... ({len(log) - _LOG_LINES} more lines in --json)"]
                    if len(log) > _LOG_LINES
                    else []
                )
                lines.extend(_indented(["faults injected:", *("  " + line for line in shown)]))
    for r in results:
        if r.leaks:
            lines.append(f"FAIL {r.server} x {AUDIT}: {r.check} left {r.leaks.summary()} behind")
            lines.extend(_indented(leak_lines(r.leaks)))
    skipped: dict[str, list[str]] = {}
    for r in results:
        if r.outcome == "skip":
            servers = skipped.setdefault(r.reason, [])
            if r.server not in servers:
                servers.append(r.server)
    for reason, names in skipped.items():  # one line per cause
        lines.append(f"skipped on {', '.join(names)}: {reason}")
    for r in results:
        lines.extend(f"note {r.server} x {r.check}: {note}" for note in r.notes)
    return lines


def run(args: argparse.Namespace) -> int:
    """``sockshock run`` without scenarios: exit status 0 (all passed), 1 (a check
    failed or leaked), 2 (usage)."""
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
    out = sys.stderr
    started = time.monotonic()
    out.write(f"sockshock {__version__}: {len(servers)} server class(es) x robustness checks\n")
    results = run_matrix(
        servers,
        _target_for(handler, request, None if expectation.kind == "baseline" else expectation),
        seed=args.seed,
        on_result=_progress(out, len(planned(servers))),
    )
    elapsed = time.monotonic() - started
    print("\n" + _matrix(results))
    for line in report_lines(results):
        print(line)
    failed = sum(r.outcome == "FAIL" for r in results) + len(
        {r.server for r in results if r.leaked}
    )
    ok = not failed and bool(results)
    print(
        f"\n{len(results)} checks in {elapsed:.1f} s: {'all passed' if ok else f'{failed} failed'}"
    )
    if args.json is not None and not write_json(
        args.json,
        {
            "sockshock": __version__,
            "seconds": round(elapsed, 3),
            "passed": ok,
            "seed": args.seed,
            "results": [r.to_json() for r in results],
            "leak_audit": {s.name: _audit_cell(s.name, results) for s in servers},
        },
    ):
        return 2
    return 0 if ok else 1


def _audit_cell(server: str, results: list[CheckResult]) -> str:
    leaks = [r for r in results if r.server == server and r.leaks]
    if not leaks:
        return "pass"
    return "; ".join(f"{r.check} left {r.leaks.summary()}" for r in leaks if r.leaks)

"""``sockshock run SCENARIO...`` and ``sockshock check [PATH...]``: scenarios from
the command line -- progress on stderr, a matrix on stdout, ``--json``, exit
status 0 (all passed / all valid), 1 (something failed / invalid), 2 (usage)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from sockshock._checks import describe_error, leak_lines, leaks_json
from sockshock._cli._run import _escaped, _expectation, check_common, write_json
from sockshock._harness import import_handler_class, resolve_server_class
from sockshock._scenarios import (
    Check,
    Report,
    Scenario,
    ScenarioResult,
    check_transport,
    examine,
    library,
    locate,
    resolve_into,
    run,
    run_against,
)
from sockshock._util import InvalidArgument, __version__, is_loopback

__all__ = ["check", "run_scenarios"]

_COLUMNS = ("answered", "stops within", "handler errors", "no leaks")


def check(args: argparse.Namespace) -> int:
    """Validate scenario files: one line each; exit 1 if any is invalid. A file is
    checked as ``sockshock run`` would run it -- its server class, handler, TLS,
    attributes, faults and clients resolved and checked together -- with nothing
    started."""
    paths: list[Path] = []
    for given in args.paths or [str(folder) for folder in library()]:
        path = Path(given)
        if given and path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found and args.paths:
                print(
                    f"sockshock check: {given!r}: no scenario files (*.toml) in it",
                    file=sys.stderr,
                )
                return 2
            paths.extend(found)
        elif given and path.is_file():
            paths.append(path)
        else:
            print(f"sockshock check: {given!r}: no such file or folder", file=sys.stderr)
            return 2
    invalid = problems = 0
    for path in paths:
        report = Report(path)
        scenario = examine(path, report)
        if scenario is not None:
            resolve_into(report, scenario)
        if report.problems:
            invalid += 1
            problems += len(report.problems)
            print(_indented(f"INVALID {report.message()}", "        "))
        else:
            assert scenario is not None
            print(
                f"ok      {path} ({scenario.name}: {len(scenario.faults)} fault model(s), "
                f"{len(scenario.clients)} client(s))"
            )
    print(
        f"\n{len(paths)} scenario(s) checked: "
        + ("all valid" if not invalid else f"{invalid} invalid ({problems} problem(s))")
    )
    return 1 if invalid or not paths else 0


def _indented(text: str, indent: str) -> str:
    """``text``'s lines after the first, indented (a report under a prefix)."""
    first, *rest = text.splitlines()
    return "\n".join([first, *(indent + line for line in rest)])


def evidence_lines(check: Check) -> list[str]:
    """What lies behind a failed expectation, in full: each handler error with
    where it was raised, each leaked thread, descriptor (a socket with its
    addresses), child or socket file."""
    lines = []
    alike: dict[tuple[str, ...], int] = {}  # the same error, from the same place
    for exc in check.errors:
        detail = describe_error(exc)
        key = (detail.headline, *detail.lines())
        alike[key] = alike.get(key, 0) + 1
    for (headline, *rest), count in alike.items():
        lines.append(f"{count} x {headline}" if count > 1 else headline)
        lines.extend("  " + line for line in rest)
    if check.leaks:
        lines.extend(leak_lines(check.leaks))
    return lines


def _check_json(check: Check) -> dict[str, Any]:
    return {
        "name": check.name,
        "passed": check.passed,
        "detail": check.detail,
        "errors": [describe_error(exc).to_json() for exc in check.errors],
        "leaks": None if check.leaks is None else leaks_json(check.leaks),
    }


def _matrix(results: list[ScenarioResult]) -> str:
    def cell(result: ScenarioResult, column: str) -> str:
        found = [c for c in result.checks if c.name == column]
        if not found or found[0].passed is None:
            return "-"
        return "pass" if found[0].passed else "FAIL"

    rows = [["scenario", "server", *_COLUMNS, "time"]]
    rows += [
        [r.scenario, r.server, *(cell(r, c) for c in _COLUMNS), f"{r.seconds:.2f}s"]
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _target(args: argparse.Namespace) -> tuple[Any, str]:
    """``--target HOST:PORT`` (``--udp`` for datagrams) or ``--target PATH`` (a Unix
    stream socket)."""
    text: str = args.target
    if args.server is not None or args.handler is not None:
        raise InvalidArgument(
            "--target runs against a server in another process: --server and --handler do not apply"
        )
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        host = host.strip("[]")
        if not 0 < int(port) <= 65535:
            raise InvalidArgument(f"--target={text!r}: port {port} must be in [1, 65535]")
        if not is_loopback(host):
            raise InvalidArgument(
                f"--target={text!r}: the fault proxy forwards to loopback "
                "addresses only (127.0.0.0/8, ::1, localhost) or a Unix "
                "socket path"
            )
        return (host, int(port)), "udp" if args.udp else "tcp"
    if "/" in text:
        if args.udp:
            raise InvalidArgument(
                f"--target={text!r} is a Unix socket path: --udp applies to HOST:PORT only"
            )
        return text, "unix"
    raise InvalidArgument(
        f"--target={text!r}: expected HOST:PORT (such as 127.0.0.1:8000) or a Unix socket path"
    )


def _examine(
    args: argparse.Namespace, target: tuple[Any, str] | None, server: Any, handler: Any
) -> tuple[list[Scenario], list[Report]]:
    """Every SCENARIO read and checked as it will run (with --server/--handler, or
    against --target); the scenarios, and a report for each that has problems."""
    scenarios: list[Scenario] = []
    reports: list[Report] = []
    for spec in args.scenarios:
        try:
            path = locate(spec, source="SCENARIO")
        except InvalidArgument as exc:  # no file to report on: a report of its own
            report = Report(None)
            report.add(exc, None)
            reports.append(report)
            continue
        report = Report(path)
        scenario = examine(path, report)
        if scenario is not None and target is not None:
            check_transport(
                scenario,
                "datagram" if target[1] == "udp" else "stream",
                tls=scenario.server.tls,
                server=f"--target={args.target!r}{' --udp' if args.udp else ''}",
                proxied=True,
                report=report,
            )
        elif scenario is not None:
            resolve_into(
                report,
                scenario,
                server_class=server,
                handler=handler,
                server_source="--server",
                handler_source="--handler",
            )
        if report.problems:
            reports.append(report)
        elif scenario is not None:
            scenarios.append(scenario)
    return scenarios, reports


def _problems_json(reports: list[Report]) -> dict[str, Any]:
    return {
        "sockshock": __version__,
        "passed": False,
        "problems": [problem for report in reports for problem in report.to_json()],
    }


def run_scenarios(args: argparse.Namespace) -> int:
    """Run each scenario against its server (or --server/--handler) in this process."""
    try:
        check_common(args)
        target = _target(args) if args.target is not None else None
        # --target: --request replaces the [load] request, --expect* judge the replies
        # as the built-in checks do (default: the target's own reply without faults).
        request = None if args.request is None else _escaped(args.request, "--request")
        judge = _expectation(args).judge if target is not None else None
        server: Any = (
            None if args.server is None else resolve_server_class(args.server, source="--server")
        )
        handler = (
            None if args.handler is None else import_handler_class(args.handler, source="--handler")
        )
    except InvalidArgument as exc:
        print(f"sockshock run: {exc}", file=sys.stderr)
        return 2
    # every one checked before any runs, and every problem of every file reported
    scenarios, reports = _examine(args, target, server, handler)
    if reports:
        for report in reports:
            print(f"sockshock run: {report.message()}", file=sys.stderr)
        if args.json is not None:
            write_json(args.json, _problems_json(reports))
        return 2
    out = sys.stderr
    out.write(f"sockshock {__version__}: {len(scenarios)} scenario(s)\n")
    results = []
    started = time.monotonic()
    for number, scenario in enumerate(scenarios, start=1):
        try:
            if target is not None:
                result = run_against(
                    scenario,
                    target[0],
                    transport=target[1],
                    seed=args.seed,
                    request=request,
                    judge=judge,
                )
            else:
                result = run(scenario, server_class=server, handler=handler, seed=args.seed)
        except InvalidArgument as exc:  # checked above: should not happen
            print(f"sockshock run: {scenario.name}: {exc}", file=sys.stderr)
            return 2
        results.append(result)
        out.write(
            f"[{number:3}/{len(scenarios)}] {scenario.name:<28} "
            f"{'pass' if result.passed else 'FAIL':<5} {result.seconds * 1000:7.1f} ms\n"
        )
        out.flush()
    print(_matrix(results))
    for result in results:
        for failed in result.failures():
            print(
                f"FAIL {result.scenario} x {failed.name}: {failed.detail} "
                f"(seed {result.seed}: --seed {result.seed} replays it)"
            )
            for line in evidence_lines(failed):
                print("    " + line)
        for note in result.notes:
            print(f"note {result.scenario}: {note}")
    passed = all(r.passed for r in results)
    print(
        f"\n{len(results)} scenario(s) in {time.monotonic() - started:.1f} s: "
        + ("all passed" if passed else f"{sum(not r.passed for r in results)} failed")
    )
    if args.json is not None and not write_json(
        args.json,
        {
            "sockshock": __version__,
            "passed": passed,
            "scenarios": [
                {
                    "scenario": r.scenario,
                    "server": r.server,
                    "seed": r.seed,
                    "passed": r.passed,
                    "seconds": round(r.seconds, 3),
                    "notes": r.notes,
                    "checks": [_check_json(c) for c in r.checks],
                }
                for r in results
            ],
        },
    ):
        return 2
    return 0 if passed else 1

"""The ``sockshock`` command line: ``sockshock run`` (the built-in checks: ``_run``;
scenarios: ``_scenario_cli``) and ``sockshock check``."""

from __future__ import annotations

import argparse
import sys

from sockshock._cli._run import run
from sockshock._cli._scenario import check, run_scenarios
from sockshock._util import __version__

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sockshock",
        description="Find out how socket servers behave "
        "when the network and their clients misbehave.",
    )
    parser.add_argument("--version", action="version", version=f"sockshock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run_parser = commands.add_parser(
        "run", help="run the robustness checks against every server class (or yours), or scenarios"
    )
    run_parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help="scenario names (from the library) or .toml files: run these "
        "instead of the built-in checks",
    )
    run_parser.add_argument(
        "--handler",
        metavar="MODULE:ATTR",
        help="your request handler class (default: the demo echo handlers)",
    )
    run_parser.add_argument(
        "--server",
        metavar="MODULE:ATTR|NAME",
        help="your server class, or a name from sockshock.socketserver "
        "(default: every server class of the handler's kind)",
    )
    run_parser.add_argument(
        "--request", default=None, help="the request to send, with escapes (default: 'ping\\n')"
    )
    run_parser.add_argument(
        "--expect",
        default=None,
        help="the whole expected reply, with escapes (default: the demo "
        "handlers echo; yours must answer as they do without "
        "faults, digits aside: dates, counters)",
    )
    run_parser.add_argument(
        "--expect-prefix",
        default=None,
        metavar="BYTES",
        help="the reply must start with these bytes (with escapes)",
    )
    run_parser.add_argument(
        "--expect-regex",
        default=None,
        metavar="PATTERN",
        help="the reply must match this regular expression",
    )
    run_parser.add_argument("--seed", type=int, default=None, help="fix the fault seed")
    run_parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    run_parser.add_argument(
        "--target",
        metavar="HOST:PORT|PATH",
        help="with scenarios: a server in another process, reached "
        "through the fault proxy (loopback or a Unix path); a stream reply "
        "is read until the server closes the connection or, without faults, "
        "stays quiet for 0.2 s -- under faults, once it is as long as that "
        "reply -- and judged whole",
    )
    run_parser.add_argument(
        "--udp",
        action="store_true",
        help="with scenarios and --target HOST:PORT: the server in the "
        "other process speaks UDP (the fault proxy relays datagrams)",
    )
    commands.add_parser(
        "proxy",
        add_help=False,
        help="run a fault proxy in front of a server in another process (sockshock proxy --help)",
    )
    check_parser = commands.add_parser(
        "check", help="validate scenario files (default: the scenario library)"
    )
    check_parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="scenario files or folders of them"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["proxy"]:  # its own parser (_proxy_cli), for its own --help
        from sockshock._cli._proxy import proxy_main

        return proxy_main(argv[1:])
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # as the subcommand's own error: "sockshock run: unrecognized ..."
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "check":
        return check(args)
    if args.scenarios:
        return run_scenarios(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

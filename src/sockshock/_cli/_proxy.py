"""``sockshock proxy``: the fault proxy from the command line.

:func:`proxy_main` parses ``--listen``, ``--upstream``, ``--udp``/``--unix``,
``--seed`` and ``--fault MODEL`` (models spelled as in Python, parsed without
evaluating anything), prints the address clients should use as one flushed line on
stdout, forwards until SIGINT or SIGTERM (or an ``AbruptShutdown``), then prints the
fault log. The ``sockshock`` console script dispatches ``proxy`` here; ``python -m
sockshock._cli._proxy`` runs it directly.
"""

from __future__ import annotations

import argparse
import ast
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

from sockshock import _faults as faults
from sockshock._faults import FaultModel
from sockshock._proxy import FaultProxy, format_address, host_port_form
from sockshock._util import InvalidArgument, ProxyError

__all__ = ["parse_fault", "proxy_main"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def parse_fault(text: str, *, source: str = "--fault") -> FaultModel:
    """A fault model from its Python spelling, e.g. ``"PartialReads(3)"`` or
    ``"Latency(0.01, direction='out')"`` (literal arguments only; nothing is
    evaluated).

    Raises:
        InvalidArgument: naming the text and what is wrong with it.
    """
    where = f"{source} {text!r}"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        tree = None
    call = tree.body if tree is not None else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise InvalidArgument(f"{where}: expected a fault model call such as 'PartialReads(3)'")
    cls = faults.model_named(call.func.id, where=where)
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise ValueError("**")
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except ValueError:
        raise InvalidArgument(
            f"{where}: arguments must be literals (numbers, strings, "
            "lists), given by position or name"
        ) from None
    try:
        return cls(*args, **kwargs)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc}") from None
    except TypeError as exc:
        raise InvalidArgument(f"{where}: {exc}") from None


def _parse_address(text: str, transport: str, option: str) -> Any:
    if transport == "unix":
        if not text:
            raise InvalidArgument(f"{option}={text!r}: expected a Unix socket path")
        if host_port_form(text):
            raise InvalidArgument(
                f"{option}={text!r} looks like HOST:PORT, but --unix expects a Unix socket "
                f"path here; give a path, or leave out --unix to proxy TCP"
            )
        return text
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit():
        raise InvalidArgument(
            f"{option}={text!r}: expected HOST:PORT such as 127.0.0.1:8000 ([::1]:8000 for IPv6)"
        )
    return (host, int(port))


def _proxy_parser() -> _Parser:
    parser = _Parser(
        prog="sockshock proxy",
        description="Forward clients to a server on loopback (or a Unix socket) and "
        "inject faults on the way. Prints the address to connect to, then "
        "runs until SIGINT or SIGTERM and prints the fault log.",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT|PATH",
        default=None,
        help="where clients connect (default 127.0.0.1:0, or with --unix a "
        "path in a private temporary directory)",
    )
    parser.add_argument(
        "--upstream",
        metavar="HOST:PORT|PATH",
        required=True,
        help="the server (loopback, or a Unix socket path with --unix)",
    )
    transports = parser.add_mutually_exclusive_group()
    transports.add_argument("--udp", action="store_true", help="proxy datagrams (UDP)")
    transports.add_argument("--unix", action="store_true", help="proxy a Unix stream socket")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="the fault seed (default: random, printed)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="MODEL",
        help="a fault model as in Python, e.g. 'PartialReads(3)' or "
        "\"Latency(0.01, direction='out')\"; repeatable",
    )
    parser.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        default=None,
        help="the fault models (and seed) of a scenario: a name from the "
        "library or a .toml file; --fault adds to them",
    )
    return parser


def proxy_main(argv: Sequence[str] | None = None) -> int:
    """``sockshock proxy``: run a fault proxy until SIGINT or SIGTERM.

    Prints the listening address (``127.0.0.1:PORT``, ``[::1]:PORT`` or the Unix
    path) as one flushed line on stdout, the seed and models on stderr, and the
    fault log on stdout at exit. An ``AbruptShutdown`` ends it too.

    Args:
        argv: the arguments after ``proxy`` (default: ``sys.argv[1:]``).

    Returns:
        0 after a signal or an abrupt shutdown; 2 for a usage error (one line on
        stderr); 1 if the proxy could not listen or failed.
    """
    try:
        args = _proxy_parser().parse_args(argv)
        transport = "udp" if args.udp else "unix" if args.unix else "tcp"
        upstream = _parse_address(args.upstream, transport, "--upstream")
        listen = None if args.listen is None else _parse_address(args.listen, transport, "--listen")
        models = [parse_fault(text) for text in args.fault]
        seed = args.seed
        if args.scenario is not None:
            from sockshock._scenarios import find

            scenario = find(args.scenario, source="--scenario")
            models = [*scenario.faults, *models]
            seed = scenario.seed if seed is None else seed
        proxy = FaultProxy(upstream, listen=listen, faults=models, seed=seed, transport=transport)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except (_UsageError, InvalidArgument) as exc:
        print(f"sockshock proxy: {exc}", file=sys.stderr)
        return 2
    try:
        proxy.start()
    except OSError as exc:
        print(
            f"sockshock proxy: cannot listen on {args.listen or 'the default address'}: {exc}",
            file=sys.stderr,
        )
        return 1
    code = 0
    restore: dict[signal.Signals, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, frame: FrameType | None) -> None:
                proxy.request_stop()

            for signum in (signal.SIGINT, signal.SIGTERM):
                restore[signum] = signal.signal(signum, on_signal)
        print(format_address(proxy.address), flush=True)
        models_text = ", ".join(m.describe() for m in proxy.plan.models) or "none"
        print(
            f"sockshock proxy: {transport} {format_address(proxy.address)} -> "
            f"{format_address(proxy.upstream)}, seed {proxy.plan.seed}, faults: "
            f"{models_text}",
            file=sys.stderr,
            flush=True,
        )
        proxy.wait_stopped()
    finally:
        for signum, handler in restore.items():
            signal.signal(signum, handler)
        try:
            proxy.stop()
        except ProxyError as exc:
            print(f"sockshock proxy: {exc}", file=sys.stderr)
            code = 1
        print(proxy.plan.describe(), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(proxy_main())

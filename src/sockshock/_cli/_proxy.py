"""``sockshock proxy``: the fault proxy from the command line.

Two ways to run it. One proxy: :func:`proxy_main` parses ``--listen``,
``--upstream``, ``--udp``/``--unix``, ``--seed`` and ``--fault MODEL`` (models
spelled as in Python, parsed without evaluating anything) and prints the address
clients should use as one flushed line on stdout. Many named proxies, run-time
control: ``--api HOST:PORT`` serves toxiproxy's HTTP API (toxiproxy's port is
8474) and ``--config FILE`` creates proxies from a JSON array at start, as
toxiproxy's ``-config``; it prints the API's address.

Either way it forwards until SIGINT, SIGTERM or SIGHUP (or an ``AbruptShutdown``),
then prints the fault log (every event kept; ``--log FILE`` streams each one as a
JSON line as it happens, flushed, so that nothing is lost however the proxy
ends). A stdout that goes away (``| head -1``) ends it quietly. At start it raises
its soft open-file limit towards the hard one and says so on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import IO, Any, NoReturn

from sockshock._cli._run import check_writable
from sockshock._faults import FaultEvent
from sockshock._proxy import (
    API_PORT,
    ApiError,
    FaultProxy,
    Registry,
    event_json,
    format_address,
    host_port_form,
    parse_fault,
    raise_open_file_limit,
    serve_api,
    transport_of,
)
from sockshock._util import InvalidArgument, ProxyError

__all__ = ["parse_fault", "proxy_main"]

_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_STDOUT_POLL = 0.5  # seconds between looks at whether stdout is still there


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


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
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or (not bracketed and "[" in host):
        raise InvalidArgument(
            f"{option}={text!r}: expected HOST:PORT such as 127.0.0.1:8000 ([::1]:8000 for IPv6)"
        )
    return (host, int(port))


def _proxy_parser() -> _Parser:
    parser = _Parser(
        prog="sockshock proxy",
        description="Forward clients to a server on loopback (or a Unix socket) and "
        "inject faults on the way. Prints the address to connect to (with --api: the "
        "API's), then runs until SIGINT, SIGTERM or SIGHUP and prints the fault log.",
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
        default=None,
        help="the server (loopback, or a Unix socket path with --unix); not with --api",
    )
    transports = parser.add_mutually_exclusive_group()
    transports.add_argument("--udp", action="store_true", help="proxy datagrams (UDP)")
    transports.add_argument("--unix", action="store_true", help="proxy a Unix stream socket")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="the fault seed (default: random, printed); with --api, every proxy's",
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
        "library or a .toml file; --fault adds to them (its clients and load are not "
        "run: sockshock run NAME --target HOST:PORT runs them)",
    )
    parser.add_argument(
        "--api",
        metavar="HOST:PORT",
        default=None,
        help=f"serve toxiproxy's HTTP API there (loopback; toxiproxy's port is {API_PORT}): "
        "many named proxies, toxics added and removed at run time",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="with or without --api: create the proxies of this JSON array at start "
        '(toxiproxy\'s -config: [{"name", "listen", "upstream"}, ...])',
    )
    parser.add_argument(
        "--log",
        metavar="FILE",
        default=None,
        help="stream every fault event to FILE as a JSON line, as it happens ('-': stdout)",
    )
    return parser


class _EventLog:
    """``--log FILE``: events become JSON lines, written and flushed by a thread
    of their own (the I/O threads only queue them)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.broken = threading.Event()
        self.thread = threading.Thread(target=self._write, name="sockshock log", daemon=True)
        self.thread.start()

    def add(self, event: FaultEvent, proxy: str | None = None) -> None:
        self.queue.put(event_json(event, proxy))

    def _write(self) -> None:
        stream = self.stream
        while True:
            record = self.queue.get()
            try:
                while record is not None:
                    stream.write(json.dumps(record, default=str) + "\n")
                    try:
                        record = self.queue.get_nowait()
                    except queue.Empty:
                        break
                stream.flush()
            except (OSError, ValueError):  # the file or pipe went away
                self.broken.set()
                return
            if record is None:
                return

    def close(self) -> None:
        """Write what is queued, then stop (bounded)."""
        self.queue.put(None)
        self.thread.join(10)


def _stdout_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader went away."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are always reported
    try:
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except OSError:
        return False


def _say(text: str) -> bool:
    """Print a line on stdout, flushed; False if stdout has gone."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError, OSError):
        with contextlib.suppress(OSError):  # no second error when Python exits
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return False
    return True


def _note(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"sockshock proxy: {text}", file=sys.stderr, flush=True)


def _limit_note(limit: tuple[int, int] | None) -> None:
    if limit is not None and limit[1] > limit[0]:
        _note(f"raised the open-file limit from {limit[0]} to {limit[1]} (two per connection)")


def _scenario_models(name: str) -> tuple[list[Any], int | None, str]:
    from sockshock._scenarios import find

    scenario = find(name, source="--scenario")
    if scenario.server.tls:
        raise InvalidArgument(
            f"--scenario {name!r}: tls = true: the proxy forwards the encrypted bytes and "
            "cannot serve TLS; run it with sockshock run"
        )
    skipped = []
    if scenario.clients:
        kinds = ", ".join(client.kind for client in scenario.clients)
        skipped.append(f"its misbehaving clients ({kinds})")
    skipped.append("its load and expectations")
    note = (
        f"scenario {scenario.name!r}: the proxy runs its faults and seed only, not "
        f"{' or '.join(skipped)}; sockshock run {scenario.name} --target HOST:PORT runs "
        "them too"
    )
    return list(scenario.faults), scenario.seed, note


def proxy_main(argv: Sequence[str] | None = None) -> int:
    """``sockshock proxy``: run a fault proxy (or toxiproxy's API over many) until
    SIGINT, SIGTERM or SIGHUP.

    Prints the listening address (``127.0.0.1:PORT``, ``[::1]:PORT`` or the Unix
    path; with ``--api``, the API's) as one flushed line on stdout, the seed and
    models on stderr, and the fault log on stdout at exit.

    Args:
        argv: the arguments after ``proxy`` (default: ``sys.argv[1:]``).

    Returns:
        0 after a signal, an abrupt shutdown or stdout going away; 2 for a usage
        error (one line on stderr); 1 if the proxy could not listen or failed.
    """
    try:
        args = _proxy_parser().parse_args(argv)
        transport = "udp" if args.udp else "unix" if args.unix else "tcp"
        models = [parse_fault(text) for text in args.fault]
        seed = args.seed
        note = None
        if args.log not in (None, "-"):
            check_writable(args.log, "--log")
        if args.scenario is not None:
            scenario_models, scenario_seed, note = _scenario_models(args.scenario)
            models = [*scenario_models, *models]
            seed = scenario_seed if seed is None else seed
        if args.api is not None or args.config is not None:
            for option, value in (("--upstream", args.upstream), ("--listen", args.listen)):
                if value is not None:
                    raise InvalidArgument(
                        f"{option} does not apply with --api/--config: proxies are created "
                        "through the API or the config file"
                    )
            if models or args.udp or args.unix:
                raise InvalidArgument(
                    "--fault, --scenario, --udp and --unix do not apply with --api/--config: "
                    "give each proxy its toxics through the API"
                )
            return _serve_api(args, seed)
        if args.upstream is None:
            raise _UsageError("--upstream is required (or --api HOST:PORT for toxiproxy's API)")
        upstream = _parse_address(args.upstream, transport, "--upstream")
        listen = None if args.listen is None else _parse_address(args.listen, transport, "--listen")
        proxy = FaultProxy(
            upstream, listen=listen, faults=models, seed=seed, transport=transport_of(transport)
        )
        if note is not None:  # only once the scenario's faults are known to fit
            _note(note)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except (_UsageError, InvalidArgument) as exc:
        _note(str(exc))
        return 2
    log = _open_log(args.log)
    if log is None and args.log is not None:
        return 1
    if log is not None:
        proxy.on_event = log.add
    try:
        proxy.start()
    except OSError as exc:
        _note(f"{exc.strerror or exc}")
        return 1
    _limit_note(proxy.open_file_limit)
    code = 0
    try:
        with _signals(proxy.request_stop):
            if _say(format_address(proxy.address)):
                models_text = ", ".join(m.describe() for m in proxy.plan.models) or "none"
                _note(
                    f"{transport} {format_address(proxy.address)} -> "
                    f"{format_address(proxy.upstream)}, seed {proxy.plan.seed}, faults: "
                    f"{models_text}"
                )
                _wait(proxy.wait_stopped, proxy.request_stop, log)
    finally:
        try:
            proxy.stop()
        except ProxyError as exc:
            _note(str(exc))
            code = 1
        if log is not None:
            log.close()
        if proxy.loops_refused:
            _note(f"refused {proxy.loops_refused} client(s) that came from the proxy itself")
        _say(proxy.plan.describe(limit=None))
    return code


def _open_log(path: str | None) -> _EventLog | None:
    if path is None:
        return None
    if path == "-":
        return _EventLog(sys.stdout)
    try:
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115  (closed by the process)
    except OSError as exc:
        _note(f"cannot write --log {path!r}: {exc.strerror or exc}")
        return None
    return _EventLog(stream)


@contextlib.contextmanager
def _signals(stop: Callable[[], None]) -> Any:
    restore: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop()

        for name in _SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                restore[signum] = signal.signal(signum, on_signal)
    try:
        yield
    finally:
        for signum, handler in restore.items():
            signal.signal(signum, handler)


def _wait(
    stopped: Callable[[float], bool], stop: Callable[[], None], log: _EventLog | None
) -> None:
    """Until stopped; a stdout (or ``--log`` stream) that went away stops it."""
    while not stopped(_STDOUT_POLL):
        if _stdout_gone() or (log is not None and log.broken.is_set()):
            stop()
            stopped(5.0)
            return


def _serve_api(args: argparse.Namespace, seed: int | None) -> int:
    registry = Registry(seed)
    log = _open_log(args.log)
    if log is None and args.log is not None:
        return 1
    if log is not None:
        registry.on_event = lambda name, event: log.add(event, name)
    api: Any = None
    done = threading.Event()
    try:
        if args.config is not None:
            _populate(registry, args.config)
        if args.api is not None:
            host, port = _parse_address(args.api, "tcp", "--api")
            try:
                api = serve_api((host, port), registry)
            except OSError as exc:
                _note(f"cannot listen on --api {args.api}: {exc.strerror or exc}")
                registry.close()
                return 1
    except InvalidArgument as exc:
        _note(str(exc))
        registry.close()
        return 2
    except ApiError as exc:
        _note(f"--config {args.config}: {exc.message}")
        registry.close()
        return 2 if exc.status == 400 else 1  # a bad file is a usage error; in use is not
    _limit_note(raise_open_file_limit())
    code = 0
    try:
        with _signals(lambda: done.set()):
            where = format_address(api.server_address) if api is not None else "(no API)"
            if _say(where):
                names = ", ".join(entry.name for entry in registry) or "none yet"
                _note(f"toxiproxy API on {where}; proxies: {names}")
                _wait(done.wait, done.set, log)
    finally:
        if api is not None:
            api.shutdown()
            api.server_close()
        entries = list(registry)
        registry.close()
        if log is not None:
            log.close()
        lines = []
        for entry in entries:  # every event, whichever toxics made them
            lines.append(
                f"proxy {entry.name!r} ({entry.listen} -> {entry.upstream}): "
                f"{entry.fired} fault(s) injected, seed {entry.proxy.plan.seed}"
            )
            lines.extend(f"  connection {e.connection}: {e}" for e in entry.events)
            if entry.fired > len(entry.events):
                lines.append(
                    f"  ... and {entry.fired - len(entry.events)} more (--log FILE has all)"
                )
        _say("\n".join(lines) or "no proxies")
    return code


def _populate(registry: Registry, path: str) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise InvalidArgument(f"--config {path}: {exc.strerror or exc}") from None
    try:
        bodies = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"--config {path}: not JSON: {exc}") from None
    _, error = registry.populate(bodies)
    if error is not None:
        raise error


if __name__ == "__main__":
    sys.exit(proxy_main())

"""What a scenario file says, checked: every mistake, each with ``file:line``, the
key, the value and what is allowed, reported together (``_report``).

The format (``scenarios/README.md`` has it in full)::

    name = "slowloris"                 # default: the file's name
    description = "..."
    duration = 0.5                     # seconds the misbehaving clients run (<= 60)
    seed = 1                           # default: random (printed with the results)

    [server]                           # what `sockshock run SCENARIO` serves by default
    class = "ThreadingTCPServer"       # a name from sockshock.socketserver or module:attr
    handler = "sockshock._harness._handlers:LineEcho"
    tls = false
    attrs = { daemon_threads = true }  # server attributes (serving()'s **server_attrs)

    [[faults]]                         # fault models (sockshock.faults), any number
    model = "SlowClient"
    pause = 0.05

    [[clients]]                        # misbehaving clients (sockshock.clients), any number
    kind = "slowloris"
    count = 5

    [load]                             # well-behaved clients, meanwhile
    clients = 10
    concurrency = 4
    request = "ping\\n"

    [expect]
    answered = "all"                   # or a fraction: every complete request answered
    stops_within = 1.0                 # seconds the server may take to stop afterwards
    no_leaks = true                    # threads, descriptors, children, socket files
    handler_errors = "none"            # "none", "any", or a list of exception names
"""

from __future__ import annotations

import builtins
import codecs
import inspect
import math
import re
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from sockshock import _faults as F
from sockshock._clients import ClientSpec
from sockshock._scenarios._report import Mistake, Report
from sockshock._scenarios._toml import Located, read
from sockshock._util import SEED_MAX, InvalidArgument, did_you_mean

_T = TypeVar("_T")

__all__ = ["Expectations", "Load", "Scenario", "ServerSection", "examine", "load", "parse"]


_TOP = {
    "name": str,
    "description": str,
    "duration": float,
    "seed": int,
    "server": dict,
    "faults": list,
    "clients": list,
    "load": dict,
    "expect": dict,
}
_SERVER = {"class": str, "handler": str, "tls": bool, "attrs": dict}
_LOAD = {"clients": int, "concurrency": int, "request": str, "timeout": float}
_EXPECT = {
    "answered": (str, float, int),
    "stops_within": (float, int),
    "no_leaks": bool,
    "handler_errors": (str, list),
}


@dataclass(frozen=True)
class ServerSection:
    """``[server]``: what ``sockshock run SCENARIO`` serves unless told otherwise."""

    server_class: str = "ThreadingTCPServer"
    handler: str | None = None  # default: sockshock._harness._handlers' echo for the transport
    tls: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Load:
    """``[load]``: well-behaved clients that send ``request`` and want a reply."""

    clients: int = 10
    concurrency: int = 4
    request: bytes = b"ping\n"
    timeout: float = 2.0


@dataclass(frozen=True)
class Expectations:
    """``[expect]``: what must hold for the scenario to pass."""

    answered: float = 1.0  # the fraction of the load's requests answered
    stops_within: float = 1.0
    no_leaks: bool = True
    handler_errors: tuple[str, ...] | None = ()  # None: any; (): none; names: allowed


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: :func:`load` makes them."""

    name: str
    path: Path | None
    description: str = ""
    duration: float = 0.5
    seed: int | None = None
    server: ServerSection = field(default_factory=ServerSection)
    faults: tuple[F.FaultModel, ...] = ()
    clients: tuple[ClientSpec, ...] = ()
    load: Load = field(default_factory=Load)
    expect: Expectations = field(default_factory=Expectations)
    located: Located | None = field(default=None, compare=False, repr=False)

    def where(self, *key: Any) -> str | None:
        """``file:line`` of ``key`` (``("server", "class")``), for error messages;
        None for a scenario not read from a file."""
        return self.located.where(*key) if self.located is not None else None

    def plan(self, seed: int | None = None) -> F.FaultPlan:
        """A fresh plan of the scenario's models (``seed``, else its own, else random)."""
        return F.FaultPlan(*self.faults, seed=seed if seed is not None else self.seed)


#: What a TOML user calls each type a key may take.
_TOML_NAMES: dict[type, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a table",
    list: "an array",
}


def _types(wanted: Any) -> tuple[type, ...]:
    return wanted if isinstance(wanted, tuple) else (wanted,)


def _fail(located: Located, key: tuple[Any, ...], text: str) -> NoReturn:
    """``file:line: text``, about ``key``."""
    raise Mistake(f"{located.where(*key)}: {text}", key)


def _check_item(
    located: Located,
    allowed: dict[str, Any],
    key: tuple[Any, ...],
    name: str,
    item: str,
    value: Any,
) -> None:
    if item not in allowed:
        _fail(
            located,
            (*key, item),
            f"unknown key {item!r} in {name} (value {value!r}); "
            f"{did_you_mean(item, allowed)}allowed: {', '.join(allowed)}",
        )
    types = _types(allowed[item])
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return  # an int where a float is wanted
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        wanted = " or ".join(_TOML_NAMES.get(t, f"a {t.__name__}") for t in types)
        _fail(located, (*key, item), f"{item}={value!r} in {name} must be {wanted}")


def _check_table(
    report: Report,
    located: Located,
    table: Any,
    allowed: dict[str, Any],
    key: tuple[Any, ...],
    name: str,
) -> dict[str, Any]:
    """Unknown keys and wrong types, each a problem named with its line; the items
    that are neither (none if ``table`` is not a table)."""
    if not isinstance(table, dict):
        with report.checking(*key):
            _fail(located, key, f"{name} must be a table, not {type(table).__name__} {table!r}")
        return {}
    good = {}
    for item, value in table.items():
        with report.checking(*key, item):
            _check_item(located, allowed, key, name, item, value)
            good[item] = value
    return good


def _bound(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _number(
    located: Located,
    key: tuple[Any, ...],
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
) -> None:
    bracket = "(" if low_open else "["
    allowed = f"{bracket}{_bound(low)}, {_bound(high)}]"
    if isinstance(value, float) and not math.isfinite(value):
        _fail(located, key, f"{key[-1]}={value!r} must be a finite number in {allowed}")
    if value < low or value > high or (low_open and value == low):
        _fail(located, key, f"{key[-1]}={value!r} must be in {allowed}")


def _located(
    located: Located, key: tuple[Any, ...], table: dict[str, Any], exc: InvalidArgument
) -> Mistake:
    """The error a model gave, with the line of the key it names."""
    message = str(exc)
    culprit = next((k for k in table if message.startswith(f"{k}=") or f" {k}=" in message), None)
    at = (*key, culprit) if culprit else key
    return Mistake(f"{located.where(*at)}: {message}", at)


def _parameters(cls: type[F.FaultModel]) -> dict[str, bool]:
    """A model's parameters: name -> whether it must be given."""
    return {
        name: param.default is inspect.Parameter.empty
        for name, param in inspect.signature(cls).parameters.items()
        if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    }


def _model(report: Report, located: Located, index: int, table: Any) -> F.FaultModel | None:
    """The model of ``[[faults]]`` entry ``index``; each unknown parameter is a
    problem of its own, and the known ones are still checked (None: a required one
    is missing as well, so the model cannot be made)."""
    key = ("faults", index)
    if not isinstance(table, dict):
        _fail(located, key, "each [[faults]] entry must be a table")
    if "model" not in table:
        _fail(
            located,
            key,
            f'a [[faults]] entry needs a model = "..."; one of {", ".join(sorted(F.MODELS))}',
        )
    name = table["model"]
    try:
        cls = F.model_named(name, where=f"{located.where(*key, 'model')}: [[faults]] model")
    except InvalidArgument as exc:
        raise Mistake(str(exc), (*key, "model")) from None
    params = {k: v for k, v in table.items() if k != "model"}
    known = _parameters(cls)
    for param, value in params.items():
        if param not in known:
            with report.checking(*key, param):
                _fail(
                    located,
                    (*key, param),
                    f"unknown parameter {param!r} of {name} ({param} = {value!r}); "
                    f"{did_you_mean(param, known)}parameters: {', '.join(known)}",
                )
    missing = [param for param, required in known.items() if required and param not in params]
    if missing and set(params) - set(known):
        return None  # a misspelled parameter is the missing one, most likely: said once
    if missing:
        _fail(
            located,
            (*key, "model"),
            f"{name} needs {', '.join(repr(m) for m in missing)} (parameters: {', '.join(known)})",
        )
    given = {k: v for k, v in params.items() if k in known}
    try:
        return _made(
            report,
            key,
            given,
            lambda kept: cls(**kept),
            lambda exc, kept: _located(located, key, kept, exc),
            required={param for param, required in known.items() if required},
        )
    except InvalidArgument:
        raise
    except TypeError as exc:  # pragma: no cover - the parameters were checked above
        _fail(located, key, f"{name}: {exc}")


def _made(
    report: Report,
    key: tuple[Any, ...],
    table: dict[str, Any],
    make: Callable[[dict[str, Any]], _T],
    blame: Callable[[InvalidArgument, dict[str, Any]], Mistake],
    *,
    required: Container[str],
) -> _T:
    """``make(table)``; while it refuses a value it can do without (one it was given,
    not a required one), that is a problem of its own, and it is made again without
    it -- so that each bad value of an entry is reported, not just the first."""
    kept = dict(table)
    while True:
        try:
            return make(kept)
        except InvalidArgument as exc:
            mistake = blame(exc, kept)
            culprit = mistake.key[len(key)] if len(mistake.key) > len(key) else None
            if culprit is None or culprit in required or culprit not in kept:
                raise mistake from None
            report.add(mistake, None)
            del kept[culprit]


def _client(report: Report, located: Located, index: int, table: Any) -> ClientSpec:
    key = ("clients", index)
    if not isinstance(table, dict):
        _fail(located, key, "each [[clients]] entry must be a table")
    source = located.where(*key)

    def blame(exc: InvalidArgument, table: dict[str, Any]) -> Mistake:
        message = str(exc)
        culprit = next(
            (
                k
                for k in table
                if message.startswith(f"{k}=") or f" {k}=" in message or f"({k}=" in message
            ),
            None,
        )
        # "file:line: what is wrong", as every other scenario error reads
        message = message.replace(f" (from {source})", "").replace(source, "").rstrip()
        at = (*key, culprit) if culprit is not None else key
        return Mistake(f"{located.where(*at)}: {message}", at)

    return _made(
        report,
        key,
        table,
        lambda kept: ClientSpec.from_mapping(kept, source=source),
        blame,
        required={"kind"},
    )


def _escaped(located: Located, key: tuple[Any, ...], text: str) -> bytes:
    try:
        value: bytes = codecs.escape_decode(text.encode())[0]
    except ValueError as exc:
        _fail(located, key, f"{key[-1]}={text!r} is not a valid escaped string ({exc})")
    if not value:
        _fail(located, key, f"{key[-1]} is empty")
    return value


def _server(report: Report, located: Located, table: Any) -> ServerSection:
    table = _check_table(report, located, table, _SERVER, ("server",), "[server]")
    return ServerSection(
        table.get("class", "ThreadingTCPServer"),
        table.get("handler"),
        table.get("tls", False),
        dict(table.get("attrs", {})),
    )


def _load(report: Report, located: Located, table: Any) -> Load:
    table = _check_table(report, located, table, _LOAD, ("load",), "[load]")
    load = Load()
    clients = table.get("clients", load.clients)
    with report.checking("load", "clients"):
        _number(located, ("load", "clients"), clients, 0, 1000)
    concurrency = table.get("concurrency", load.concurrency)
    with report.checking("load", "concurrency"):
        _number(located, ("load", "concurrency"), concurrency, 1, 64)
    timeout = float(table.get("timeout", load.timeout))
    with report.checking("load", "timeout"):
        _number(located, ("load", "timeout"), timeout, 0, 60, low_open=True)
    request = load.request
    if "request" in table:
        with report.checking("load", "request"):
            request = _escaped(located, ("load", "request"), table["request"])
    return Load(clients, concurrency, request, timeout)


def _answered(located: Located, answered: Any) -> float:
    if answered == "all":
        return 1.0
    if isinstance(answered, str):
        _fail(
            located,
            ("expect", "answered"),
            f'answered={answered!r} must be "all" or a fraction in [0, 1]',
        )
    _number(located, ("expect", "answered"), answered, 0, 1)
    return float(answered)


def _handler_errors(report: Report, located: Located, errors: Any) -> tuple[str, ...] | None:
    key = ("expect", "handler_errors")
    if errors == "none":
        return ()
    if errors == "any":
        return None
    if not (
        isinstance(errors, list) and all(isinstance(e, str) and _NAME.match(e) for e in errors)
    ):
        _fail(
            located,
            key,
            f'handler_errors={errors!r} must be "none", "any" or a list of exception class names',
        )
    where = located.where(*key)
    allowed = []
    for name in errors:  # each name that is not an exception class: a problem of its own
        with report.checking(*key):
            allowed.append(_exception_name(where, name))
    return tuple(allowed)


def _expect(report: Report, located: Located, table: Any) -> Expectations:
    table = _check_table(report, located, table, _EXPECT, ("expect",), "[expect]")
    answered = 1.0
    with report.checking("expect", "answered"):
        answered = _answered(located, table.get("answered", "all"))
    stops = float(table.get("stops_within", 1.0))
    with report.checking("expect", "stops_within"):
        _number(located, ("expect", "stops_within"), stops, 0, 60, low_open=True)
    allowed: tuple[str, ...] | None = ()
    with report.checking("expect", "handler_errors"):
        allowed = _handler_errors(report, located, table.get("handler_errors", "none"))
    return Expectations(answered, stops, table.get("no_leaks", True), allowed)


_NAME = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")


def _exception_name(where: str, name: str) -> str:
    """An exception class's name -- built-in (``ConnectionResetError``), of ``ssl``
    or ``socket`` (``SSLEOFError``), or ``module:Class`` -- as handler failures are
    judged by it; one error for anything else."""
    if ":" in name:
        from sockshock._harness import import_object

        try:
            found = import_object(name, source="handler_errors")
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}: {exc}") from None
    else:
        import socket
        import ssl

        found = next(
            (getattr(module, name) for module in (builtins, ssl, socket) if hasattr(module, name)),
            None,
        )
    if isinstance(found, type) and issubclass(found, BaseException):
        return found.__name__
    known = [
        n
        for module in (builtins,)
        for n in dir(module)
        if isinstance(getattr(module, n), type) and issubclass(getattr(module, n), BaseException)
    ]
    raise InvalidArgument(
        f"{where}: handler_errors: {name!r} is not an exception class; "
        f"{did_you_mean(name, known)}give built-in ones (ConnectionResetError), ssl's or "
        "socket's (SSLEOFError), or 'module:Class'"
    )


def parse(located: Located, report: Report) -> Scenario:
    """The scenario in a parsed file, checked: every problem goes to ``report``, and
    what has none is kept (an entry of ``faults`` or ``clients`` with a problem is
    left out: ``report.indices`` maps those kept to the file's)."""
    data = _check_table(report, located, located.data, _TOP, (), "the scenario")
    name = data.get("name", located.path.stem)
    with report.checking("name"):
        if not name.strip():
            _fail(
                located,
                ("name",),
                f"name={name!r} is empty; give the scenario a name (default: the file's name)",
            )
    report.scenario = name if name.strip() else located.path.stem
    duration = float(data.get("duration", 0.5))
    with report.checking("duration"):
        _number(located, ("duration",), duration, 0, 60, low_open=True)
    seed = data.get("seed")
    if seed is not None:
        with report.checking("seed"):
            _number(located, ("seed",), seed, 0, SEED_MAX)
    faults: list[F.FaultModel] = []
    clients: list[ClientSpec] = []
    report.indices.update(faults=[], clients=[])
    for index, table in enumerate(data.get("faults", [])):
        with report.checking("faults", index):
            model = _model(report, located, index, table)
            if model is not None:
                faults.append(model)
                report.indices["faults"].append(index)
    for index, table in enumerate(data.get("clients", [])):
        with report.checking("clients", index):
            clients.append(_client(report, located, index, table))
            report.indices["clients"].append(index)
    return Scenario(
        name=report.scenario,
        path=located.path,
        located=located,
        description=data.get("description", ""),
        duration=duration,
        seed=seed,
        server=_server(report, located, data.get("server", {})),
        faults=tuple(faults),
        clients=tuple(clients),
        load=_load(report, located, data.get("load", {})),
        expect=_expect(report, located, data.get("expect", {})),
    )


def examine(path: Path, report: Report) -> Scenario | None:
    """Read and check the scenario file at ``path``, every problem into ``report``;
    the scenario (what has no problem), or None if the file cannot be read as TOML."""
    try:
        located = read(path)
    except InvalidArgument as exc:
        report.add(exc, None)
        return None
    return parse(located, report)


def load(path: str | Path) -> Scenario:
    """Read and check the scenario file at ``path``.

    Raises:
        InvalidArgument: every mistake in the file, together: one alone as
            ``file:line: what is wrong``; several numbered, one a line, in file
            order, under ``N problems in FILE:``.
    """
    report = Report(Path(path))
    scenario = examine(Path(path), report)
    report.raise_if_any()
    assert scenario is not None
    return scenario

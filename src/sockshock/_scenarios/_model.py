"""What a scenario file says, checked: one error per mistake, with ``file:line``, the
key, the value and what is allowed.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sockshock import _faults as F
from sockshock._clients import ClientSpec
from sockshock._scenarios._toml import Located, read
from sockshock._util import SEED_MAX, InvalidArgument, did_you_mean

__all__ = ["Expectations", "Load", "Scenario", "ServerSection", "load"]


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


def _types(wanted: Any) -> tuple[type, ...]:
    return wanted if isinstance(wanted, tuple) else (wanted,)


def _check_table(
    located: Located, table: Any, allowed: dict[str, Any], key: tuple[Any, ...], name: str
) -> dict[str, Any]:
    """Unknown keys and wrong types, each named with its line."""
    if not isinstance(table, dict):
        raise InvalidArgument(
            f"{located.where(*key)}: {name} must be a table, not {type(table).__name__} {table!r}"
        )
    for item, value in table.items():
        if item not in allowed:
            raise InvalidArgument(
                f"{located.where(*key, item)}: unknown key {item!r} in {name} "
                f"(value {value!r}); {did_you_mean(item, allowed)}allowed: {', '.join(allowed)}"
            )
        types = _types(allowed[item])
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            continue  # an int where a float is wanted
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(
                "table" if t is dict else "array" if t is list else t.__name__ for t in types
            )
            raise InvalidArgument(
                f"{located.where(*key, item)}: {item}={value!r} in {name} must be a {wanted}"
            )
    return table


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
        raise InvalidArgument(
            f"{located.where(*key)}: {key[-1]}={value!r} must be a finite number in {allowed}"
        )
    if value < low or value > high or (low_open and value == low):
        raise InvalidArgument(f"{located.where(*key)}: {key[-1]}={value!r} must be in {allowed}")


def _located(
    located: Located, key: tuple[Any, ...], table: dict[str, Any], exc: InvalidArgument
) -> InvalidArgument:
    """The error a model or client gave, with the line of the key it names."""
    message = str(exc)
    culprit = next((k for k in table if message.startswith(f"{k}=") or f" {k}=" in message), None)
    where = located.where(*key, culprit) if culprit else located.where(*key)
    return type(exc)(f"{where}: {message}")


def _parameters(cls: type[F.FaultModel]) -> dict[str, bool]:
    """A model's parameters: name -> whether it must be given."""
    return {
        name: param.default is inspect.Parameter.empty
        for name, param in inspect.signature(cls).parameters.items()
        if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    }


def _model(located: Located, index: int, table: dict[str, Any]) -> F.FaultModel:
    key = ("faults", index)
    if not isinstance(table, dict):
        raise InvalidArgument(f"{located.where(*key)}: each [[faults]] entry must be a table")
    if "model" not in table:
        raise InvalidArgument(
            f"{located.where(*key)}: a [[faults]] entry needs a model = "
            f'"..."; one of {", ".join(sorted(F.MODELS))}'
        )
    name = table["model"]
    cls = F.model_named(name, where=f"{located.where(*key, 'model')}: [[faults]] model")
    params = {k: v for k, v in table.items() if k != "model"}
    known = _parameters(cls)
    for param, value in params.items():
        if param not in known:
            raise InvalidArgument(
                f"{located.where(*key, param)}: unknown parameter {param!r} of {name} "
                f"({param} = {value!r}); {did_you_mean(param, known)}parameters: "
                f"{', '.join(known)}"
            )
    missing = [param for param, required in known.items() if required and param not in params]
    if missing:
        raise InvalidArgument(
            f"{located.where(*key, 'model')}: {name} needs "
            f"{', '.join(repr(m) for m in missing)} (parameters: "
            f"{', '.join(known)})"
        )
    try:
        return cls(**params)
    except InvalidArgument as exc:
        raise _located(located, key, params, exc) from None
    except TypeError as exc:  # pragma: no cover - the parameters were checked above
        raise InvalidArgument(f"{located.where(*key)}: {name}: {exc}") from None


def _client(located: Located, index: int, table: dict[str, Any]) -> ClientSpec:
    key = ("clients", index)
    if not isinstance(table, dict):
        raise InvalidArgument(f"{located.where(*key)}: each [[clients]] entry must be a table")
    source = located.where(*key)
    try:
        return ClientSpec.from_mapping(table, source=source)
    except InvalidArgument as exc:
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
        where = located.where(*key, culprit) if culprit is not None else source
        raise type(exc)(f"{where}: {message}") from None


def _escaped(located: Located, key: tuple[Any, ...], text: str) -> bytes:
    try:
        value: bytes = codecs.escape_decode(text.encode())[0]
    except ValueError as exc:
        raise InvalidArgument(
            f"{located.where(*key)}: {key[-1]}={text!r} is not a valid escaped string ({exc})"
        ) from None
    if not value:
        raise InvalidArgument(f"{located.where(*key)}: {key[-1]} is empty")
    return value


def _server(located: Located, table: dict[str, Any]) -> ServerSection:
    table = _check_table(located, table, _SERVER, ("server",), "[server]")
    return ServerSection(
        table.get("class", "ThreadingTCPServer"),
        table.get("handler"),
        table.get("tls", False),
        dict(table.get("attrs", {})),
    )


def _load(located: Located, table: dict[str, Any]) -> Load:
    table = _check_table(located, table, _LOAD, ("load",), "[load]")
    load = Load()
    clients = table.get("clients", load.clients)
    _number(located, ("load", "clients"), clients, 0, 1000)
    concurrency = table.get("concurrency", load.concurrency)
    _number(located, ("load", "concurrency"), concurrency, 1, 64)
    timeout = float(table.get("timeout", load.timeout))
    _number(located, ("load", "timeout"), timeout, 0, 60, low_open=True)
    request = (
        _escaped(located, ("load", "request"), table["request"])
        if "request" in table
        else load.request
    )
    return Load(clients, concurrency, request, timeout)


def _expect(located: Located, table: dict[str, Any]) -> Expectations:
    table = _check_table(located, table, _EXPECT, ("expect",), "[expect]")
    answered: Any = table.get("answered", "all")
    if answered == "all":
        answered = 1.0
    elif isinstance(answered, str):
        raise InvalidArgument(
            f"{located.where('expect', 'answered')}: answered={answered!r} "
            'must be "all" or a fraction in [0, 1]'
        )
    _number(located, ("expect", "answered"), answered, 0, 1)
    stops = float(table.get("stops_within", 1.0))
    _number(located, ("expect", "stops_within"), stops, 0, 60, low_open=True)
    errors: Any = table.get("handler_errors", "none")
    where = located.where("expect", "handler_errors")
    if errors == "none":
        allowed: tuple[str, ...] | None = ()
    elif errors == "any":
        allowed = None
    elif isinstance(errors, list) and all(isinstance(e, str) and _NAME.match(e) for e in errors):
        allowed = tuple(_exception_name(where, name) for name in errors)
    else:
        raise InvalidArgument(
            f'{where}: handler_errors={errors!r} must be "none", "any" '
            "or a list of exception class names"
        )
    return Expectations(float(answered), stops, table.get("no_leaks", True), allowed)


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


def parse(located: Located) -> Scenario:
    """The scenario in a parsed file, checked."""
    data = _check_table(located, located.data, _TOP, (), "the scenario")
    duration = float(data.get("duration", 0.5))
    _number(located, ("duration",), duration, 0, 60, low_open=True)
    seed = data.get("seed")
    if seed is not None:
        _number(located, ("seed",), seed, 0, SEED_MAX)
    faults = tuple(_model(located, i, t) for i, t in enumerate(data.get("faults", [])))
    clients = tuple(_client(located, i, t) for i, t in enumerate(data.get("clients", [])))
    name = data.get("name", located.path.stem)
    if not name.strip():
        raise InvalidArgument(
            f"{located.where('name')}: name={name!r} is empty; give the "
            "scenario a name (default: the file's name)"
        )
    return Scenario(
        name=name,
        path=located.path,
        located=located,
        description=data.get("description", ""),
        duration=duration,
        seed=seed,
        server=_server(located, data.get("server", {})),
        faults=faults,
        clients=clients,
        load=_load(located, data.get("load", {})),
        expect=_expect(located, data.get("expect", {})),
    )


def load(path: str | Path) -> Scenario:
    """Read and check the scenario file at ``path``.

    Raises:
        InvalidArgument: the first mistake, as ``file:line: what is wrong``.
    """
    return parse(read(Path(path)))

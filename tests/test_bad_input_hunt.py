"""The bad-input hunt (issue 19 item 11): hundreds of bad inputs over every entry
point, each of which must get ONE clear error.

A clear error is:

* from Python: one ``sockshock.errors.InvalidArgument`` (a ``ValueError`` and a
  ``TypeError``) whose message holds the value as given (``name=value``) and
  where it came from;
* from the command line: exit status 2 and one line on stderr, ``sockshock CMD: ...``,
  naming the option and its value (``sockshock check`` reports invalid files as
  ``INVALID file:line: ...`` lines and exits 1: that is its verdict, not a usage error);
* from a scenario file: the file's name and the line of the bad key;
* from pytest: a usage error naming the option, ini setting or marker and the test.

The table is built from generators (each model's parameters x bad values, each
function's parameters x bad values) so that it stays big and cheap: everything runs
in process, nothing binds anything but loopback, and a case that is accepted by
mistake is stopped by a guard (``_no_server``, ``_no_run``) rather than left running.
``python tests/test_bad_input_hunt.py`` prints the counts per entry point.
"""

from __future__ import annotations

import errno
import inspect
import math
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import sockshock
import sockshock.clients as C
import sockshock.layer as L
import sockshock.scenarios as SC
import sockshock.scripts as S
import sockshock.strategies as ST
import sockshock.tls as T
from sockshock import faults as F
from sockshock._scenarios import resolve
from sockshock.errors import InvalidArgument
from sockshock.handlers import DatagramEcho, LineEcho

pytest_plugins = ["pytester"]

NAN = math.nan
INF = math.inf
HUGE = 10**30


class Case(NamedTuple):
    where: str  # the entry point
    given: str  # what was given, for the test id
    call: Callable[[], object]
    fragments: tuple[str, ...]  # each must appear in the message
    error: type[Exception] = InvalidArgument


CASES: list[Case] = []


def case(
    where: str,
    given: str,
    call: Callable[[], object],
    *fragments: str,
    error: type[Exception] = InvalidArgument,
) -> None:
    CASES.append(Case(where, given, call, fragments, error))


def named(name: str, value: Any) -> str:
    """How a check names a bad value: ``seconds=-1``."""
    return f"{name}={value!r}"


# -- fault models: every parameter x bad values ------------------------------------

_REQUIRED = {"max_chunk": 3, "seconds": 0.01, "bytes_per_second": 1000}
_BAD_FLOAT = (None, "1", True, NAN, INF, -INF, -1, 1e300, [1], b"1")
_BAD_INT = (None, "1", True, 1.5, NAN, -1, HUGE, [1])
_BAD_CHOICE = (None, 1, "", "sideways", b"in")
_BAD_CONNECTIONS = (
    ("x", "connections='x'"),
    (-1, "connections=-1"),
    ([], "connections=[]"),
    (1.5, "connections=1.5"),
    ([None], "connections=None"),
    (True, "connections=True"),
    ([0, -1], "connections=-1"),
    (range(-3, 2), "connections=-3"),
    ({1, 2}, "connections={1, 2}"),
)
# Any host is taken: servers adopted by inject() and install() may listen beyond
# loopback, and a scope that never matches is reported by FaultNeverFired.
_BAD_ADDRESS = (5, 1.5, [1], b"x", (5, 80), (None,))
_MODELS = [getattr(F, n) for n in F.__all__ if n not in ("FaultPlan", "Draws")]


# Limits that mean "at most" or "after": a huge one is a limit never reached, which
# works as written (no overflow), so it is accepted.
_UNBOUNDED = frozenset({"max_chunk", "nbytes", "chunk", "every", "after_bytes", "first_ops"})


def _bad_values(model: type, parameter: inspect.Parameter) -> list[tuple[Any, str]]:
    name, kind = parameter.name, str(parameter.annotation)
    if name == "connections":
        return list(_BAD_CONNECTIONS)
    if name == "address":
        return [(v, named(name, v)) for v in _BAD_ADDRESS]
    if name == "errno":
        return [(v, named(name, v)) for v in ("ENOSUCH", -1, 1.5, None, True, 10**6)]
    if kind == "str":
        values: tuple[Any, ...] = _BAD_CHOICE
    elif "float" in kind:
        values = _BAD_FLOAT
    elif "int" in kind:
        values = _BAD_INT
    elif kind == "bool":
        values = (1, "yes", None)
    else:
        raise AssertionError(f"no bad values for {model.__name__}({name}: {kind})")
    return [
        (v, named(name, v))
        for v in values
        if not (v is None and parameter.default is None) and not (v == HUGE and name in _UNBOUNDED)
    ]


def _model_call(model: type, name: str, value: Any) -> Callable[[], object]:
    taken = inspect.signature(model).parameters
    kwargs = {k: v for k, v in _REQUIRED.items() if k in taken}
    kwargs[name] = value
    return lambda: model(**kwargs)


for _model in _MODELS:
    for _parameter in inspect.signature(_model).parameters.values():
        for _value, _fragment in _bad_values(_model, _parameter):
            case(
                "models",
                f"{_model.__name__}({_parameter.name}={_value!r})",
                _model_call(_model, _parameter.name, _value),
                _fragment,
                _model.__name__,
            )
    case("models", f"{_model.__name__}(bogus=1)", lambda m=_model: m(bogus=1), "bogus")
    case(
        "models",
        f"{_model.__name__}(1, 2, 3, 4, 5, 6)",
        lambda m=_model: m(1, 2, 3, 4, 5, 6),
        _model.__name__,
    )

# FaultPlan and Draws
for _value in ("1", -1, 1.5, True, 2**64, NAN):
    case(
        "FaultPlan", f"seed={_value!r}", lambda v=_value: F.FaultPlan(seed=v), named("seed", _value)
    )
for _value in ("1", -1, 1.5, True, NAN):
    case(
        "FaultPlan",
        f"log_limit={_value!r}",
        lambda v=_value: F.FaultPlan(log_limit=v),
        named("log_limit", _value),
    )
for _value in ("PartialReads", 3, None, F.PartialReads, [3]):
    _fragment = "got 3 (type=int)" if _value == [3] else repr(_value)
    case("FaultPlan", f"model {_value!r}", lambda v=_value: F.FaultPlan(v), _fragment)
for _value in ("r", 3, [3]):
    case("FaultPlan", f"rng={_value!r}", lambda v=_value: F.FaultPlan(rng=v), "rng=")
for _value in ("abc", [1.5], [-0.1], [NAN], [None], 3):
    case("Draws", f"units={_value!r}", lambda v=_value: F.Draws(v), "units")


# -- serving(): every parameter x bad values ----------------------------------------


def _serve(
    server_class: Any = "TCPServer", handler: Any = LineEcho, **kwargs: Any
) -> Callable[[], object]:
    def call() -> None:
        with sockshock.serving(server_class, handler, **kwargs):
            raise AssertionError("served anyway")

    return call


_SERVING_BAD: list[tuple[str, Any, str]] = [
    ("shutdown_timeout", v, named("shutdown_timeout", v))
    for v in ("5", None, True, NAN, INF, -1, 0, 1e9, [5])
]
_SERVING_BAD += [
    ("poll_interval", v, named("poll_interval", v)) for v in ("0.5", True, NAN, INF, -1, 0, 1e9)
]
_SERVING_BAD += [("seed", v, named("seed", v)) for v in ("1", -1, 1.5, True, 2**64)]
_SERVING_BAD += [("faults", v, named("faults", v)) for v in ("PartialReads", 3, b"x")]
_SERVING_BAD += [
    ("faults", v, f"{v[0]!r} (type={type(v[0]).__name__}) (from serving(faults=...))")
    for v in (["PartialReads"], [3], [None])
]
_SERVING_BAD += [("clock", v, named("clock", v)) for v in ("fast", 3, True)]
_SERVING_BAD += [("expect_errors", v, named("expect_errors", v)) for v in ("OSError", 3, [3])]
_SERVING_BAD += [("expect_errors", v, repr(v)) for v in ([int], (ValueError, "x"))]
_SERVING_BAD += [("tls", v, named("tls", v)) for v in ("yes", 1, [1])]
_SERVING_BAD += [("tls_strict", v, named("tls_strict", v)) for v in ("yes", 1, None)]
_SERVING_BAD += [("server_kwargs", v, named("server_kwargs", v)) for v in ([], "x", 3)]
_SERVING_BAD += [
    ("server_kwargs", {"bind_and_activate": False}, "bind_and_activate=False"),
    ("server_kwargs", {1: 2}, "server_kwargs={1: 2}"),
    ("address", ("127.0.0.1", -1), "port=-1"),
    ("address", ("127.0.0.1", "80"), "'80'"),
    ("address", ("127.0.0.1", 1.5), "1.5"),
    ("address", ("127.0.0.1", True), "True"),
    ("address", ("10.1.2.3", 0), "'10.1.2.3'"),
    ("address", ("example.com", 0), "'example.com'"),
    ("address", ("", 0), "''"),
    ("address", ("127.0.0.1",), "('127.0.0.1',)"),
    ("address", 8000, "address=8000"),
    ("address", None, "None"),
    ("address", ["127.0.0.1", 0], "['127.0.0.1', 0]"),
    ("address", (None, 0), "None"),
    ("address", (b"127.0.0.1", 0), "b'127.0.0.1'"),
    ("timeout", "x", named("timeout", "x")),
    ("timeout", NAN, named("timeout", NAN)),
    ("timeout", INF, named("timeout", INF)),
    ("request_queue_size", -1, named("request_queue_size", -1)),
    ("request_queue_size", "5", named("request_queue_size", "5")),
    ("request_queue_size", 1.5, named("request_queue_size", 1.5)),
    ("allow_reuse_address", "yes", named("allow_reuse_address", "yes")),
    ("daemon_threads", None, named("daemon_threads", None)),
    ("block_on_close", 1, named("block_on_close", 1)),
    ("address_family", "inet", named("address_family", "inet")),
    ("address_family", 12345, "12345"),
    ("socket_type", "stream", named("socket_type", "stream")),
    ("socket_type", socket.SOCK_DGRAM, "socket_type"),
    ("handle_error", None, "handle_error"),
    ("serve_forever", None, "serve_forever"),
    ("RequestHandlerClass", LineEcho, "RequestHandlerClass"),
    ("server_address", ("127.0.0.1", 0), "server_address"),
    ("shutdown_timout", 1, "did you mean shutdown_timeout=?"),
    ("poll_intervall", 1, "did you mean poll_interval=?"),
    ("fault", [F.PartialReads(1)], "did you mean faults=?"),
]
# setting a None where None is allowed is fine: skip
for _name, _value, _fragment in _SERVING_BAD:
    if _name == "address" and _value is None:
        continue
    case("serving()", f"{_name}={_value!r}", _serve(**{_name: _value}), _fragment)

for _server, _fragment in (
    ("TCPServr", "did you mean 'TCPServer'?"),
    ("", "server_class=''"),
    ("tcpserver", "did you mean 'TCPServer'?"),
    ("os:path", "'os:path'"),
    ("sockshock.handlers:LineEcho", "sockshock.handlers:LineEcho"),
    ("sockshock.handlers:Nope", "sockshock.handlers:Nope"),
    ("a:b:c", "'a:b:c'"),
    (None, "server_class=None"),
    (3.5, "server_class=3.5"),
    (int, "int"),
    (LineEcho, "LineEcho"),
    (sockshock.socketserver.BaseServer, "BaseServer"),
):
    case("serving()", f"server_class={_server!r}", _serve(_server), _fragment)
for _handler, _fragment in (
    ("LineEcho", "'LineEcho'"),
    ("sockshock.handlers:Nope", "sockshock.handlers:Nope"),
    ("os:path", "'os:path'"),
    (3, "handler_class=3"),
    (int, "int"),
    (object(), "object"),
    (sockshock.socketserver.TCPServer, "TCPServer"),
):
    case("serving()", f"handler_class={_handler!r}", _serve(handler=_handler), _fragment)
for _server, _address, _fragment in (
    ("UnixStreamServer", ("127.0.0.1", 0), "('127.0.0.1', 0)"),
    ("UnixStreamServer", "", "address=''"),
    ("UnixStreamServer", 5, "address=5"),
    ("UnixStreamServer", "127.0.0.1:80", "looks like HOST:PORT"),
    ("UnixDatagramServer", "/no/such/dir/x", "'/no/such/dir'"),
    ("UDPServer", ("10.0.0.1", 0), "'10.0.0.1'"),
    ("TCPServer", "/tmp/x.sock", "'/tmp/x.sock'"),
):
    _h = DatagramEcho if "Datagram" in _server or "UDP" in _server else LineEcho
    case(
        "serving()",
        f"{_server} address={_address!r}",
        _serve(_server, _h, address=_address),
        _fragment,
    )
case(
    "serving()",
    "max_packet_size=70000 on UDPServer",
    _serve("UDPServer", DatagramEcho, max_packet_size=10**9),
    "max_packet_size=1000000000",
)
case(
    "serving()",
    "faults=[EOFAfter(layer='plaintext')] without TLS",
    _serve(faults=[F.EOFAfter(layer="plaintext")]),
    "layer='plaintext'",
)
case(
    "serving()",
    "tls=True on a UDPServer",
    _serve("UDPServer", DatagramEcho, tls=True),
    "tls=True",
)
case(
    "serving()",
    "tls_strict=True without tls",
    _serve(tls_strict=True),
    "tls_strict=True",
)


def _in_use_call(use: Callable[[tuple[str, int]], object]) -> Callable[[], object]:
    def call() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            use(taken.getsockname())

    return call


def _serve_at(address: tuple[str, int]) -> None:
    _serve(address=address)()


# An address in use is the machine's state, not a wrong value: an OSError with
# errno EADDRINUSE (what code that retries catches), naming the address.
case(
    "serving()",
    "address in use",
    _in_use_call(_serve_at),
    "cannot listen on 127.0.0.1:",
    "it is in use",
    "(from address= of serving())",
    error=OSError,
)


# -- drive() ------------------------------------------------------------------------


def _drive(handler: Any = LineEcho, client: Any = b"x\n", **kwargs: Any) -> Callable[[], object]:
    return lambda: sockshock.drive(handler, client, **kwargs)


_DRIVE_BAD: list[tuple[str, Any, str]] = [
    ("transport", v, named("transport", v)) for v in ("streem", None, 1, "", "udp")
]
_DRIVE_BAD += [("seed", v, named("seed", v)) for v in ("1", -1, 1.5, True, 2**64)]
_DRIVE_BAD += [("faults", v, f"drive(faults=...)={v!r}") for v in ("x", 3)]
_DRIVE_BAD += [("server_attrs", v, named("server_attrs", v)) for v in ([], "x", 3)]
_DRIVE_BAD += [("uncontrolled", v, named("uncontrolled", v)) for v in ("fails", None, 1)]
_DRIVE_BAD += [
    ("uncontrolled_after", v, named("uncontrolled_after", v))
    for v in ("1", NAN, INF, -1, 0, True, 1e9)
]
_DRIVE_BAD += [("sockets", v, named("sockets", v)) for v in ("virtual", None, 1)]
_DRIVE_BAD += [("send_buffer", v, named("send_buffer", v)) for v in ("1", 1.5, -1, 0, True, HUGE)]
_DRIVE_BAD += [("max_output", v, named("max_output", v)) for v in ("1", 1.5, -1, 0, True, HUGE)]
_DRIVE_BAD += [("server", v, named("server", v)) for v in ("TCPServr", 3)]
_DRIVE_BAD += [("schedule", v, named("schedule", v)) for v in ("pct:x", "bogus", 1.5, -1, [1])]
for _name, _value, _fragment in _DRIVE_BAD:
    case("drive()", f"{_name}={_value!r}", _drive(**{_name: _value}), _fragment)
for _client, _fragment in (
    (None, "drive(client=...)=None"),
    ("text", "'text'"),
    (3, "drive(client=...)=3"),
    ([None], "None"),
    ([3], "3"),
    (["text"], "'text'"),
):
    case("drive()", f"client={_client!r}", _drive(client=_client), _fragment)
for _handler, _fragment in (
    (None, "drive(handler_class=...)=None"),
    (3, "drive(handler_class=...)=3"),
    ("Nope", "'Nope'"),
    ("os:path", "'os:path'"),
    (int, "int"),
    (sockshock.socketserver.TCPServer, "TCPServer"),
):
    case("drive()", f"handler_class={_handler!r}", _drive(_handler), _fragment)
case(
    "drive()",
    "a 70,000-byte datagram",
    _drive(DatagramEcho, b"x" * 70_000, transport="datagram"),
    "70000",
)
case(
    "drive()",
    "a stream handler with transport='datagram'",
    _drive(LineEcho, b"x\n", transport="datagram"),
    "LineEcho",
)
case(
    "drive()",
    "a datagram handler with kind='stream'",
    _drive(DatagramEcho, b"x\n", transport="stream"),
    "DatagramEcho",
)
case(
    "drive()",
    "faults=[DropDatagrams()] on a stream handler",
    _drive(faults=[F.DropDatagrams()]),
    "DropDatagrams()",
)
case(
    "drive()",
    "seed= without faults=",
    _drive(seed=3),
    "seed=3",
)


# -- inject(), audit(), server_kinds() ------------------------------------------------


def _inject(**kwargs: Any) -> Callable[[], object]:
    def call() -> None:
        with sockshock.inject(**kwargs):
            raise AssertionError("injected anyway")

    return call


for _name, _value in (
    ("faults", "PartialReads"),
    ("faults", 3),
    ("faults", ["x"]),
    ("seed", -1),
    ("seed", "1"),
    ("seed", 1.5),
    ("clock", "fast"),
    ("shutdown_timeout", -1),
    ("shutdown_timeout", NAN),
    ("shutdown_timeout", "5"),
    ("shutdown_timeout", INF),
    ("expect_errors", "OSError"),
    ("expect_errors", [3]),
):
    _fragment = (
        "'x' (type=str) (from inject(faults=...))"
        if _name == "faults" and isinstance(_value, list)
        else named(_name, _value)
    )
    _kwargs = {_name: _value}
    if _name in ("seed", "clock"):
        _kwargs["faults"] = [F.PartialReads(1)]
    case("inject()", f"{_name}={_value!r}", _inject(**_kwargs), _fragment)


def _audit(**kwargs: Any) -> Callable[[], object]:
    def call() -> None:
        with sockshock.audit(**kwargs):
            pass

    return call


for _name, _value in (
    ("grace", -1),
    ("grace", "1"),
    ("grace", NAN),
    ("grace", INF),
    ("grace", 1e9),
    ("grace", True),
    ("descriptors", "yes"),
    ("descriptors", 1),
    ("descriptors", None),
):
    case("audit()", f"{_name}={_value!r}", _audit(**{_name: _value}), named(_name, _value))

for _name, _value in (
    ("transport", "streem"),
    ("transport", 3),
    ("transport", ""),
    ("family", "inet7"),
    ("family", 3),
    ("concurrency", "threads"),
    ("concurrency", 5),
    ("concurrency", ("sync", "x")),
    ("concurrency", ["sync", 3]),
    ("base", "TCPServer"),
    ("base", int),
    ("base", LineEcho),
):
    _fragment = (
        repr(_value)
        if _name == "concurrency" and not isinstance(_value, (str, int))
        else named(_name, _value)
    )
    if _name == "concurrency" and isinstance(_value, (tuple, list)):
        _fragment = repr(_value[1])
    case(
        "server_kinds()",
        f"{_name}={_value!r}",
        lambda n=_name, v=_value: sockshock.server_kinds(**{n: v}),
        _fragment,
    )
case(
    "server_kinds()",
    "transport='tcp'",
    lambda: sockshock.server_kinds(transport="tcp"),
    "transport='tcp'",
)


# -- FaultProxy ------------------------------------------------------------------------

_UP = ("127.0.0.1", 9)


def _proxy(*args: Any, **kwargs: Any) -> Callable[[], object]:
    def call() -> None:
        proxy = sockshock.FaultProxy(*args, **kwargs)
        proxy.stop()  # never started: nothing to stop, but no leak either

    return call


for _upstream, _fragment in (
    (None, "upstream=None"),
    (9, "upstream=9"),
    ("127.0.0.1", "upstream='127.0.0.1'"),
    ("127.0.0.1:", "'127.0.0.1:'"),
    ("127.0.0.1:x", "'127.0.0.1:x'"),
    ("127.0.0.1:70000", "70000"),
    (("10.1.2.3", 80), "'10.1.2.3'"),
    (("example.com", 80), "'example.com'"),
    (("127.0.0.1", -1), "-1"),
    (("127.0.0.1", "80"), "'80'"),
    (("127.0.0.1",), "('127.0.0.1',)"),
    ((b"127.0.0.1", 80), "b'127.0.0.1'"),
    ("", "upstream=''"),
    ([1, 2], "[1, 2]"),
):
    case("FaultProxy", f"upstream={_upstream!r}", _proxy(_upstream), _fragment)
for _listen, _fragment in (
    (("10.1.2.3", 0), "'10.1.2.3'"),
    (("0.0.0.0", 0), "'0.0.0.0'"),
    (("127.0.0.1", 70000), "70000"),
    ("127.0.0.1:0", "'127.0.0.1:0'"),
    (5, "listen=5"),
    (("127.0.0.1", 1.5), "1.5"),
):
    case("FaultProxy", f"listen={_listen!r}", _proxy(_UP, listen=_listen), _fragment)
for _name, _value, _fragment in (
    ("transport", "tcpp", "transport='tcpp'"),
    ("transport", "tcp", "transport='tcp'"),
    ("transport", "udp", "transport='udp'"),
    ("transport", None, "transport=None"),
    ("transport", 1, "transport=1"),
    ("transport", "TCP", "transport='TCP'"),
    ("seed", -1, "seed=-1"),
    ("seed", "1", "seed='1'"),
    ("seed", 1.5, "seed=1.5"),
    ("seed", 2**64, "seed=18446744073709551616"),
    ("faults", "PartialReads(1)", "faults='PartialReads(1)'"),
    ("faults", [3], "3"),
    ("faults", [F.DropDatagrams()], "DropDatagrams()"),
    ("faults", [F.PartialReads(1, layer="plaintext")], "layer='plaintext'"),
):
    case("FaultProxy", f"{_name}={_value!r}", _proxy(_UP, **{_name: _value}), _fragment)
case(
    "FaultProxy",
    "PartialReads on a udp proxy",
    _proxy(_UP, transport="datagram", faults=[F.PartialReads(1)]),
    "PartialReads(max_chunk=1)",
)
case(
    "FaultProxy",
    "listen = upstream",
    _proxy(("127.0.0.1", 8123), listen=("127.0.0.1", 8123)),
    "8123",
)


def _proxy_start_at(address: tuple[str, int]) -> None:
    proxy = sockshock.FaultProxy(_UP, listen=address)
    try:
        proxy.start()
    finally:
        proxy.stop()


case(
    "FaultProxy.start()",
    "listen in use",
    _in_use_call(_proxy_start_at),
    "cannot listen on 127.0.0.1:",
    "it is in use",
    error=OSError,
)


def _on_proxy(use: Callable[[Any], object], **kwargs: Any) -> Callable[[], object]:
    def call() -> None:
        proxy = sockshock.FaultProxy(_UP, **kwargs).start()
        try:
            use(proxy)
        finally:
            proxy.stop()

    return call


for _value, _fragment in (
    ("PartialReads(1)", "faults='PartialReads(1)'"),
    ([3], "3"),
    ([F.DropDatagrams()], "DropDatagrams()"),
    ([F.PartialReads(1, layer="plaintext")], "layer='plaintext'"),
):
    case(
        "FaultProxy.set_faults()",
        f"faults={_value!r}",
        _on_proxy(lambda p, v=_value: p.set_faults(v)),
        _fragment,
    )
for _value in (-1, "1", 1.5):
    case(
        "FaultProxy.set_faults()",
        f"seed={_value!r}",
        _on_proxy(lambda p, v=_value: p.set_faults([], seed=v)),
        named("seed", _value),
    )
for _value in (-1, "1", NAN, INF, 0, 1e9):
    case(
        "FaultProxy.stop()",
        f"timeout={_value!r}",
        _on_proxy(lambda p, v=_value: p.stop(timeout=v)),
        named("timeout", _value),
    )
    if _value != 0:  # wait_stopped(0): a look, not a wait
        case(
            "FaultProxy.wait_stopped()",
            f"timeout={_value!r}",
            _on_proxy(lambda p, v=_value: p.wait_stopped(v)),
            named("timeout", _value),
        )


# -- ServerHandle methods ------------------------------------------------------------------


def _on_handle(use: Callable[[Any], object], server: str = "TCPServer") -> Callable[[], object]:
    def call() -> None:
        with sockshock.serving(server, LineEcho, poll_interval=0.01) as srv:
            use(srv)

    return call


for _method in ("wait_stopped", "wait_idle"):
    for _value in ("1", -1, NAN, INF, True, 1e9, [1]):
        case(
            f"{_method}()",
            f"timeout={_value!r}",
            _on_handle(lambda h, m=_method, v=_value: getattr(h, m)(v)),
            named("timeout", _value),
        )
for _value, _fragment in (
    ("", "name=''"),
    ("a/b", "name='a/b'"),
    ("..", "name='..'"),
    (".", "name='.'"),
    (3, "name=3"),
    (None, "name=None"),
    ("x\0y", "name='x\\x00y'"),
    (b"x", "name=b'x'"),
    ("x" * 300, "name='xxxx"),
):
    case(
        "temporary_path()",
        f"name={_value!r}"[:60],
        _on_handle(lambda h, v=_value: h.temporary_path(v)),
        _fragment,
    )
for _kwargs in (
    {"seconds": "1"},
    {"seconds": NAN},
    {"seconds": INF},
    {"seconds": 0},
    {"seconds": 1e9},
    {"seconds": 1, "busy": "1"},
    {"seconds": 1, "busy": 1.5},
    {"seconds": 1, "busy": HUGE},
    {"seconds": 1, "stalled": -1},
    {"seconds": 1, "stalled": "1"},
    {"seconds": 1, "stalled": HUGE},
    {"seconds": 1, "tolerance": NAN},
    {"seconds": 1, "tolerance": "2"},
    {"seconds": 1, "tolerance": 1e9},
    {"seconds": 1, "slack": -1},
    {"seconds": 1, "slack": NAN},
    {"seconds": 1, "slack": "0.1"},
    {"seconds": 1, "busy": 1, "request": None},
    {"seconds": 1, "busy": 1, "request": 3},
):
    _name, _value = list(_kwargs.items())[-1]
    case(
        "assert_stops_within()",
        ", ".join(f"{k}={v!r}" for k, v in _kwargs.items()),
        _on_handle(lambda h, kw=_kwargs: h.assert_stops_within(**kw)),
        named(_name, _value),
    )
for _kwargs, _fragment in (
    ({"timeout": 0}, "timeout=0"),
    ({"timeout": INF}, "timeout=inf"),
    ({"timeout": "5"}, "timeout='5'"),
    ({"timeout": True}, "timeout=True"),
    ({"tls": 1}, "tls=1"),
    ({"tls": None}, "tls=None"),
    ({"tls": "ssl"}, "tls='ssl'"),
):
    case(
        "connect()",
        ", ".join(f"{k}={v!r}" for k, v in _kwargs.items()),
        _on_handle(lambda h, kw=_kwargs: h.connect(**kw)),
        _fragment,
    )
case(
    "client_context()",
    "on a server without TLS",
    _on_handle(lambda h: h.client_context()),
    "client_context",
)


# -- sockshock.clients ------------------------------------------------------------------

_CLIENT_ADDRESS = ("127.0.0.1", 9)
_CLIENT_BAD: dict[str, tuple[Any, ...]] = {
    "count": ("1", 0, -1, 1.5, True, HUGE, None),
    "concurrency": ("1", 0, -1, 1.5, True, HUGE),
    "duration": ("1", -1, NAN, INF, True, 1e9, None),
    "timeout": ("1", -1, 0, NAN, INF, True, 1e9),
    "max_reply": ("1", -1, 1.5, True, HUGE),
    "chunk": ("1", 0, -1, 1.5, True, HUGE),
    "pause": ("1", -1, NAN, INF, 1e9),
    "interval": ("1", -1, NAN, INF, 1e9, 0),
    "hold": ("1", -1, NAN, INF, 1e9),
    "repeat": ("1", 0, -1, 1.5, HUGE),
    "rcvbuf": ("1", 0, -1, 1.5, HUGE),
    "request": ("text", 3, [b"x"]),
    "payload": ("text", 3, None),
    "until": ("text", 3),
}
for _name in C.__all__:
    _function = getattr(C, _name)
    for _parameter in list(inspect.signature(_function).parameters.values())[1:]:
        for _value in _CLIENT_BAD[_parameter.name]:
            if _value is None and _parameter.default is None:
                continue
            _fragment = (
                f"len({_parameter.name})=70000"
                if isinstance(_value, bytes) and len(_value) > 65507
                else named(_parameter.name, _value)
            )
            case(
                f"clients.{_name}()",
                f"{_parameter.name}={_value!r}"[:60],
                lambda f=_function, n=_parameter.name, v=_value: f(_CLIENT_ADDRESS, **{n: v}),
                _fragment,
                _name,
            )
    for _address, _fragment in (
        (None, "address=None"),
        (9, "address=9"),
        (("10.1.2.3", 80), "'10.1.2.3'"),
        (("127.0.0.1", 0), "0"),
        (("127.0.0.1", 70000), "70000"),
        (("127.0.0.1", "80"), "'80'"),
        ("", "address=''"),
        ("127.0.0.1:80", "looks like HOST:PORT"),
        ("/tmp/a\0b", "NUL"),
    ):
        case(
            f"clients.{_name}()",
            f"address={_address!r}",
            lambda f=_function, a=_address: f(a),
            _fragment,
        )


# -- sockshock.scripts --------------------------------------------------------------------

for _value, _fragment in (
    ("text", "data='text'"),
    (3, "data=3"),
    (None, "data=None"),
    ([b"x"], "data=[b'x']"),
):
    case("scripts.Send", f"data={_value!r}", lambda v=_value: S.Send(v), _fragment)
for _value in ("1", -1, NAN, INF, True, 1e9, None):
    case(
        "scripts.Pause",
        f"seconds={_value!r}",
        lambda v=_value: S.Pause(v),
        named("seconds", _value),
    )
for _kwargs in (
    {"size": 0},
    {"size": -1},
    {"size": "1"},
    {"size": 1.5},
    {"size": True},
    {"until": "x"},
    {"until": b""},
    {"until": 3},
):
    _name, _value = next(iter(_kwargs.items()))
    case(
        "scripts.Read", f"{_name}={_value!r}", lambda kw=_kwargs: S.Read(**kw), named(_name, _value)
    )
for _steps, _fragment in (
    ("x", "steps='x'"),
    (None, "steps=None"),
    ([b"x"], "b'x'"),
    ([3], "3"),
    ([S.Send], "Send"),
):
    case("scripts.ClientScript", f"steps={_steps!r}", lambda s=_steps: S.ClientScript(s), _fragment)
for _value in ("1", -1, 0, NAN, INF, 1e9, True):
    case(
        "scripts.ClientScript",
        f"timeout={_value!r}",
        lambda v=_value: S.ClientScript((S.Send(b"x"),), timeout=v),
        named("timeout", _value),
    )
for _value in ("x", 3):
    case(
        "scripts.ClientScript",
        f"intended={_value!r}",
        lambda v=_value: S.ClientScript((S.Send(b"x"),), intended=v),
        named("intended", _value),
    )


def _script_run(script: Any, **kwargs: Any) -> Callable[[], object]:
    def call() -> None:
        with socket.socket() as sock:
            S.ScriptRun(script, sock, **kwargs)

    return call


for _value, _fragment in (("x", "script='x'"), (None, "script=None"), ([S.Send(b"x")], "script=")):
    case("scripts.ScriptRun", f"script={_value!r}", _script_run(_value), _fragment)
case(
    "scripts.ScriptRun", "sleep=3", _script_run(S.ClientScript((S.Send(b"x"),)), sleep=3), "sleep=3"
)


# -- sockshock.strategies ------------------------------------------------------------------

for _kwargs, _fragment in (
    ({"transport": "streem"}, "transport='streem'"),
    ({"transport": None}, "transport=None"),
    ({"models": "PartialReads"}, "models='PartialReads'"),
    ({"models": [3]}, "3"),
    ({"models": []}, "models=[]"),
    ({"min_models": -1}, "min_models=-1"),
    ({"min_models": "1"}, "min_models='1'"),
    ({"max_models": -1}, "max_models=-1"),
    ({"max_models": 1.5}, "max_models=1.5"),
    ({"max_models": HUGE}, "max_models="),
    ({"min_models": 3, "max_models": 1}, "max_models=1 must be in [3,"),
    ({"max_bytes": -1}, "max_bytes=-1"),
    ({"max_bytes": "lots"}, "max_bytes='lots'"),
    ({"max_bytes": 1.5}, "max_bytes=1.5"),
    ({"max_delay": -1}, "max_delay=-1"),
    ({"max_delay": NAN}, "max_delay=nan"),
    ({"max_delay": INF}, "max_delay=inf"),
    ({"max_delay": "1"}, "max_delay='1'"),
    ({"max_decisions": -1}, "max_decisions=-1"),
    ({"max_decisions": "1"}, "max_decisions='1'"),
    ({"seeded": "yes"}, "seeded='yes'"),
    ({"scopes": 1}, "scopes=1"),
    ({"request": "text"}, "request='text'"),
    ({"request": -1}, "request=-1"),
    ({"request": 1.5}, "request=1.5"),
):
    case(
        "strategies.fault_plans()", f"{_kwargs}", lambda kw=_kwargs: ST.fault_plans(**kw), _fragment
    )
for _args, _kwargs, _fragment in (
    ((3,), {}, "model=3"),
    ((None,), {}, "model=None"),
    ((int,), {}, "int"),
    ((F.PartialReads(1),), {}, "PartialReads(max_chunk=1)"),
    ((F.PartialReads,), {"max_bytes": 0}, "max_bytes=0"),
    ((F.PartialReads,), {"max_bytes": "1"}, "max_bytes='1'"),
    ((F.PartialReads,), {"max_delay": -1}, "max_delay=-1"),
    ((F.PartialReads,), {"max_delay": NAN}, "max_delay=nan"),
    ((F.PartialReads,), {"scopes": "yes"}, "scopes='yes'"),
):
    case(
        "strategies.fault_models()",
        f"{_args} {_kwargs}",
        lambda a=_args, kw=_kwargs: ST.fault_models(*a, **kw),
        _fragment,
    )
for _kwargs, _fragment in (
    ({"request": "text"}, "request='text'"),
    ({"request": 3}, "request=3"),
    ({"transport": "dgram"}, "transport='dgram'"),
    ({"max_chunks": 0}, "max_chunks=0"),
    ({"max_chunks": -1}, "max_chunks=-1"),
    ({"max_chunks": "2"}, "max_chunks='2'"),
    ({"max_pause": -1}, "max_pause=-1"),
    ({"max_pause": NAN}, "max_pause=nan"),
    ({"max_pause": INF}, "max_pause=inf"),
    ({"endings": ["sideways"]}, "'sideways'"),
    ({"endings": []}, "client_scripts(endings=()) leaves no way to end a script"),
    ({"endings": None}, "endings=None"),
    ({"timeout": 0}, "timeout=0"),
    ({"timeout": NAN}, "timeout=nan"),
    ({"timeout": "5"}, "timeout='5'"),
):
    case(
        "strategies.client_scripts()",
        f"{_kwargs}",
        lambda kw=_kwargs: ST.client_scripts(**kw),
        _fragment,
    )
for _args, _kwargs, _fragment in (
    (("text",), {}, "datagrams='text'"),
    ((b"abc",), {}, "datagrams=b'abc'"),
    (([3],), {}, "3"),
    (([b"x"],), {"max_copies": 0}, "max_copies=0"),
    (([b"x"],), {"max_copies": "2"}, "max_copies='2'"),
    (([b"x"],), {"max_copies": HUGE}, "max_copies="),
    (([b"x"],), {"max_window": -1}, "max_window=-1"),
    (([b"x"],), {"max_window": 1.5}, "max_window=1.5"),
    (([b"x"],), {"drop": "yes"}, "drop='yes'"),
    (([b"x"],), {"reorder": 1}, "reorder=1"),
    (([b"x"],), {"duplicate": None}, "duplicate=None"),
):
    case(
        "strategies.datagram_schedules()",
        f"{_args} {_kwargs}",
        lambda a=_args, kw=_kwargs: ST.datagram_schedules(*a, **kw),
        _fragment,
    )
for _args, _kwargs, _fragment in (
    (("text",), {}, "payload='text'"),
    ((3,), {}, "payload=3"),
    ((None,), {}, "payload=None"),
    ((b"abc",), {"max_chunks": 0}, "max_chunks=0"),
    ((b"abc",), {"max_chunks": -1}, "max_chunks=-1"),
    ((b"abc",), {"max_chunks": "2"}, "max_chunks='2'"),
    ((b"abc",), {"max_chunks": 1.5}, "max_chunks=1.5"),
):
    case(
        "strategies.chunkings()",
        f"{_args} {_kwargs}",
        lambda a=_args, kw=_kwargs: ST.chunkings(*a, **kw),
        _fragment,
    )


# -- sockshock.tls ---------------------------------------------------------------------------

for _function in (T.client_context, T.server_context):
    for _name, _value in (
        ("minimum_version", "TLSv9"),
        ("minimum_version", 3),
        ("minimum_version", ""),
        ("maximum_version", "tls1.2"),
        ("maximum_version", 1.2),
        ("alpn_protocols", "h2"),
        ("alpn_protocols", [3]),
        ("alpn_protocols", [""]),
        ("alpn_protocols", ["x" * 300]),
    ):
        _fragment = named(_name, _value) if not isinstance(_value, list) else repr(_value[0])[:20]
        case(
            f"tls.{_function.__name__}()",
            f"{_name}={_value!r}"[:60],
            lambda f=_function, n=_name, v=_value: f(**{n: v}),
            _fragment,
        )
    case(
        f"tls.{_function.__name__}()",
        "minimum above maximum",
        lambda f=_function: f(minimum_version="TLSv1_3", maximum_version="TLSv1_2"),
        "TLSv1_3",
    )
for _name, _value in (
    ("client_certificate", "expird"),
    ("client_certificate", 3),
    ("client_certificate", ""),
):
    case(
        "tls.client_context()",
        f"{_name}={_value!r}",
        lambda n=_name, v=_value: T.client_context(**{n: v}),
        named(_name, _value),
    )
for _name, _value in (
    ("certificate", "expird"),
    ("certificate", None),
    ("certificate", 3),
    ("require_client_cert", "yes"),
    ("require_client_cert", 1),
):
    case(
        "tls.server_context()",
        f"{_name}={_value!r}",
        lambda n=_name, v=_value: T.server_context(**{n: v}),
        named(_name, _value),
    )
for _value in ("valdi", "", None, 3):
    case(
        "tls.contexts()", f"case={_value!r}", lambda v=_value: T.contexts(v), named("case", _value)
    )


# -- scenarios, checks, layer ------------------------------------------------------------

for _value, _fragment in (
    ("no-such-scenario", "'no-such-scenario'"),
    ("partial-i", "did you mean 'partial-io'?"),
    ("", "''"),
    (3, "3"),
    (None, "None"),
    ("/no/such/file.toml", "/no/such/file.toml"),
    ("/tmp", "'/tmp'"),
):
    case("scenarios.load()", f"spec={_value!r}", lambda v=_value: SC.load(v), _fragment)
case(
    "scenarios.load()",
    "source=3",
    lambda: SC.load("partial-io", source=3),  # type: ignore[arg-type]
    "source=3",
)


def _run_scenario(**kwargs: Any) -> Callable[[], object]:
    return lambda: SC.run(SC.load("partial-io"), **kwargs)


for _name, _value, _fragment in (
    ("server_class", "TCPServr", "did you mean 'TCPServer'?"),
    ("server_class", "UDPServer", "UDPServer"),
    ("server_class", 3, "3"),
    ("handler", "Nope", "'Nope'"),
    ("handler", 3, "3"),
    ("handler", DatagramEcho, "DatagramEcho"),
    ("seed", -1, "seed=-1"),
    ("seed", "1", "seed='1'"),
    ("seed", 1.5, "seed=1.5"),
):
    case("scenarios.run()", f"{_name}={_value!r}", _run_scenario(**{_name: _value}), _fragment)
for _value, _fragment in (
    ("partial-io", "scenario='partial-io'"),
    (None, "scenario=None"),
    (3, "scenario=3"),
):
    case("scenarios.run()", f"scenario={_value!r}", lambda v=_value: SC.run(v), _fragment)

for _args, _kwargs, _fragment in (
    (("TCPServr",), {}, "did you mean 'TCPServer'?"),
    ((3,), {}, "3"),
    (("TCPServer", "Nope"), {}, "'Nope'"),
    (("TCPServer", DatagramEcho), {}, "DatagramEcho"),
    (("TCPServer",), {"request": "ping"}, "request='ping'"),
    (("TCPServer",), {"request": b""}, "request=b''"),
    (("TCPServer",), {"expect": "pong"}, "expect='pong'"),
    (("TCPServer",), {"expect": 3}, "expect=3"),
    (("TCPServer",), {"seed": -1}, "seed=-1"),
    (("TCPServer",), {"seed": "1"}, "seed='1'"),
):
    case(
        "checks.check_server()",
        f"{_args} {_kwargs}",
        lambda a=_args, kw=_kwargs: sockshock.checks.check_server(*a, **kw),
        _fragment,
    )

for _value, _fragment in (
    ("fast", "clock='fast'"),
    (3, "clock=3"),
    (L.VirtualClock, "VirtualClock()"),
):
    case("layer.FaultLayer", f"clock={_value!r}", lambda v=_value: L.FaultLayer(clock=v), _fragment)
for _value, _fragment in (
    ("PartialReads", "'PartialReads'"),
    (3, "3"),
    ([3], "3"),
    ([None], "None"),
):
    case("layer.FaultLayer", f"plan={_value!r}", lambda v=_value: L.FaultLayer(v), _fragment)
for _value in ("0", -1, NAN, INF, True, [0]):
    case(
        "layer.VirtualClock",
        f"start={_value!r}",
        lambda v=_value: L.VirtualClock(v),
        named("start", _value),
    )
for _value in ("1", -1, NAN, INF, None):
    case(
        "layer.VirtualClock.sleep()",
        f"seconds={_value!r}",
        lambda v=_value: L.VirtualClock().sleep(v),
        named("seconds", _value),
    )
for _args, _kwargs, _fragment in (
    ((None,), {}, "layer=None"),
    (("socket",), {}, "layer='socket'"),
    ((L.SYSTEM_LAYER,), {"timeout": 0}, "timeout=0"),
    ((L.SYSTEM_LAYER,), {"timeout": NAN}, "timeout=nan"),
    ((L.SYSTEM_LAYER,), {"unix": "yes"}, "unix='yes'"),
):
    case(
        "layer.check_socket_layer()",
        f"{_args} {_kwargs}"[:60],
        lambda a=_args, kw=_kwargs: L.check_socket_layer(*a, **kw),
        _fragment,
    )


# -- scenario files (TOML) ----------------------------------------------------------------

_GOOD = """\
description = "a scenario"
duration = 0.05

[server]
class = "ThreadingTCPServer"
handler = "sockshock.handlers:LineEcho"

[[faults]]
model = "PartialReads"
max_chunk = 2

[load]
clients = 2
request = "x\\n"

[expect]
answered = "all"
stops_within = 1.0
"""


class Toml(NamedTuple):
    given: str
    text: str
    line: int  # the line the message must name (0: any)
    fragment: str


def _replace(old: str, new: str) -> str:
    assert old in _GOOD, old
    return _GOOD.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


TOML_CASES: list[Toml] = []


def toml(given: str, text: str, needle: str | None, fragment: str) -> None:
    TOML_CASES.append(Toml(given, text, 0 if needle is None else _line_of(text, needle), fragment))


for _old, _new, _fragment in (
    ("duration = 0.05", 'duration = "0.05"', "duration='0.05'"),
    ("duration = 0.05", "duration = -1", "duration=-1"),
    ("duration = 0.05", "duration = nan", "duration=nan"),
    ("duration = 0.05", "duration = inf", "duration=inf"),
    ("duration = 0.05", "duration = 1e9", "duration=1000000000.0"),
    ("duration = 0.05", "duration = true", "duration=True"),
    ("duration = 0.05", "duration = [1]", "duration=[1]"),
    ("duration = 0.05", "seed = -1", "seed=-1"),
    ("duration = 0.05", "seed = 1.5", "seed=1.5"),
    ("duration = 0.05", 'seed = "1"', "seed='1'"),
    ("duration = 0.05", "seed = 18446744073709551616", "seed="),
    ("duration = 0.05", "durration = 0.05", "did you mean 'duration'?"),
    ("duration = 0.05", "name = 3", "name=3"),
    ('description = "a scenario"', "description = 3", "description=3"),
    (
        'class = "ThreadingTCPServer"',
        'class = "ThreadingTCPServr"',
        "did you mean 'ThreadingTCPServer'?",
    ),
    ('class = "ThreadingTCPServer"', "class = 3", "class=3"),
    ('class = "ThreadingTCPServer"', 'class = ""', "''"),
    ('class = "ThreadingTCPServer"', 'class = "os:path"', "'os:path'"),
    ('class = "ThreadingTCPServer"', 'klass = "TCPServer"', "did you mean 'class'?"),
    ('handler = "sockshock.handlers:LineEcho"', 'handler = "sockshock.handlers:Nope"', "Nope"),
    (
        'handler = "sockshock.handlers:LineEcho"',
        'handler = "sockshock.handlers:DatagramEcho"',
        "DatagramEcho",
    ),
    ('handler = "sockshock.handlers:LineEcho"', "handler = 3", "handler=3"),
    ('handler = "sockshock.handlers:LineEcho"', 'handler = "nosuchmodule:X"', "nosuchmodule"),
    ('handler = "sockshock.handlers:LineEcho"', 'tls = "yes"', "tls='yes'"),
    ('handler = "sockshock.handlers:LineEcho"', "attrs = 3", "attrs=3"),
    ('handler = "sockshock.handlers:LineEcho"', "attrs = { timeout = -1 }", "timeout=-1"),
    (
        'handler = "sockshock.handlers:LineEcho"',
        "attrs = { timout = 1 }",
        "did you mean 'timeout'?",
    ),
    ('model = "PartialReads"', 'model = "PartialReadz"', "did you mean 'PartialReads'?"),
    ('model = "PartialReads"', "model = 3", "model: 3 is not a fault model"),
    ('model = "PartialReads"', 'model = "FaultPlan"', "'FaultPlan'"),
    ('model = "PartialReads"', 'model = "partialreads"', "did you mean 'PartialReads'?"),
    ("max_chunk = 2", "max_chunk = 0", "max_chunk=0"),
    ("max_chunk = 2", "max_chunk = -1", "max_chunk=-1"),
    ("max_chunk = 2", 'max_chunk = "2"', "max_chunk='2'"),
    ("max_chunk = 2", "max_chunk = 2.5", "max_chunk=2.5"),
    ("max_chunk = 2", "max_chunk = true", "max_chunk=True"),
    ("max_chunk = 2", "max_chunck = 2", "did you mean 'max_chunk'?"),
    ("max_chunk = 2", "max_chunk = 2\nprobability = 1.5", "probability=1.5"),
    ("max_chunk = 2", 'max_chunk = 2\nper = "byte"', "per='byte'"),
    ("max_chunk = 2", "max_chunk = 2\nconnections = []", "connections=[]"),
    ("max_chunk = 2", "max_chunk = 2\nconnections = [-1]", "connections=-1"),
    ("max_chunk = 2", "max_chunk = 2\nevery = 0", "every=0"),
    ("max_chunk = 2", 'max_chunk = 2\nlayer = "tls"', "layer='tls'"),
    ("max_chunk = 2", 'max_chunk = 2\nlayer = "plaintext"', "layer='plaintext'"),
    ('model = "PartialReads"\nmax_chunk = 2', 'model = "DropDatagrams"', "DropDatagrams"),
    (
        'model = "PartialReads"\nmax_chunk = 2',
        'model = "AcceptErrors"\nerrno = "ENOPE"',
        "errno='ENOPE'",
    ),
    (
        'model = "PartialReads"\nmax_chunk = 2',
        'model = "Latency"\nseconds = 1e9',
        "seconds=1000000000.0",
    ),
    ('model = "PartialReads"\nmax_chunk = 2', 'model = "Latency"', "seconds"),
    (
        'model = "PartialReads"\nmax_chunk = 2',
        'model = "Stall"\ndirection = "up"',
        "direction='up'",
    ),
    ('model = "PartialReads"\nmax_chunk = 2', "max_chunk = 3", "needs a model"),
    ("clients = 2", "clients = -1", "clients=-1"),
    ("clients = 2", 'clients = "2"', "clients='2'"),
    ("clients = 2", "clients = 1000000000", "clients=1000000000"),
    ("clients = 2", "clients = 2\nconcurrency = 0", "concurrency=0"),
    ("clients = 2", "clients = 2\ntimeout = -1", "timeout=-1"),
    ("clients = 2", "clients = 2\ntimeout = nan", "timeout=nan"),
    ("clients = 2", "clientz = 2", "did you mean 'clients'?"),
    ('request = "x\\n"', "request = 3", "request=3"),
    ('request = "x\\n"', 'request = ""', "request is empty"),
    ('answered = "all"', 'answered = "most"', "answered='most'"),
    ('answered = "all"', "answered = 1.5", "answered=1.5"),
    ('answered = "all"', "answered = -0.1", "answered=-0.1"),
    ('answered = "all"', "answered = true", "answered=True"),
    ("stops_within = 1.0", "stops_within = 0", "stops_within=0"),
    ("stops_within = 1.0", "stops_within = -1", "stops_within=-1"),
    ("stops_within = 1.0", 'stops_within = "1"', "stops_within='1'"),
    ("stops_within = 1.0", "stops_within = 1e9", "stops_within=1000000000.0"),
    ("stops_within = 1.0", "stops_withn = 1.0", "did you mean 'stops_within'?"),
    ("stops_within = 1.0", "stops_within = 1.0\nno_leaks = 1", "no_leaks=1"),
    ("stops_within = 1.0", 'stops_within = 1.0\nhandler_errors = "some"', "handler_errors='some'"),
    ("stops_within = 1.0", 'stops_within = 1.0\nhandler_errors = ["NoSuchError"]', "'NoSuchError'"),
    ("stops_within = 1.0", "stops_within = 1.0\nhandler_errors = [3]", "3"),
):
    _text = _replace(_old, _new)
    _needle = _new.splitlines()[-1] if _new.splitlines()[-1] not in _GOOD else _new.splitlines()[0]
    if "needs a model" in _fragment:
        _needle = "[[faults]]"
    toml(f"{_old!r} -> {_new!r}", _text, _needle, _fragment)

for _section, _fragment in (
    ("[serve]\nclass = 'TCPServer'\n", "did you mean 'server'?"),
    ("[fault]\nmodel = 'Latency'\n", "did you mean 'faults'?"),
    ("[[client]]\nkind = 'slowloris'\n", "did you mean 'clients'?"),
    ("[expects]\nanswered = 'all'\n", "did you mean 'expect'?"),
    ("[faults]\nmodel = 'Latency'\n", "faults"),
    ("[[server]]\nclass = 'TCPServer'\n", "server"),
    ("[[load]]\nclients = 1\n", "load"),
):
    _text = _GOOD.replace('[[faults]]\nmodel = "PartialReads"\nmax_chunk = 2\n', "").replace(
        '[load]\nclients = 2\nrequest = "x\\n"\n', ""
    )
    if _section.startswith("[[server]]"):
        _text = _text.replace("[server]\n", "").replace('class = "ThreadingTCPServer"\n', "")
        _text = _text.replace('handler = "sockshock.handlers:LineEcho"\n', "")
    _text += "\n" + _section
    toml(f"section {_section.splitlines()[0]}", _text, _section.splitlines()[0], _fragment)

for _clients, _fragment in (
    ("kind = 'slowlorris'", "did you mean 'slowloris'?"),
    ("kind = 3", "kind=3"),
    ("count = 2\n", "needs a 'kind'"),
    ("kind = 'slowloris'\ncount = -1", "count=-1"),
    ("kind = 'slowloris'\ncount = 'x'", "count='x'"),
    ("kind = 'slowloris'\ninterval = nan", "interval=nan"),
    ("kind = 'slowloris'\nduration = 1e9", "duration=1000000000.0"),
    ("kind = 'slowloris'\nbogus = 1", "bogus"),
    ("kind = 'slowloris'\nrequest = 3", "request=3"),
    ("kind = 'datagram_burst'", "datagram_burst"),
    ("kind = 'drip_feed'\nchunk = 0", "chunk=0"),
    ("kind = 'never_reads'\nrcvbuf = -5", "rcvbuf=-5"),
):
    _text = _GOOD + "\n[[clients]]\n" + _clients + "\n"
    _needle = "[[clients]]" if "needs" in _fragment else _clients.splitlines()[-1]
    toml(f"[[clients]] {_clients.strip()}", _text, _needle, _fragment)

for _given, _text, _needle, _fragment in (
    (
        "broken syntax",
        _GOOD.replace("max_chunk = 2", "max_chunk = = 2"),
        "max_chunk = = 2",
        "not valid TOML",
    ),
    ("an unclosed string", _GOOD.replace('"a scenario"', '"a scenario'), "a scenario", ""),
    (
        "a duplicate key",
        _GOOD.replace("duration = 0.05", "duration = 0.05\nduration = 1"),
        "duration = 1",
        "not valid TOML",
    ),
    ("a duplicate table", _GOOD + "\n[load]\nclients = 3\n", None, "load"),
    (
        "a multi-line string before a bad key",
        '"""'.join(["description = ", "\none\ntwo\nthree\n", "\n"])
        + _GOOD.split("\n", 1)[1].replace("max_chunk = 2", "max_chunk = -2"),
        "max_chunk = -2",
        "max_chunk=-2",
    ),
    (
        "a multi-line array before a bad key",
        _GOOD.replace(
            "[expect]", "[expect]\nhandler_errors = [\n  'OSError',\n  'NoSuchError',\n]"
        ),
        "handler_errors = [",
        "'NoSuchError'",
    ),
    ("not UTF-8", "description = '\udcff'", None, "utf-8"),
    ("a top-level array", "faults = 3\n", "faults = 3", "faults=3"),
    (
        "faults as a list of strings",
        "faults = ['PartialReads']\n",
        "faults =",
        "each [[faults]] entry must be a table",
    ),
):
    toml(_given, _text, _needle, _fragment)


@pytest.fixture(scope="module")
def toml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("toml")


def _write_toml(folder: Path, number: int, text: str) -> Path:
    path = folder / f"case{number}.toml"
    data = text.encode("utf-8", "surrogateescape")
    path.write_bytes(data)
    return path


# -- the command line -------------------------------------------------------------------------

CLI_CASES: list[tuple[list[str], str, tuple[str, ...]]] = []


def cli(args: list[str], *fragments: str, command: str | None = None) -> None:
    CLI_CASES.append((args, args[0] if command is None else command, fragments))


for _option, _value, _fragment in (
    ("--server", "TCPServr", "'TCPServr'"),
    ("--server", "", "''"),
    ("--server", "os:path", "'os:path'"),
    ("--server", "sockshock.handlers:LineEcho", "LineEcho"),
    ("--server", "nosuchmodule:X", "nosuchmodule"),
    ("--handler", "", "''"),
    ("--handler", "LineEcho", "'LineEcho'"),
    ("--handler", "sockshock.handlers:Nope", "Nope"),
    ("--handler", "sockshock.socketserver:TCPServer", "TCPServer"),
    ("--handler", ":", "':'"),
    ("--request", "\\x4", "'\\\\x4'"),
    ("--request", "", "--request=''"),
    ("--request", "\\", "--request="),
    ("--expect", "\\q", "--expect="),
    ("--expect-prefix", "", "--expect-prefix=''"),
    ("--expect-prefix", "\\x", "--expect-prefix="),
    ("--expect-regex", "(", "'('"),
    ("--expect-regex", "", "--expect-regex=''"),
    ("--seed", "x", "'x'"),
    ("--seed", "1.5", "'1.5'"),
    ("--seed", "-1", "--seed=-1"),
    ("--seed", "18446744073709551616", "18446744073709551616"),
    ("--json", "", "--json=''"),
    ("--json", "/no/such/dir/x.json", "'/no/such/dir'"),
    ("--json", "/tmp", "'/tmp'"),
    ("--target", "127.0.0.1:1", "--target='127.0.0.1:1'"),
):
    cli(["run", _option, _value], _fragment)
cli(["run", "--expect", "x", "--expect-prefix", "y"], "--expect")
cli(["run", "--expect-prefix", "x", "--expect-regex", "y"], "--expect")
cli(["run", "--seed"], "--seed")
cli(["run", "--server"], "--server")
cli(["run", "nosuch"], "'nosuch'")
cli(["run", "partial-i"], "did you mean 'partial-io'?")
cli(["run", "/no/such/file.toml"], "/no/such/file.toml")
cli(["run", "partial-io", "--server", "UDPServer"], "UDPServer")
cli(["run", "partial-io", "--server", "TCPServr"], "'TCPServr'")
cli(["run", "partial-io", "--handler", "Nope"], "'Nope'")
cli(["run", "partial-io", "--target", "127.0.0.1:0"], "--target='127.0.0.1:0'")
cli(["run", "partial-io", "--target", "127.0.0.1:70000"], "--target='127.0.0.1:70000'")
cli(["run", "partial-io", "--target", "example.com:80"], "--target='example.com:80'")
cli(["run", "partial-io", "--target", "localhost"], "--target='localhost'")
cli(["run", "partial-io", "--target", "/tmp/x.sock", "--udp"], "--udp")
cli(["run", "partial-io", "--target", "127.0.0.1:9", "--server", "TCPServer"], "--server")
cli(["run", "partial-io", "--seed", "-1"], "--seed=-1")
cli(["run", "partial-io", "--expect-regex", "("], "'('")
cli(["run", "lossy-udp", "--target", "/tmp/x.sock"], "DropDatagrams")
cli(["run", "--udp", "--target", "127.0.0.1:9"], "--")
cli(["run", "--bogus"], "--bogus")
cli(["nosuchcommand"], "'nosuchcommand'", command="")
cli([], "command", command="")

_UPSTREAM = ["--upstream", "127.0.0.1:9"]
for _args, _fragment in (
    (["--upstream", ""], "--upstream=''"),
    (["--upstream", "127.0.0.1"], "--upstream='127.0.0.1'"),
    (["--upstream", "127.0.0.1:x"], "'127.0.0.1:x'"),
    (["--upstream", "127.0.0.1:70000"], "70000"),
    (["--upstream", "10.1.2.3:80"], "10.1.2.3"),
    (["--upstream", "example.com:80"], "example.com"),
    (["--upstream", "[::1:80"], "'[::1:80'"),
    (["--upstream", "/tmp/x.sock"], "'/tmp/x.sock'"),
    (["--upstream", "127.0.0.1:80", "--unix"], "'127.0.0.1:80'"),
    (["--upstream", "", "--unix"], "--upstream=''"),
    ([], "--upstream"),
    ([*_UPSTREAM, "--listen", "0.0.0.0:0"], "0.0.0.0"),
    ([*_UPSTREAM, "--listen", "127.0.0.1:99999"], "99999"),
    ([*_UPSTREAM, "--listen", "x"], "--listen='x'"),
    ([*_UPSTREAM, "--listen", "127.0.0.1:9"], "127.0.0.1:9"),
    ([*_UPSTREAM, "--seed", "x"], "'x'"),
    ([*_UPSTREAM, "--seed", "-1"], "-1"),
    ([*_UPSTREAM, "--seed", "1.5"], "'1.5'"),
    ([*_UPSTREAM, "--seed", str(2**64)], str(2**64)),
    ([*_UPSTREAM, "--udp", "--unix"], "--unix"),
    ([*_UPSTREAM, "--fault", ""], "--fault ''"),
    ([*_UPSTREAM, "--fault", "PartialReads({[1]: 2})"], "PartialReads({[1]: 2})"),
    ([*_UPSTREAM, "--fault", "PartialReads(*[1])"], "PartialReads(*[1])"),
    ([*_UPSTREAM, "--fault", "PartialReads("], "PartialReads("),
    ([*_UPSTREAM, "--fault", "Nope(1)"], "Nope"),
    ([*_UPSTREAM, "--fault", "PartialReadz(1)"], "did you mean 'PartialReads'?"),
    ([*_UPSTREAM, "--fault", "PartialReads(-1)"], "max_chunk=-1"),
    ([*_UPSTREAM, "--fault", "PartialReads"], "'PartialReads'"),
    ([*_UPSTREAM, "--fault", "__import__('os').system('true')"], "__import__"),
    ([*_UPSTREAM, "--fault", "PartialReads(1).__class__"], "PartialReads(1).__class__"),
    ([*_UPSTREAM, "--fault", "PartialReads(max_chunk=1, max_chunk=2)"], "max_chunk"),
    ([*_UPSTREAM, "--fault", "PartialReads(1" + ")" * 2], "PartialReads(1))"),
    ([*_UPSTREAM, "--fault", "PartialReads(1, layer='plaintext')"], "layer='plaintext'"),
    ([*_UPSTREAM, "--fault", "DropDatagrams()"], "DropDatagrams()"),
    ([*_UPSTREAM, "--fault", "Latency(1e9)"], "seconds=1000000000.0"),
    ([*_UPSTREAM, "--fault", "Latency(" + "9" * 5000 + ")"], "Latency("),
    ([*_UPSTREAM, "--fault", "FaultPlan()"], "FaultPlan"),
    ([*_UPSTREAM, "--udp", "--fault", "PartialReads(1)"], "PartialReads(max_chunk=1)"),
    ([*_UPSTREAM, "--scenario", "nosuch"], "'nosuch'"),
    ([*_UPSTREAM, "--scenario", "partial-i"], "did you mean 'partial-io'?"),
    ([*_UPSTREAM, "--scenario", "lossy-udp"], "DropDatagrams"),
    ([*_UPSTREAM, "--scenario", ""], "--scenario"),
    ([*_UPSTREAM, "--api", "127.0.0.1:0"], "--upstream"),
    (["--api", "10.1.2.3:8474"], "10.1.2.3"),
    (["--api", "x"], "--api='x'"),
    (["--api", "127.0.0.1:8474", "--fault", "PartialReads(1)"], "--fault"),
    (["--config", "/no/such/file.json"], "/no/such/file.json"),
    (["--config", "/tmp"], "--config /tmp: Is a directory"),
    ([*_UPSTREAM, "--log", "/no/such/dir/x.log"], "/no/such/dir/x.log"),
    ([*_UPSTREAM, "--log", ""], "--log"),
    ([*_UPSTREAM, "--bogus"], "--bogus"),
):
    cli(["proxy", *_args], _fragment)

for _args, _fragment in (
    (["/no/such/path"], "'/no/such/path'"),
    ([""], "''"),
):
    cli(["check", *_args], _fragment)


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A guard: a case the command line accepts by mistake records what it would have
    started, instead of running checks, scenarios or a proxy for real."""
    started: list[str] = []
    import sockshock._cli._proxy as proxy_cli
    import sockshock._cli._run as run_cli
    import sockshock._cli._scenario as scenario_cli

    def refuse(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started.append(name)
            raise _Started(name)

        return call

    monkeypatch.setattr(run_cli, "run_matrix", refuse("the checks"))
    monkeypatch.setattr(scenario_cli, "run", refuse("a scenario"))
    monkeypatch.setattr(scenario_cli, "run_against", refuse("a scenario against --target"))
    monkeypatch.setattr(proxy_cli, "_wait", refuse("the proxy"))
    return started


class _Started(Exception):
    pass


# -- pytest: options, ini settings, markers ------------------------------------------------------

# (setting, bad value): each through the option, and through the ini setting where there is one
OPTION_CASES: list[tuple[str, str]] = [
    ("seed", "x"),
    ("seed", "-1"),
    ("seed", "1.5"),
    ("seed", "18446744073709551616"),
    ("seed", ""),
    ("session_seed", "x"),
    ("session_seed", "-1"),
    ("audit", "maybe"),
    ("audit", ""),
    ("shutdown_timeout", "0"),
    ("shutdown_timeout", "-1"),
    ("shutdown_timeout", "nan"),
    ("shutdown_timeout", "inf"),
    ("shutdown_timeout", "fast"),
    ("shutdown_timeout", "1e9"),
    ("shutdown_tolerance", "0.5"),
    ("shutdown_tolerance", "x"),
    ("shutdown_tolerance", "nan"),
    ("shutdown_tolerance", "1000"),
    ("clock", "fast"),
    ("clock", "Virtual"),
    ("clock", "1"),
    ("scenario", "nosuch"),
    ("scenario", "partial-i"),
    ("scenario", "/no/such/file.toml"),
    ("install", "maybe"),
    ("install", "2"),
]

# (marker source, fragments the usage error must contain)
MARKER_CASES: list[tuple[str, tuple[str, ...]]] = [
    ("@pytest.mark.sockshock(seed='x')", ("seed='x'",)),
    ("@pytest.mark.sockshock(seed=-1)", ("seed=-1",)),
    ("@pytest.mark.sockshock(seed=True)", ("seed=True",)),
    ("@pytest.mark.sockshock(seed=2**64)", ("seed=18446744073709551616",)),
    ("@pytest.mark.sockshock(audit='maybe')", ("audit='maybe'",)),
    ("@pytest.mark.sockshock(audit=3)", ("audit=3",)),
    ("@pytest.mark.sockshock(shutdown_timeout=0)", ("shutdown_timeout=0",)),
    ("@pytest.mark.sockshock(shutdown_timeout=float('nan'))", ("shutdown_timeout=nan",)),
    ("@pytest.mark.sockshock(clock='fast')", ("clock='fast'",)),
    ("@pytest.mark.sockshock(expect_errors='OSError')", ("expect_errors='OSError'",)),
    ("@pytest.mark.sockshock(expect_errors=[3])", ("expect_errors=[3]",)),
    ("@pytest.mark.sockshock(expect_errors=int)", ("expect_errors=",)),
    ("@pytest.mark.sockshock(scenario='partial-io')", ("scenario",)),
    ("@pytest.mark.sockshock(shutdown_tolerance=3)", ("shutdown_tolerance",)),
    ("@pytest.mark.sockshock(install=True)", ("install",)),
    ("@pytest.mark.sockshock(sead=1)", ("sead",)),
    ("@pytest.mark.sockshock(1)", ("[1]",)),
    ("@pytest.mark.faults('nosuch')", ("'nosuch'",)),
    ("@pytest.mark.faults('partial-i')", ("did you mean 'partial-io'?",)),
    ("@pytest.mark.faults(3)", ("3 (type=int)",)),
    ("@pytest.mark.faults(None)", ("None",)),
    ("@pytest.mark.faults.with_args(F.PartialReads)", ("PartialReads",)),
    ("@pytest.mark.faults([F.PartialReads(1)])", ("[PartialReads(max_chunk=1)]",)),
    ("@pytest.mark.faults(F.PartialReads(1), seed=3)", ("seed=3",)),
    ("@pytest.mark.shutdown_within('fast')", ("seconds='fast'",)),
    ("@pytest.mark.shutdown_within(-1)", ("seconds=-1",)),
    ("@pytest.mark.shutdown_within(float('inf'))", ("seconds=inf",)),
    ("@pytest.mark.shutdown_within()", ("shutdown_within(seconds",)),
    ("@pytest.mark.shutdown_within(1, 2)", ("shutdown_within(seconds",)),
    ("@pytest.mark.shutdown_within(1, busy=-1)", ("busy=-1",)),
    ("@pytest.mark.shutdown_within(1, busy='x')", ("busy='x'",)),
    ("@pytest.mark.shutdown_within(1, stalled=1.5)", ("stalled=1.5",)),
    ("@pytest.mark.shutdown_within(1, stalld=1)", ("stalld",)),
    ("@pytest.mark.sockshock_schedules(3)", ("by keyword",)),
    ("@pytest.mark.sockshock_schedules(runs=0)", ("runs=0",)),
    ("@pytest.mark.sockshock_schedules(runs='x')", ("runs='x'",)),
    ("@pytest.mark.sockshock_schedules(runs=10**9)", ("runs=1000000000",)),
    ("@pytest.mark.sockshock_schedules(strategy='dfs')", ("strategy='dfs'",)),
    ("@pytest.mark.sockshock_schedules(depth=0)", ("depth=0",)),
    ("@pytest.mark.sockshock_schedules(preemptions=-1)", ("preemptions=-1",)),
    ("@pytest.mark.sockshock_schedules(seed=-1)", ("seed=-1",)),
    ("@pytest.mark.sockshock_schedules(seed=1.5)", ("seed=1.5",)),
    ("@pytest.mark.sockshock_schedules(bogus=1)", ("bogus",)),
    ("@pytest.mark.sockshock_schedules(runs=2)", ("sockshock_schedule",)),
]


# (marker, fragments): checked when pytest parametrizes the test, module by module
SERVER_MARKER_CASES: list[tuple[str, tuple[str, ...]]] = [
    ("@pytest.mark.sockshock_servers(transport='streem')", ("transport='streem'",)),
    ("@pytest.mark.sockshock_servers(kind='streem')", ("kind='streem'",)),
    ("@pytest.mark.sockshock_servers(family='inet7')", ("family='inet7'",)),
    ("@pytest.mark.sockshock_servers(concurrency='threads')", ("concurrency='threads'",)),
    ("@pytest.mark.sockshock_servers(concurrency=5)", ("concurrency=5",)),
    ("@pytest.mark.sockshock_servers(base='TCPServer')", ("base='TCPServer'",)),
    ("@pytest.mark.sockshock_servers(tranport='stream')", ("tranport",)),
    ("@pytest.mark.sockshock_servers('stream')", ("('stream',)",)),
    ("@pytest.mark.sockshock_servers(transport='datagram', family='inet', base=int)", ("int",)),
]


# -- the tests ---------------------------------------------------------------------------------


def _stable(text: str) -> str:
    """A test id without memory addresses (the same on every xdist worker)."""
    return re.sub(r" at 0x[0-9a-f]+", "", text)


@pytest.mark.parametrize("bad", CASES, ids=[_stable(f"{c.where}: {c.given}") for c in CASES])
def test_a_bad_argument_gets_one_clear_error(bad: Case) -> None:
    with pytest.raises(bad.error) as info:
        bad.call()
    if bad.error is OSError:
        assert info.value.errno == errno.EADDRINUSE
    message = str(info.value)
    for fragment in bad.fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert len(message) < 2000, message
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, Exception)


@pytest.mark.parametrize("bad", TOML_CASES, ids=[t.given for t in TOML_CASES])
def test_a_bad_scenario_file_gets_one_clear_error(bad: Toml, toml_dir: Path) -> None:
    path = _write_toml(toml_dir, TOML_CASES.index(bad), bad.text)
    with pytest.raises(InvalidArgument) as info:
        resolve(SC.load(str(path)))  # what `sockshock check` and `run` do
    message = str(info.value)
    where = f"{path}:{bad.line}" if bad.line else str(path)
    assert where in message, f"{where!r} not in {message!r}"
    assert bad.fragment in message, f"{bad.fragment!r} not in {message!r}"


@pytest.mark.parametrize(
    ("args", "command", "fragments"),
    CLI_CASES,
    ids=[" ".join(a)[:80] or "(nothing)" for a, _, _ in CLI_CASES],
)
def test_a_bad_command_line_gets_one_clear_error(
    args: list[str],
    command: str,
    fragments: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    no_run: list[str],
) -> None:
    from sockshock._cli import main

    try:
        code: object = main(args)
    except SystemExit as exit:
        code = exit.code
    except _Started:
        code = None
    err = capsys.readouterr().err
    assert not no_run, f"{args} started {no_run[0]}: {err}"
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback, no usage block
    assert lines[0].startswith(f"sockshock {command}: " if command else "sockshock: "), err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"


def test_a_bad_scenario_file_on_the_command_line(
    toml_dir: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]
) -> None:
    """``sockshock check FILE`` reports an invalid file as ``INVALID file:line: ...``
    with exit status 1; ``sockshock run FILE`` refuses it with one line, exit 2."""
    from sockshock._cli import main

    path = _write_toml(toml_dir, 10_000, _GOOD.replace("max_chunk = 2", "max_chunk = -2"))
    line = _line_of(_GOOD, "max_chunk")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {path}:{line}: max_chunk=-2" in out, out
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sockshock run: {path}:{line}: max_chunk=-2"), err
    assert len(err.strip().splitlines()) == 1, err
    assert not no_run


def test_check_on_a_folder_without_scenarios_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sockshock._cli import main

    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"sockshock check: {str(tmp_path)!r}: no scenario files (*.toml) in it"


class _Config:
    """The little of ``pytest.Config`` that the plugin's settings read: one option
    or one ini value."""

    def __init__(self, dest: str, option: str | None, ini: str | None) -> None:
        self.stash = pytest.Stash()
        self._dest, self._option, self._ini = dest, option, ini

    def getoption(self, dest: str, default: Any = None) -> Any:
        return self._option if dest == self._dest else default

    def getini(self, dest: str) -> Any:
        return self._ini if dest == self._dest and self._ini is not None else ""


def _setting_error(name: str, option: str | None, ini: str | None) -> str:
    from sockshock._pytest._markers import load_scenario
    from sockshock._pytest._settings import SETTINGS, setting

    s = SETTINGS[name]
    config: Any = _Config(s.dest, option, ini)
    with pytest.raises(pytest.UsageError) as info:
        value = setting(config, None, name)
        if name == "scenario":  # as pytest_configure does
            load_scenario(config, value, s.flag if option is not None else f"ini setting {s.dest}")
    return str(info.value)


@pytest.mark.parametrize(
    ("name", "value"), OPTION_CASES, ids=[f"--{n}={v}" for n, v in OPTION_CASES]
)
def test_a_bad_option_or_ini_setting_gets_one_clear_error(name: str, value: str) -> None:
    from sockshock._pytest._settings import SETTINGS

    s = SETTINGS[name]
    assert s.option
    message = _setting_error(name, value, None)
    assert f"{value!r}" in message, message
    assert s.flag in message, message
    assert len(message.splitlines()) == 1, message
    if s.ini and value:  # an empty ini value means: not set
        message = _setting_error(name, None, value)
        assert f"{value!r}" in message, message
        assert f"ini setting {s.dest}" in message, message


def test_bad_markers_get_one_clear_error_each(pytester: pytest.Pytester) -> None:
    """Every marker case in one collection (pytester is slow): each test's markers
    are checked as the plugin checks them at collection, one by one."""
    from sockshock._pytest._plugin import pytest_collection_modifyitems

    source = ["import pytest", "from sockshock import faults as F", ""]
    for number, (marker, _) in enumerate(MARKER_CASES):
        source += [marker, f"def test_{number}(sockshock): pass", ""]
    pytester.makepyfile(test_markers="\n".join(source))
    items = pytester.genitems([pytester.getmodulecol(pytester.path / "test_markers.py")])
    assert len(items) == len(MARKER_CASES)
    unclear = []
    for item, (marker, fragments) in zip(items, MARKER_CASES, strict=True):
        try:
            pytest_collection_modifyitems(item.config, [item])  # what the plugin does
        except pytest.UsageError as exc:
            message = str(exc)
            missing = [f for f in (*fragments, item.nodeid) if f not in message]
            if missing or len(message.splitlines()) != 1:
                unclear.append(f"{marker}: {missing} not in {message!r}")
        else:
            unclear.append(f"{marker}: accepted")
    assert not unclear, "\n".join(unclear)


def test_bad_server_markers_get_one_clear_error_each(pytester: pytest.Pytester) -> None:
    """``sockshock_servers`` is read as pytest parametrizes a test: each case in a
    module of its own, all collected in one run; each module's error is its message
    alone, no traceback."""
    for number, (marker, _) in enumerate(SERVER_MARKER_CASES):
        pytester.makepyfile(
            **{f"test_s{number}": f"import pytest\n{marker}\ndef test_x(server_class): pass\n"}
        )
    pytester.makepyfile(test_none="def test_x(server_class): pass\n")
    reprec = pytester.inline_run("--collect-only", "-p", "no:randomly", "-p", "no:cacheprovider")
    failed = {
        r.nodeid: str(r.longrepr) for r in reprec.getreports("pytest_collectreport") if r.failed
    }
    unclear = []
    for number, (marker, fragments) in enumerate(SERVER_MARKER_CASES):
        message = failed.get(f"test_s{number}.py")
        if message is None:
            unclear.append(f"{marker}: accepted")
            continue
        missing = [f for f in (*fragments, f"test_s{number}.py::test_x") if f not in message]
        if missing or len(message.strip().splitlines()) != 1:
            unclear.append(f"{marker}: {missing} not in {message!r}")
    assert not unclear, "\n".join(unclear)


def test_a_bad_option_stops_a_real_run(pytester: pytest.Pytester) -> None:
    """The route above, end to end: pytest itself prints the error, once."""
    pytester.makepyfile(test_x="def test_x(): pass")
    pytester.makeini("[pytest]\nsockshock_clock = fast\n")
    result = pytester.runpytest_inprocess("-p", "no:randomly", "--sockshock-audit=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "sockshock: audit='maybe' from --sockshock-audit" in text, text
    assert "Traceback" not in text, text


def test_huge_limits_are_accepted_and_work() -> None:
    """The other side of the line: a limit never reached is no mistake, and must not
    overflow where it is used (a real socket's ``recv(10**30)`` would)."""
    stream = sockshock.drive(LineEcho, b"hello\n", faults=[F.PartialReads(max_chunk=HUGE)], seed=1)
    assert stream.output == b"hello\n"
    with sockshock.serving("UDPServer", DatagramEcho) as srv:
        run = S.ScriptRun(S.ClientScript((S.Send(b"ping"), S.Read(size=HUGE))), srv.connect())
        results = run.run()
    assert [r.outcome for r in results] == ["ok", "ok"], results
    assert run.received == b"ping"


# (what the test calls, with the ``sockshock`` fixture as ``fx`` and the proxy
# factory as ``proxy``; a fragment the InvalidArgument's message must contain)
FIXTURE_CASES: list[tuple[str, str]] = [
    ("fx.serve('TCPServr', LineEcho)", "did you mean 'TCPServer'?"),
    ("fx.serve('TCPServer', 'Nope')", "'Nope'"),
    ("fx.serve('TCPServer', LineEcho, shutdown_timeout=-1)", "shutdown_timeout=-1"),
    ("fx.serve('TCPServer', LineEcho, shutdown_timout=1)", "did you mean shutdown_timeout=?"),
    ("fx.serve('TCPServer', LineEcho, faults='PartialReads')", "faults='PartialReads'"),
    ("fx.serve('TCPServer', LineEcho, faults=[3])", "3 (type=int)"),
    ("fx.serve('UDPServer', LineEcho)", "LineEcho is a StreamRequestHandler"),
    ("fx.serve('TCPServer', LineEcho, address=('10.1.2.3', 0))", "'10.1.2.3'"),
    (
        "fx.serve('TCPServer', LineEcho, server_kwargs={'bind_and_activate': False})",
        "bind_and_activate=False",
    ),
    ("fx.serve('TCPServer', LineEcho, seed=-1, faults=[])", "seed=-1"),
    ("fx.serve('TCPServer', LineEcho, clock='fast', faults=[])", "clock='fast'"),
    ("fx.serve('TCPServer', LineEcho, expect_errors='OSError')", "expect_errors='OSError'"),
    ("fx.inject(faults='x').__enter__()", "faults='x'"),
    ("fx.inject(seed=-1).__enter__()", "seed=-1"),
    ("fx.inject(shutdown_timeout=0).__enter__()", "shutdown_timeout=0"),
    ("proxy(('10.1.2.3', 80))", "'10.1.2.3'"),
    ("proxy('127.0.0.1')", "upstream='127.0.0.1'"),
    ("proxy(('127.0.0.1', 9), faults='PartialReads(1)')", "faults='PartialReads(1)'"),
    ("proxy(('127.0.0.1', 9), transport='udp')", "transport='udp'"),
    ("proxy(('127.0.0.1', 9), faults=[F.DropDatagrams()])", "DropDatagrams()"),
]


def test_bad_input_through_the_fixtures_gets_one_clear_error(pytester: pytest.Pytester) -> None:
    """The fixtures' routes (``sockshock.serve()``, ``.inject()``, ``sockshock_proxy``),
    every case a test of one inner run: each must raise InvalidArgument with its
    fragment, and leave nothing running behind (the audit of the inner run)."""
    source = [
        "import pytest",
        "from sockshock import faults as F",
        "from sockshock.errors import InvalidArgument",
        "from sockshock.handlers import LineEcho",
        "",
    ]
    for number, (call, fragment) in enumerate(FIXTURE_CASES):
        source += [
            f"def test_{number}(sockshock, sockshock_proxy):",
            "    fx, proxy = sockshock, sockshock_proxy",
            "    with pytest.raises(InvalidArgument) as info:",
            f"        {call}",
            f"    assert {fragment!r} in str(info.value), str(info.value)",
            "",
        ]
    pytester.makepyfile(test_fixtures="\n".join(source))
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=len(FIXTURE_CASES))


# (the --config file's text, a fragment of the one line on stderr)
CONFIG_CASES: list[tuple[str, str]] = [
    ("not json", "not JSON"),
    ("{}", "expected a JSON array"),
    ("[1]", "expected a JSON object at proxy 1"),
    ('[{"name": "a"}]', "missing required field: upstream at proxy 1"),
    ('[{"upstream": "127.0.0.1:9"}]', "missing required field: name"),
    ('[{"name": "", "upstream": "127.0.0.1:9"}]', "missing required field: name"),
    ('[{"name": "a", "listen": "0.0.0.0:0", "upstream": "127.0.0.1:9"}]', "'0.0.0.0'"),
    ('[{"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:x"}]', "'127.0.0.1:x'"),
    ('[{"name": "a", "listen": "127.0.0.1:0", "upstream": "10.1.2.3:80"}]', "'10.1.2.3'"),
    ('[{"name": "a", "upstream": "127.0.0.1:9", "enabled": "yes"}]', "enabled='yes'"),
    ('[{"name": 3, "upstream": "127.0.0.1:9"}]', "name"),
]


@pytest.mark.parametrize(("text", "fragment"), CONFIG_CASES, ids=[t for t, _ in CONFIG_CASES])
def test_a_bad_proxy_config_file_gets_one_clear_error(
    text: str,
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_run: list[str],
) -> None:
    from sockshock._cli import main

    config = tmp_path / "proxies.json"
    config.write_text(text, encoding="utf-8")
    try:
        code: object = main(["proxy", "--config", str(config)])
    except _Started:
        code = None
    err = capsys.readouterr().err
    assert not no_run, f"{text} started {no_run[0]}: {err}"
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"sockshock proxy: --config {config}"), err
    assert fragment in err, err


# -- toxiproxy's HTTP API (sockshock proxy --api): a toxic's body ---------------------------

_BAD_ATTRIBUTES = ("x", -1, 1e300, True, [1], {"a": 1})


def _toxic_cases() -> list[tuple[str, Any, str]]:
    from sockshock._proxy._toxics import TOXIC_TYPES

    cases: list[tuple[str, Any, str]] = []
    for kind, attributes in TOXIC_TYPES.items():
        for key in attributes:
            for value in _BAD_ATTRIBUTES:
                body = {"type": kind, "attributes": {key: value}}
                if kind == "slicer" and key != "average_size":
                    body["attributes"]["average_size"] = 4
                if key in ("average_size", "size_variation", "bytes") and value == 1e300:
                    continue  # "at most" a chunk, "after" so many bytes: accepted (see above)
                named = value[0] if key == "models" and isinstance(value, list) else value
                cases.append((f"{kind} {key}={value!r}", body, repr(named)))
    for given, body, fragment in (
        ("toxicity=1.5", {"type": "latency", "toxicity": 1.5}, "toxicity=1.5"),
        ("toxicity='x'", {"type": "latency", "toxicity": "x"}, "toxicity='x'"),
        ("toxicity=True", {"type": "latency", "toxicity": True}, "toxicity=True"),
        ("stream='sideways'", {"type": "latency", "stream": "sideways"}, "stream was invalid"),
        ("type='latncy'", {"type": "latncy"}, "did you mean 'latency'?"),
        ("type=None", {"type": None}, "None"),
        ("name=3", {"type": "latency", "name": 3}, "3"),
        ("attributes=[1]", {"type": "latency", "attributes": [1]}, "[1]"),
        ("a list", [], "[]"),
        ("a string", "x", "'x'"),
    ):
        cases.append((given, body, fragment))
    return cases


TOXIC_CASES = _toxic_cases()


@pytest.mark.parametrize(
    ("body", "fragment"), [(b, f) for _, b, f in TOXIC_CASES], ids=[g for g, _, _ in TOXIC_CASES]
)
def test_a_bad_toxic_gets_one_clear_400(body: Any, fragment: str) -> None:
    """What ``POST /proxies/NAME/toxics`` checks a body with: one 400 whose message
    names the value (toxiproxy's clients show it as the error)."""
    from sockshock._proxy._toxics import ApiError, check_toxic

    with pytest.raises(ApiError) as info:
        check_toxic(body)
    assert info.value.status == 400
    assert fragment in info.value.message, info.value.message
    assert len(info.value.message.splitlines()) == 1, info.value.message


def counts() -> dict[str, int]:
    """Cases per entry point."""
    table: dict[str, int] = {}
    for c in CASES:
        key = (
            c.where.split(".")[0].split("(")[0]
            if c.where.startswith(("models", "clients"))
            else c.where
        )
        table[key] = table.get(key, 0) + 1
    table["scenario files"] = len(TOML_CASES) + 1
    table["command line"] = len(CLI_CASES) + 1 + len(CONFIG_CASES)
    table["pytest options and ini settings"] = len(OPTION_CASES) + sum(
        1 for n, _ in OPTION_CASES if n not in ("session_seed",)
    )
    table["pytest markers"] = len(MARKER_CASES) + len(SERVER_MARKER_CASES)
    table["pytest fixtures"] = len(FIXTURE_CASES)
    table["toxiproxy API (toxic bodies)"] = len(TOXIC_CASES)
    return table


if __name__ == "__main__":
    table = counts()
    for where, number in sorted(table.items()):
        print(f"{number:5}  {where}")
    print(f"{sum(table.values()):5}  in all")

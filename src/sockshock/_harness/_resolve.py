"""What ``serving()`` was given, checked before anything starts.

Every argument is turned into what the harness runs -- a server class, a handler
class, an address, a fault layer, bounds -- here, with one clear error naming the
value, the problem and where it came from. Nothing is bound, started or created
before all of them passed.
"""

from __future__ import annotations

import importlib
import inspect
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sockshock import socketserver as ours
from sockshock._faults import FaultPlan, check_fit, make_plan
from sockshock._harness._signatures import (
    Constructor,
    constructor_of,
    is_handler_class,
    is_server,
    loop_arguments,
    own_shutdown,
)
from sockshock._harness._tls import ServerTLS, resolve_tls
from sockshock._layer import validate_layer
from sockshock._stdlib import classes, server_names
from sockshock._util import (
    DEFAULT_SHUTDOWN_TIMEOUT,
    InvalidArgument,
    check_number,
    check_seconds,
    check_seed,
    did_you_mean,
    is_loopback,
    resolve_clock,
    unix_path,
)
from sockshock._wire import FaultLayer

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "SERVING_PARAMETERS",
    "ServeSpec",
    "ServerChoice",
    "check_address",
    "check_transport",
    "import_object",
    "is_handler_class",
    "is_loopback",
    "is_server",
    "resolve_faults",
    "resolve_handler_class",
    "resolve_server",
    "resolve_server_class",
    "resolve_spec",
]

#: How often ``serve_forever()`` runs ``service_actions()`` by default, in seconds.
DEFAULT_POLL_INTERVAL = 0.5

_AF_UNIX = getattr(socket, "AF_UNIX", None)


def import_object(spec: str, *, source: str) -> Any:
    """``"package.module:attr"`` -> the object, or one error naming the value."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidArgument(f"{source}={spec!r}: expected 'module:attr'")
    if module_name.startswith("."):
        raise InvalidArgument(
            f"{source}={spec!r}: cannot import {attr!r} from {module_name!r}: a relative "
            "module name has no package to be relative to; give the full name, such as "
            f"'package{module_name}:{attr}'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raised as it ran
        raise InvalidArgument(
            f"{source}={spec!r}: cannot import {attr!r} from {module_name!r} "
            f"({type(exc).__name__}: {exc})"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise InvalidArgument(
            f"{source}={spec!r}: cannot import {attr!r} from {module_name!r} ({exc})"
        ) from None


def import_handler_class(spec: str, *, source: str) -> type[Any]:
    """``"package.module:Handler"`` -> the request handler class, or one error naming
    the value (a module, a function or any other object is not a handler class)."""
    handler = import_object(spec, source=source)
    if not is_handler_class(handler):
        what = (
            f"the module {handler.__name__!r}"
            if inspect.ismodule(handler)
            else f"{handler!r} (type={type(handler).__name__})"
        )
        raise InvalidArgument(
            f"{source}={spec!r} is {what}, not a request handler class (a "
            "subclass of socketserver.BaseRequestHandler)"
        )
    return handler  # type: ignore[no-any-return]


def resolve_server_class(spec: Any, *, source: str = "server_class") -> type[Any]:
    """Turn a server class, a name from ``sockshock.socketserver`` or ``"module:attr"``
    into a concrete server class, with one clear error naming the value otherwise."""
    if isinstance(spec, type):
        cls: Any = spec
    elif isinstance(spec, str):
        if ":" in spec:
            cls = import_object(spec, source=source)
        else:
            names = server_names()
            if spec not in names:
                hint = did_you_mean(spec, names)
                raise InvalidArgument(
                    f"{source}={spec!r} is not a server class of sockshock.socketserver; "
                    f"{hint}known: {', '.join(names)}; or give 'module:attr'"
                )
            cls = getattr(ours, spec)
    else:
        raise InvalidArgument(
            f"expected a server class or its name but got {source}={spec!r} "
            f"(type={type(spec).__name__})"
        )
    bases = classes("BaseServer")
    if not (isinstance(cls, type) and issubclass(cls, bases)):
        raise InvalidArgument(
            f"{source}={spec!r} is {cls!r}, not a subclass of socketserver.BaseServer"
        )
    if cls in bases or not hasattr(cls, "socket_type"):
        raise InvalidArgument(
            f"{source}={spec!r} is {cls.__name__}, which has no socket: pick a concrete "
            "server class such as TCPServer, UDPServer or a subclass of them"
        )
    return cls


def transport_of(cls: type[Any]) -> str:
    return "datagram" if cls.socket_type == socket.SOCK_DGRAM else "stream"


def resolve_handler_class(
    handler: Any, server_class: type[Any], *, source: str = "handler_class"
) -> Any:
    """Check that ``handler`` is a request handler class that fits the server."""
    if not callable(handler):
        raise InvalidArgument(
            f"expected a request handler class (a subclass of "
            f"socketserver.BaseRequestHandler) but got {source}={handler!r} "
            f"(type={type(handler).__name__})"
        )
    if isinstance(handler, type) and not issubclass(handler, classes("BaseRequestHandler")):
        _check_handler_like(handler, source)
    if isinstance(handler, type):
        stream = issubclass(handler, classes("StreamRequestHandler"))
        datagram = issubclass(handler, classes("DatagramRequestHandler"))
        transport = transport_of(server_class)
        if (stream and transport == "datagram") or (datagram and transport == "stream"):
            kind = "StreamRequestHandler" if stream else "DatagramRequestHandler"
            raise InvalidArgument(
                f"{source}={handler.__name__} is a {kind}, but {server_class.__name__} is a "
                f"{transport} server; give a {'DatagramRequestHandler' if stream else 'StreamRequestHandler'}"
                f" (or a BaseRequestHandler) or a {'datagram' if stream else 'stream'} server"
            )
    return handler


def _check_unix_path(name: str, address: Any, *, source: str, new: bool) -> str:
    return unix_path(source, address, source=name, new=new, bind=True)


def check_address(
    cls: type[Any], address: Any, *, source: str = "address", new: bool = True
) -> Any:
    """A loopback (host, port) of the server's family, or a Unix path whose
    directory exists (and, ``new``, that does not exist yet); returns the address to
    bind (a Unix path as ``str``)."""
    family = cls.address_family
    name = cls.__name__
    if _AF_UNIX is not None and family == _AF_UNIX:
        return _check_unix_path(name, address, source=source, new=new)
    v6_family = family == socket.AF_INET6
    if not (
        isinstance(address, tuple)
        and isinstance(address[:1], tuple)
        and len(address) in ((2, 3, 4) if v6_family else (2,))
        and isinstance(address[0], str)
    ):
        shape = "(host, port[, flowinfo[, scope_id]])" if v6_family else "(host, port)"
        raise InvalidArgument(f"{source}={address!r} for {name} must be a {shape} tuple")
    host, port = address[0], address[1]
    check_number("port", port, low=0, high=65535, integer=True, source=f"{source}={address!r}")
    for extra, value in zip(("flowinfo", "scope_id"), address[2:], strict=False):
        check_number(
            extra, value, low=0, high=2**32 - 1, integer=True, source=f"{source}={address!r}"
        )
    if not is_loopback(host):
        raise InvalidArgument(
            f"{source}={address!r}: sockshock serves on loopback addresses only "
            f"(127.0.0.0/8, ::1, localhost), not {host!r}: build the server on "
            "('127.0.0.1', 0) -- port 0 lets the kernel choose"
        )
    if host != "localhost":
        v6 = ":" in host
        if v6 != v6_family:
            wanted = "('::1', 0)" if v6_family else "('127.0.0.1', 0)"
            raise InvalidArgument(
                f"{source}={address!r} is an IPv{6 if v6 else 4} address but {name} listens "
                f"on IPv{6 if v6_family else 4}; use {wanted}, or a server "
                f"class with address_family = socket.AF_INET{'6' if v6 else ''}"
            )
    return address


def _check_handler_like(handler: type[Any], source: str) -> None:
    """A class that is not a ``BaseRequestHandler`` must at least be built the way a
    server builds a handler, ``Handler(request, client_address, server)``: a server
    class (the two arguments swapped) or a built-in type fails only at the first
    connection, inside the server's thread."""
    wrong = None
    if hasattr(handler, "serve_forever"):
        wrong = "a server class, not a request handler class"
    else:
        try:
            inspect.signature(handler).bind(None, None, None)
        except TypeError:
            wrong = "not built as Handler(request, client_address, server)"
        except ValueError:  # no signature (a built-in type)
            wrong = "not a request handler class"
    if wrong is not None:
        raise InvalidArgument(
            f"expected a request handler class (a subclass of "
            f"socketserver.BaseRequestHandler) but got {source}={handler!r}: {wrong}"
        )


def resolve_faults(
    faults: Any,
    *,
    clock: Any,
    seed: Any,
    server_class: type[Any] | None,
    default_seed: int | None = None,
    default_clock: Any = None,
    source: str = "faults",
) -> FaultLayer | None:
    """The one place where ``faults``/``seed``/``clock`` become a fault layer.

    ``default_seed`` and ``default_clock`` (the pytest plugin's) apply where the
    user's own values leave room: a seed for a list of models, a clock for anything
    but a ready FaultLayer.
    """
    if faults is None:
        given = [
            f"{name}={value!r}"
            for name, value in (("clock", clock), ("seed", seed))
            if value is not None
        ]
        if given:
            raise InvalidArgument(
                f"{' and '.join(given)} (from serving()): clock= "
                "and seed= only apply with faults=; pass faults=[...] (an "
                "empty list for none)"
            )
        return None
    check_clock(clock, source="serving()")
    if seed is not None:
        check_seed(seed, source=source)
    if isinstance(faults, FaultLayer):
        if clock is not None or seed is not None:
            raise InvalidArgument("clock= and seed= cannot change a ready FaultLayer")
        layer = faults
    else:
        if seed is None and not isinstance(faults, FaultPlan):
            seed = default_seed
        plan = make_plan(faults, seed=seed, source=source, where=f"serving({source}=...)")
        layer = FaultLayer(
            plan, resolve_clock(clock if clock is not None else default_clock, source="clock")
        )
    if server_class is not None:
        try:
            check_transport(layer.plan, server_class, source=source)
        except InvalidArgument:
            layer.close()
            raise
    return layer


def check_clock(clock: Any, *, source: str) -> None:
    """A clock class where its instance was meant (``clock=sockshock.VirtualClock``)."""
    if isinstance(clock, type):
        resolve_clock(clock, source=source)  # the error for a class


def check_transport(
    plan: FaultPlan, server_class: type[Any], *, source: str, tls: bool = True
) -> None:
    """Every model of ``plan`` can fire on ``server_class`` (plaintext-layer models
    are checked against TLS where TLS is resolved: ``tls`` defaults to True here)."""
    check_fit(
        plan.models,
        transport=transport_of(server_class),
        tls=tls,
        target=server_class.__name__,
        where=source,
        fix="leave it out or serve a server of the other kind",
    )


#: Largest listen() backlog (a C int); the kernel caps it further (somaxconn).
MAX_BACKLOG = 2**31 - 1
#: Largest ``max_packet_size`` accepted (16 MiB; a datagram is at most 64 KiB on
#: loopback, a little more on Unix sockets).
MAX_PACKET_SIZE = 2**24
#: Attributes a server sets for itself, and what to give ``serving()`` instead.
_NOT_SETTINGS = {
    "socket": "the server makes its own socket (pass a ready-made server instance "
    "to serve one you built)",
    "server_address": "give address=",
    "RequestHandlerClass": "give handler_class=",
    "address_family": "give a server class of that family (a subclass with address_family = ...)",
    "socket_type": "give a server class of that type (TCP or UDP, stream or datagram)",
    "active_children": "ForkingMixIn keeps it itself",
}
_BOOL_SETTINGS = ("daemon_threads", "block_on_close", "allow_reuse_address", "allow_reuse_port")


def check_setting(name: str, value: Any, *, source: str) -> None:
    """The standard socketserver settings given as server attributes: their types
    and ranges, so that a bad one fails here rather than as an OverflowError from
    ``listen()`` or a hang in ``collect_children()``."""
    where = f"{name}={value!r} (from {source})"
    if name in _NOT_SETTINGS:
        raise InvalidArgument(
            f"{where}: {name} is not a setting, the server sets it itself; {_NOT_SETTINGS[name]}"
        )
    if name in _BOOL_SETTINGS:
        if not isinstance(value, bool):
            raise InvalidArgument(
                f"expected True or False but got {name}={value!r} "
                f"(type={type(value).__name__}) (from {source})"
            )
    elif name == "request_queue_size":
        check_number(name, value, low=0, high=MAX_BACKLOG, integer=True, source=source)
    elif name in ("max_children", "max_workers", "max_queued_requests"):
        check_number(name, value, low=1, integer=True, source=source)
    elif name == "max_packet_size":
        check_number(name, value, low=1, high=MAX_PACKET_SIZE, integer=True, source=source)
    elif name == "timeout":
        if value is not None:
            check_seconds(name, value, source=source, allow_zero=True)
    elif name == "socket_layer":
        validate_layer(value, source=source)


#: ``serving()``'s own parameters (its ``**server_attrs`` aside): a server attribute
#: the class does not have and that is a near miss of one of these is refused, since
#: a misspelled ``faults=`` would otherwise become ``server.fault`` and the test run
#: without faults (a test checks that this matches ``serving()``'s signature).
SERVING_PARAMETERS = (
    "server_class",
    "handler_class",
    "address",
    "server_kwargs",
    "faults",
    "clock",
    "seed",
    "shutdown_timeout",
    "poll_interval",
    "expect_errors",
    "tls",
    "tls_strict",
)

#: How close a new attribute name must be to one of ``serving()``'s parameters to
#: be refused as a near miss (difflib's ratio, and the same first letter): ``fault``,
#: ``fautls``, ``expect_error``, ``seeds`` are; ``lock`` (``clock``), ``stock``,
#: ``handler``, ``timeout``, ``fault_log`` are not.
PARAMETER_NEAR_MISS = 0.8
#: One letter off a four-letter parameter (``sead``, but also ``seen``, ``feed``) is
#: closer than :data:`PARAMETER_NEAR_MISS` allows: such a name is refused only with
#: a value that parameter takes (``sead=3``; not ``seen=set()``).
PARAMETER_ONE_OFF = 0.75
_TAKES: dict[str, Callable[[Any], bool]] = {"seed": lambda value: type(value) is int}


def _parameter_near_miss(name: str, value: Any, parameters: tuple[str, ...]) -> str | None:
    """The one of ``parameters`` that ``name=value`` looks like a misspelling of."""
    import difflib

    same_initial = [p for p in parameters if p[:1] == name[:1]]
    close = difflib.get_close_matches(name, same_initial, n=1, cutoff=PARAMETER_ONE_OFF)
    if not close:
        return None
    ratio = difflib.SequenceMatcher(None, name, close[0]).ratio()
    takes = _TAKES.get(close[0])
    if ratio >= PARAMETER_NEAR_MISS or (takes is not None and takes(value)):
        return close[0]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def split_server_attrs(
    cls: type[Any],
    attrs: dict[str, Any],
    *,
    adopting: bool,
    source: str = "serving()",
    parameters: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Server attributes -> (class attributes of the per-run subclass, instance
    attributes). A setting the class has is both (in force during ``__init__``, and
    over what ``__init__`` assigned); a new name is instance state (a resolver, an
    app, a database handle), unless it is a near miss of a setting or -- when the
    attributes reach the server through ``serving()``'s ``**server_attrs``,
    ``parameters`` being :data:`SERVING_PARAMETERS` -- one of ``serving()``'s own
    parameters, or is one (only possible from a mapping, such as a scenario's
    ``[server] attrs``)."""
    if not attrs:
        return {}, {}
    class_attrs: dict[str, Any] = {}
    for name, value in attrs.items():
        if not name.isidentifier() or name.startswith("__"):
            raise InvalidArgument(
                f"server attribute {name!r} (from {source}) is not a plain attribute name"
            )
        existing = getattr(cls, name, None)
        if callable(existing) and not isinstance(existing, type):
            raise InvalidArgument(
                f"{name}={value!r} (from {source}): {name} is a method of {cls.__name__}; "
                "subclass the server to change it"
            )
        check_setting(name, value, source=source)
        if hasattr(cls, name):
            if not adopting:
                class_attrs[name] = value
            continue
        settings = [
            setting
            for setting in dir(cls)
            if not setting.startswith("_") and not callable(getattr(cls, setting, None))
        ]
        hint = did_you_mean(name, settings, cutoff=0.8)
        if hint:
            raise InvalidArgument(
                f"{cls.__name__} has no setting {name!r} (server attribute {name}={value!r} "
                f"from {source}); {hint}(To give it an attribute of "
                f"that name all the same, subclass it: class My{cls.__name__}"
                f"({cls.__name__}): {name} = ...)"
            )
        if name in parameters:
            raise InvalidArgument(
                f"{name}={_short(value)} (from {source}): {name} is serving()'s own "
                f"parameter, not a server attribute; give it as serving()'s {name}= "
                f"(to give the server an attribute of that name all the same, subclass "
                f"it: class My{cls.__name__}({cls.__name__}): {name} = None)"
            )
        close = _parameter_near_miss(name, value, parameters)
        if close is not None:
            raise InvalidArgument(
                f"{name}={_short(value)} (from {source}): not an attribute "
                f"{cls.__name__} has, and close to serving()'s parameter {close}=: did "
                f"you mean {close}=? (a misspelled parameter would be set on the server "
                f"and silently ignored; to give the server an attribute named {name!r} "
                f"all the same, subclass it: class My{cls.__name__}({cls.__name__}): "
                f"{name} = None)"
            )
    return class_attrs, dict(attrs)


def check_server_kwargs(
    cls: type[Any], kwargs: dict[str, Any], *, source: str, constructor: Constructor | None = None
) -> None:
    """``server_kwargs`` are keyword arguments the class's constructor takes, other than
    the address and the handler class, which ``serving()`` passes itself."""
    if not kwargs:
        return
    ctor = constructor if constructor is not None else constructor_of(cls)
    for name, instead in zip(
        (ctor.address, ctor.handler), ("address=", "handler_class="), strict=True
    ):
        if isinstance(name, str) and name in kwargs:
            raise InvalidArgument(
                f"server_kwargs={kwargs!r} (from {source}): serving() passes {cls.__name__}'s "
                f"{name!r} itself; give {instead} instead"
            )
    if kwargs.get("bind_and_activate", True) is not True:
        raise InvalidArgument(
            f"server_kwargs={kwargs!r} (from {source}): bind_and_activate="
            f"{kwargs['bind_and_activate']!r} would leave {cls.__name__} without a listening "
            "socket, and every connection refused; serving() binds and activates the "
            "server itself: leave bind_and_activate out"
        )
    names = ctor.others
    if names is None:
        return  # **kwargs, or no signature to check against
    for key in kwargs:
        if key not in names:
            hint = did_you_mean(key, names)
            raise InvalidArgument(
                f"server_kwargs={kwargs!r} (from {source}): {cls.__name__}() takes no "
                f"keyword argument {key!r}; {hint}it takes "
                + (", ".join(names) if names else "none besides the address and handler")
            )


def check_expected_errors(expect_errors: Any, *, source: str) -> tuple[type[BaseException], ...]:
    """An exception class or a tuple of them."""
    items = expect_errors if isinstance(expect_errors, tuple) else (expect_errors,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise InvalidArgument(
                f"expected an exception class or a tuple of them but got "
                f"expect_errors={expect_errors!r} (from {source})"
            )
    return items


@dataclass
class ServeSpec:
    """Everything ``serving()`` runs, checked."""

    server_class: type[Any]  # the class, or the class of the instance to adopt
    instance: Any  # a ready-made server to adopt, or None
    handler_class: Any
    address: Any  # None: the harness picks one
    server_kwargs: dict[str, Any]
    layer: FaultLayer | None
    shutdown_timeout: float
    poll_interval: float | None
    class_attrs: dict[str, Any]
    instance_attrs: dict[str, Any]
    expect_errors: tuple[type[BaseException], ...] = ()
    tls: ServerTLS | None = None
    #: How the class's constructor is called (not for an instance).
    constructor: Constructor = field(default_factory=Constructor)
    #: The keyword arguments ``serve_forever()`` is called with.
    loop_kwargs: dict[str, float | None] | None = None
    #: Whether the class stops through its own ``shutdown()``.
    own_shutdown: bool = False
    tls_strict: bool = False  # a failed TLS handshake is a handler error too
    #: The seed of the empty plan a handle without faults shows (the test's, in pytest).
    seed: int | None = None
    #: Where warnings about this server point, ``(filename, lineno)``: the test's
    #: call of the fixture's ``serve()``, whose server stops in pytest's teardown
    #: (None: the first frame outside sockshock, the ``with serving()`` statement).
    warn_at: tuple[str, int] | None = None


def _adoptable(
    server: Any, handler_class: Any, address: Any, server_kwargs: dict[str, Any]
) -> type[Any]:
    cls = type(server)
    name = cls.__name__
    if handler_class is not None:
        raise InvalidArgument(
            f"serving({name} instance, {handler_class!r}): a ready-made server already has "
            f"its handler ({server.RequestHandlerClass!r}); give the server alone"
        )
    if address is not None or server_kwargs:
        raise InvalidArgument(
            f"serving({name} instance): address= and server_kwargs= only "
            "apply to a server class; the instance is already bound"
        )
    sock = getattr(server, "socket", None)
    if not isinstance(sock, socket.socket) or sock.fileno() < 0:
        raise InvalidArgument(f"serving({name} instance): it has no open socket (closed already?)")
    check_address(cls, server.server_address, source=f"{name}.server_address", new=False)
    serving = _serving_thread(server)
    if serving is not None:
        raise InvalidArgument(
            f"serving({name} instance): thread {serving.name!r} is already running its "
            "serve_forever(); sockshock must run the loop itself -- give it the server "
            "before anything starts serving it (or stop that loop first: shutdown())"
        )
    return cls


def _serving_thread(server: Any) -> threading.Thread | None:
    """The thread running ``server.serve_forever()`` now, if any (found by its
    frames: a library may call it from anywhere)."""
    threads = {t.ident: t for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        walker: Any = frame
        while walker is not None:
            if walker.f_code.co_name == "serve_forever" and walker.f_locals.get("self") is server:
                return threads.get(ident, threading.current_thread())
            walker = walker.f_back
    return None


@dataclass(frozen=True)
class ServerChoice:
    """A server class and the request handler class it runs with, checked.

    Attributes:
        server_class: the server class.
        handler_class: the handler class to pass; None: the constructor's own (its
            default, or the class picks one itself).
        transport: ``"stream"`` or ``"datagram"``.
        origin: where the handler comes from: ``"given"``, ``"default"`` (the
            constructor's default), ``"own"`` (the constructor takes none: the
            class picks it) or ``"demo"`` (sockshock's echo handler, for a class
            that needs one and got none).
        constructor: how the constructor is called.
    """

    server_class: type[Any]
    handler_class: Any
    transport: str
    origin: str
    constructor: Constructor

    def describe_handler(self) -> str:
        """The handler in words: ``"LineEcho (sockshock's demo echo handler)"``."""
        name = self.server_class.__name__
        if self.origin == "own":
            return f"the one {name} picks itself"
        if self.origin == "default":
            default = self.constructor.default
            what = getattr(default, "__name__", repr(default))
            return f"{what} ({name}'s default)"
        handler = getattr(self.handler_class, "__name__", repr(self.handler_class))
        return f"{handler} (sockshock's demo echo handler)" if self.origin == "demo" else handler


def _demo_handler(transport: str) -> type[Any]:
    from sockshock._harness._handlers import DatagramEcho, LineEcho

    return DatagramEcho if transport == "datagram" else LineEcho


def choose_handler(
    cls: type[Any], handler: Any, *, source: str, demo: bool = False, where: str = "serving()"
) -> ServerChoice:
    """The handler ``cls`` runs with: ``handler`` if given (it must fit the class and
    the constructor must take one); else the constructor's own -- its default, or
    none at all when the class picks its handler itself; else, with ``demo``,
    sockshock's echo handler; else one clear error."""
    constructor = constructor_of(cls)
    transport = transport_of(cls)
    if isinstance(handler, str):
        if ":" not in handler:
            raise InvalidArgument(
                f"expected a request handler class or its 'module:attr' but got "
                f"{source}={handler!r} (from {where})"
            )
        handler = import_handler_class(handler, source=source)
    if handler is not None:
        if constructor.handler is None:
            raise InvalidArgument(
                f"{source}={handler!r} (from {where}): {cls.__name__}() takes no request "
                f"handler class (its parameters: {_parameters(cls)}): it picks its own; "
                "give the server class alone"
            )
        return ServerChoice(
            cls,
            resolve_handler_class(handler, cls, source=source),
            transport,
            "given",
            constructor,
        )
    if constructor.handler is None:
        return ServerChoice(cls, None, transport, "own", constructor)
    if not constructor.handler_required:
        return ServerChoice(cls, None, transport, "default", constructor)
    if demo:
        return ServerChoice(cls, _demo_handler(transport), transport, "demo", constructor)
    raise InvalidArgument(
        f"expected a request handler class (a subclass of "
        f"socketserver.BaseRequestHandler) but got {source}=None for {cls.__name__}, "
        f"whose constructor has no default one (from {where})"
    )


def _parameters(cls: type[Any]) -> str:
    try:
        return str(inspect.signature(cls))
    except (TypeError, ValueError):
        return "(unknown)"


def resolve_server(
    server: Any,
    handler: Any = None,
    *,
    server_source: str = "server_class",
    handler_source: str = "handler_class",
    demo: bool = False,
    where: str = "serving()",
) -> ServerChoice:
    """The one resolver of a server class and its handler, for every route that names
    a class (``serving()``, the fixture, ``sockshock run --server``, scenarios,
    ``ServerMachine``): ``server`` a class, a name in ``sockshock.socketserver`` or
    ``"module:attr"``; ``handler`` a handler class, ``"module:attr"`` or None (see
    :func:`choose_handler`; ``demo``: sockshock's echo handler for a class that needs
    one and has no default).

    Raises:
        InvalidArgument: the first mistake, naming the value and its source.
    """
    cls = resolve_server_class(server, source=server_source)
    return choose_handler(cls, handler, source=handler_source, demo=demo, where=where)


def resolve_spec(
    server_class: Any,
    handler_class: Any,
    *,
    address: Any,
    faults: Any,
    clock: Any,
    seed: Any,
    shutdown_timeout: Any,
    poll_interval: Any,
    server_attrs: dict[str, Any],
    server_kwargs: Any = None,
    expect_errors: Any = (),
    tls: Any = None,
    tls_strict: Any = False,
    default_seed: int | None = None,
    default_clock: Any = None,
    poll_interval_given: bool | None = None,
) -> ServeSpec:
    """Check every argument of ``serving()``; build the fault layer last.

    ``poll_interval_given``: whether the user chose ``poll_interval`` (default:
    whether it differs from :data:`DEFAULT_POLL_INTERVAL`)."""
    source = "serving()"
    check_seconds("shutdown_timeout", shutdown_timeout, source=source)
    check_seconds("poll_interval", poll_interval, source=source, allow_none=True)
    if poll_interval_given is None:
        poll_interval_given = poll_interval != DEFAULT_POLL_INTERVAL
    if server_kwargs is None:
        server_kwargs = {}
    if not isinstance(server_kwargs, Mapping) or not all(isinstance(k, str) for k in server_kwargs):
        raise InvalidArgument(
            f"expected a dict of keyword arguments but got "
            f"server_kwargs={server_kwargs!r} (from {source})"
        )
    server_kwargs = dict(server_kwargs)
    expected = check_expected_errors(expect_errors, source=source)
    instance = None
    constructor = Constructor()
    if is_server(server_class):
        instance = server_class
        cls = _adoptable(instance, handler_class, address, server_kwargs)
        handler = None
    else:
        choice = resolve_server(server_class, handler_class, where=source)
        cls, handler, constructor = choice.server_class, choice.handler_class, choice.constructor
        if address is not None:
            address = check_address(cls, address)
        check_server_kwargs(cls, server_kwargs, source=source, constructor=constructor)
    loop_kwargs = loop_arguments(
        cls,
        None if poll_interval is None else float(poll_interval),
        given=poll_interval_given,
        source=source,
    )
    class_attrs, instance_attrs = split_server_attrs(
        cls, server_attrs, adopting=instance is not None, parameters=SERVING_PARAMETERS
    )
    layer = resolve_faults(
        faults,
        clock=clock,
        seed=seed,
        server_class=cls,
        default_seed=default_seed,
        default_clock=default_clock,
    )
    try:
        server_tls = resolve_tls(tls, server_class=cls, layer=layer, strict=tls_strict)
    except BaseException:
        if layer is not None:
            layer.close()
        raise
    return ServeSpec(
        cls,
        instance,
        handler,
        address,
        dict(server_kwargs),
        layer,
        float(shutdown_timeout),
        None if poll_interval is None else float(poll_interval),
        class_attrs,
        instance_attrs,
        expected,
        server_tls,
        constructor,
        loop_kwargs,
        own_shutdown(cls),
        tls_strict is True,
        default_seed if layer is None else None,
    )

"""What a server class's signatures say: how to call its constructor, its
``serve_forever()`` and whether it stops itself its own way.

The harness runs classes it has never seen -- the standard library's, packages'
built on it, a test's own -- as their authors wrote them: the address and the
request handler class passed by name to the parameters that take them, the
constructor's own default handler when none is given, ``serve_forever()`` called
with only the arguments it takes, and the class's own ``shutdown()`` when it
overrides it.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from dataclasses import dataclass
from typing import Any

from sockshock import socketserver as ours
from sockshock._stdlib import classes, stdlib_socketserver
from sockshock._util import InvalidArgument

__all__ = [
    "Constructor",
    "constructor_of",
    "default_handler",
    "is_handler_class",
    "is_server",
    "loop_arguments",
    "own_shutdown",
]


def is_server(value: Any) -> bool:
    """Whether ``value`` is a server instance (sockshock's or the standard library's)."""
    return isinstance(value, classes("BaseServer"))


def is_handler_class(value: Any) -> bool:
    """Whether ``value`` is a request handler class."""
    return isinstance(value, type) and issubclass(value, classes("BaseRequestHandler"))


def _constructor_parameters(cls: type[Any]) -> list[inspect.Parameter] | None:
    """The parameters of the first ``__init__`` in ``cls``'s MRO that is more than a
    pass-through (``ThreadPoolMixIn.__init__(self, *args, **kwargs)``), without self."""
    passing = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        if not all(p.kind in passing for p in parameters):
            return parameters
    return None


#: A parameter of a constructor: its name (passed by keyword), or its position
#: (positional-only: passed in that place).
Slot = str | int

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class Constructor:
    """How the harness calls a server class's constructor: which parameter takes
    the address and which the request handler class, read from its signature, so
    that both are passed by name (a second positional parameter that is not the
    handler -- ``bind_and_activate`` -- never receives it).

    Attributes:
        address: the address's parameter.
        handler: the handler class's parameter; None: the constructor has none (the
            class picks its handler itself).
        handler_required: whether the handler parameter has no default.
        default: the handler parameter's default (``SimpleXMLRPCRequestHandler``,
            ``None``...), or None.
        others: the other parameters that can be given by name
            (``server_kwargs``); None: any (``**kwargs``, or no signature).
    """

    address: Slot = 0
    handler: Slot | None = 1
    handler_required: bool = True
    default: Any = None
    others: tuple[str, ...] | None = None

    def call(self, cls: type[Any], address: Any, handler: Any, kwargs: dict[str, Any]) -> Any:
        """``cls(...)`` with the address, the handler class (None: not passed, the
        constructor's own default) and ``kwargs``."""
        args: list[Any] = []
        named = dict(kwargs)
        for slot, value, given in (
            (self.address, address, True),
            (self.handler, handler, handler is not None),
        ):
            if slot is None or not given:
                continue
            if isinstance(slot, int):
                args.append(value)  # positional-only: the address first, then the handler
            else:
                named[slot] = value
        return cls(*args, **named)

    def names(self) -> list[str]:
        """The address's and the handler's parameter names (as messages give them)."""
        return [slot for slot in (self.address, self.handler) if isinstance(slot, str)]


def _handler_parameter(
    rest: list[inspect.Parameter],
) -> inspect.Parameter | None:
    """Which of the parameters after the address takes the request handler class:
    ``RequestHandlerClass`` by name, else one whose default is a handler class, else
    one named like a handler (``requestHandler``, ``handler_class``), else the next
    positional parameter if it is required (the standard library's shape, whatever
    its name). None: the constructor takes no handler class."""
    named = [p for p in rest if p.kind in (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY)]
    for test in (
        lambda p: p.name == "RequestHandlerClass",
        lambda p: is_handler_class(p.default),
        lambda p: "handler" in p.name.lower(),
    ):
        found = [p for p in named if test(p)]
        if found:
            return found[0]
    if rest and rest[0].kind in _POSITIONAL and rest[0].default is _NO_DEFAULT:
        return rest[0]
    return None


# What a class's signatures say, read once per class: reading a signature costs more
# than the rest of resolving serving()'s arguments. Each entry is kept with what it
# was read from (every __init__ in the MRO: inject() patches TCPServer's), and read
# again if that changed.
_CONSTRUCTORS: weakref.WeakKeyDictionary[type[Any], tuple[tuple[Any, ...], Constructor]] = (
    weakref.WeakKeyDictionary()
)
_LOOPS: weakref.WeakKeyDictionary[type[Any], tuple[Any, tuple[bool, tuple[str, ...], str]]] = (
    weakref.WeakKeyDictionary()
)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def constructor_of(cls: type[Any]) -> Constructor:
    """How to call ``cls``'s constructor (see :class:`Constructor`). Without a
    signature to read: the address and the handler class positionally, as the
    standard library's classes take them."""
    key = (stdlib_socketserver(), *(k.__dict__.get("__init__") for k in cls.__mro__))
    cached = _CONSTRUCTORS.get(cls)
    if cached is not None and _same(cached[0], key):
        return cached[1]
    constructor = _read_constructor(cls)
    with contextlib.suppress(TypeError):  # a class that cannot be weakly referenced
        _CONSTRUCTORS[cls] = (key, constructor)
    return constructor


def _read_constructor(cls: type[Any]) -> Constructor:
    parameters = _constructor_parameters(cls)
    if parameters is None:
        return Constructor()
    positional = [p for p in parameters if p.kind in _POSITIONAL]
    by_name = [p for p in parameters if p.name == "server_address" and p.kind in _NAMED]
    address = by_name[0] if by_name else (positional[0] if positional else None)
    if address is None:
        return Constructor()
    rest = [p for p in parameters if p is not address]
    handler = _handler_parameter(rest)
    if handler is None and any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in rest):
        return Constructor()  # (server_address, *args, ...): the handler is in *args

    def slot(parameter: inspect.Parameter) -> Slot:
        if parameter.kind == inspect.Parameter.POSITIONAL_ONLY:
            return parameters.index(parameter)
        return parameter.name

    others = (
        None
        if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters)
        else tuple(p.name for p in rest if p.kind in _NAMED and p is not handler)
    )
    return Constructor(
        slot(address),
        None if handler is None else slot(handler),
        handler is not None and handler.default is _NO_DEFAULT,
        None if handler is None or handler.default is _NO_DEFAULT else handler.default,
        others,
    )


def default_handler(cls: type[Any]) -> Any:
    """The request handler class ``cls``'s constructor takes by default
    (``SimpleXMLRPCServer(addr, requestHandler=...)``), or None."""
    default = constructor_of(cls).default
    return default if is_handler_class(default) else None


def _defining(cls: type[Any], name: str) -> Any:
    """The function ``name`` as the first class in ``cls``'s MRO that defines it has it."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def loop_arguments(
    cls: type[Any], poll_interval: float | None, *, given: bool, source: str
) -> dict[str, float | None]:
    """The keyword arguments the harness calls ``cls``'s ``serve_forever()`` with:
    ``poll_interval`` if it takes one, else none -- an override that takes no
    ``poll_interval`` (``def serve_forever(self):``) is called without it.

    Args:
        given: whether the user chose ``poll_interval`` (then a ``serve_forever()``
            that cannot take it is an error, not silently ignored).

    Raises:
        InvalidArgument: ``serve_forever()`` requires an argument the harness
            cannot give, or takes no ``poll_interval`` that the user gave.
    """
    method = _defining(cls, "serve_forever")
    cached = _LOOPS.get(cls)
    if cached is not None and cached[0] is method:
        read = cached[1]
    else:
        read = _read_loop(cls, method)
        with contextlib.suppress(TypeError):
            _LOOPS[cls] = (method, read)
    takes, required, where = read
    if required:
        raise InvalidArgument(
            f"{where} requires {', '.join(map(repr, required))}, which sockshock cannot give: "
            f"it calls serve_forever() with poll_interval= at most (from {source}); give "
            "those parameters defaults"
        )
    if takes:
        return {"poll_interval": poll_interval}
    if given:
        raise InvalidArgument(
            f"poll_interval={poll_interval!r} (from {source}): {where} takes no "
            "poll_interval; leave it out"
        )
    return {}


def _read_loop(cls: type[Any], method: Any) -> tuple[bool, tuple[str, ...], str]:
    """(whether ``serve_forever()`` takes ``poll_interval``, the parameters it
    requires, its signature as messages give it)."""
    try:
        parameters = list(inspect.signature(method).parameters.values())[1:]
    except (TypeError, ValueError):
        return True, (), f"{cls.__name__}.serve_forever()"  # no signature: the standard one
    takes = any(
        p.kind == p.VAR_KEYWORD
        or (p.name == "poll_interval" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        for p in parameters
    )
    required = tuple(
        p.name
        for p in parameters
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and not (takes and p.name == "poll_interval")
    )
    return takes, required, f"{cls.__name__}.serve_forever({', '.join(map(str, parameters))})"


def own_shutdown(cls: type[Any]) -> bool:
    """Whether ``cls`` overrides ``shutdown()`` -- its own loop and stop event, say
    -- rather than using sockshock's or the standard library's (grafted or not)."""
    method = _defining(cls, "shutdown")
    standard = {ours.BaseServer.__dict__["shutdown"]}
    stdlib = stdlib_socketserver()
    if stdlib is not None:
        standard.add(stdlib.BaseServer.__dict__["shutdown"])
    return method is not None and method not in standard

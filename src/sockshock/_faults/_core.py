"""Operations, decisions and the scoped model base class -- pure data, no I/O.

This package never imports ``socket``, ``selectors``, ``threading`` or ``time``
(``tests/test_faults_pure.py`` checks): a model sees an :class:`Operation` and a
``random.Random`` and returns a :class:`Decision`. The injection layer carries
decisions out on real sockets; the in-memory driver can carry them out without any.
"""

from __future__ import annotations

import contextlib
import random
import types
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any, ClassVar, NamedTuple

from sockshock._util import MAX_SECONDS, InvalidArgument, check_choice, check_number

__all__ = [
    "ACCEPT",
    "DATAGRAM_IN",
    "DATAGRAM_OUT",
    "DROP",
    "EOF",
    "ERROR",
    "LAYERS",
    "MAX_DELAY",
    "PLAINTEXT",
    "RECV",
    "RESET",
    "SEND",
    "SHUTDOWN",
    "STALL",
    "TRANSPORT_KINDS",
    "WIRE",
    "Decision",
    "FaultModel",
    "Operation",
]

# Operation kinds. "in"/"out" are from the server's point of view: what it reads
# (the client's request) and what it writes (its response).
RECV = "recv"
SEND = "send"
DATAGRAM_IN = "datagram_in"
DATAGRAM_OUT = "datagram_out"
ACCEPT = "accept"

#: The operation kinds each transport's sockets perform.
TRANSPORT_KINDS = {"stream": (RECV, SEND, ACCEPT), "datagram": (DATAGRAM_IN, DATAGRAM_OUT)}

# Where a model acts: on the network's bytes, or above TLS.
WIRE = "wire"
PLAINTEXT = "plaintext"
LAYERS = (WIRE, PLAINTEXT)

# Decision actions.
RESET = "reset"  # the peer reset the connection
EOF = "eof"  # the peer closed its side
STALL = "stall"  # the peer went silent
DROP = "drop"  # the datagram is lost
ERROR = "error"  # the call fails with Decision.errno
SHUTDOWN = "shutdown"  # the server is stopped

#: The longest delay a model may ask for, in seconds (one hour: see _util._bounds).
MAX_DELAY = MAX_SECONDS


class Operation(NamedTuple):
    """One socket operation the server is about to perform (a named tuple: made
    for every operation, so it must be cheap).

    Attributes:
        kind: ``"recv"``, ``"send"``, ``"datagram_in"``, ``"datagram_out"`` or
            ``"accept"``.
        connection: index of the connection (stream: in accept order; datagram:
            of each peer address in order of first appearance; accept: the index
            the next connection will get).
        address: the peer's address (``None`` for accept).
        size: bytes asked for (recv), offered (send) or the datagram's size.
        offset: bytes already moved in this direction on this connection.
        index: how many operations of this direction came before on this connection.
        now: the clock's time (virtual or monotonic seconds).
        layer: ``"wire"`` or ``"plaintext"`` (above TLS).
    """

    kind: str
    connection: int
    address: Any = None
    size: int = 0
    offset: int = 0
    index: int = 0  # type: ignore[assignment]  # (shadows tuple.index, on purpose)
    now: float = 0.0
    layer: str = "wire"


class Decision(NamedTuple):
    """What one or more models decided for one operation (a named tuple, like
    :class:`Operation`).

    Attributes:
        delay: seconds before the operation may complete (data seen / leaves).
        limit: at most this many bytes are moved (partial read or write).
        action: ``None`` or one of ``"reset"``, ``"eof"``, ``"stall"``, ``"drop"``,
            ``"error"`` (raise ``errno``), ``"shutdown"`` (stop the server).
        errno: for ``action="error"`` (and the error reported for ``"reset"``).
        duplicate: extra copies of a datagram.
        corrupt: bit positions to flip in a datagram.
        truncate: a datagram is cut to this many bytes.
        hold: a datagram is held back behind this many later ones (reordering).
        close_after: for ``"stall"``: seconds after which the stalled connection
            is closed (``None``: it stays stalled; toxiproxy's ``timeout`` toxic).
    """

    delay: float = 0.0
    limit: int | None = None
    action: str | None = None
    errno: int | None = None
    duplicate: int = 0
    corrupt: tuple[int, ...] = ()
    truncate: int | None = None
    hold: int = 0
    close_after: float | None = None

    def merge(self, other: Decision) -> Decision:
        """Combine two decisions: delays add, limits take the smaller, the first
        action wins, copies add, bit flips accumulate."""
        limits = [x for x in (self.limit, other.limit) if x is not None]
        truncates = [x for x in (self.truncate, other.truncate) if x is not None]
        return Decision(
            delay=self.delay + other.delay,
            limit=min(limits) if limits else None,
            action=self.action or other.action,
            errno=self.errno if self.action else other.errno,
            duplicate=self.duplicate + other.duplicate,
            corrupt=self.corrupt + other.corrupt,
            truncate=min(truncates) if truncates else None,
            hold=max(self.hold, other.hold),
            close_after=self.close_after if self.action else other.close_after,
        )

    def only_limits(self) -> bool:
        """Whether the decision does nothing but (perhaps) limit the bytes moved."""
        return (
            self.delay == 0
            and self.action is None
            and not self.duplicate
            and not self.corrupt
            and self.truncate is None
            and not self.hold
        )

    def __str__(self) -> str:
        parts = []
        for name, default in self._field_defaults.items():
            value = getattr(self, name)
            if value != default:
                parts.append(f"{name}={value!r}" if name != "delay" else f"delay={value:.4g}s")
        return ", ".join(parts) or "pass"


NOTHING = Decision()


def _check_connections(value: Any, source: str) -> Sequence[int] | None:
    if value is None:
        return None
    items = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise InvalidArgument(
            f"expected an int or a sequence of ints but got connections={value!r} "
            f"(type={type(value).__name__}) (from {source})"
        )
    if not items:
        raise InvalidArgument(
            f"connections={value!r} selects no connection at all; leave it "
            f"out to mean every connection (from {source})"
        )
    if isinstance(items, range):  # checked and kept as it is: O(1), however long
        check_number("connections", min(items[0], items[-1]), low=0, integer=True, source=source)
        return items
    for item in items:
        check_number("connections", item, low=0, integer=True, source=source)
    return tuple(items)


def _check_address(value: Any, source: str) -> None:
    host = value[0] if isinstance(value, tuple) and value else value
    if value is not None and not isinstance(host, str):
        raise InvalidArgument(
            f"expected a host string (e.g. '127.0.0.1'), a (host, port) tuple or a Unix path "
            f"but got address={value!r} (type={type(value).__name__}) (from {source})"
        )


def _decorated(cls: type, target: Any) -> None:
    """``@pytest.mark.faults(F.PartialReads)`` -- a class, not an instance: pytest
    takes a lone class argument as what the marker decorates, and then calls the
    class on the test (``PartialReads(test_x)``). Say so, and take back the mark
    pytest left on the model class."""
    if "pytestmark" in cls.__dict__:
        with contextlib.suppress(AttributeError, TypeError):
            delattr(cls, "pytestmark")
    name = cls.__name__
    raise InvalidArgument(
        f"{name}({getattr(target, '__name__', target)}): a fault model was called on "
        f"a test, as @pytest.mark.faults({name}) does -- pytest takes a lone class as "
        f"what the marker decorates; give an instance: "
        f"@pytest.mark.faults(sockshock.faults.{name}()) (from {name})"
    )


@dataclass(frozen=True, repr=False)
class FaultModel:
    """Base class of every fault model: the scope in which it applies.

    Every model takes these keyword-only arguments:

    Args:
        probability: chance that the model applies (default 1.0).
        per: ``"operation"`` (default): ``probability`` is drawn for every
            operation; ``"connection"``: drawn once per connection, which is then
            affected throughout or not at all (toxiproxy's semantics).
        connections: only these connection indices (an int or a sequence).
        every: only every n-th connection (indices 0, n, 2n...).
        address: only connections from this peer host (IP string) or address.
        after_bytes: only once this many bytes have moved in the operation's
            direction on the connection.
        first_ops: only for the first m operations (of the model's kinds) of a
            connection.
        layer: ``"wire"`` (default): the bytes on the network -- under TLS, the
            encrypted records; ``"plaintext"``: above TLS, what the handler reads
            and writes (only on a server served with TLS).
    """

    #: Which operation kinds the model looks at (set by each model).
    kinds: ClassVar[tuple[str, ...]] = ()
    #: Whether the model's state is kept per connection or once for the plan.
    state_scope: ClassVar[str] = "connection"
    #: Whether a limit alone only stops an operation where the model's fault begins
    #: (``EOFAfter``, ``ResetAfter``, ``Stall``): positioning, not a fault, so not
    #: logged -- the fault is, when an operation reaches it.
    limits_position: ClassVar[bool] = False

    _: KW_ONLY
    probability: float = 1.0
    per: str = "operation"
    connections: int | Sequence[int] | None = None
    every: int | None = None
    address: Any = None
    after_bytes: int = 0
    first_ops: int | None = None
    layer: str = "wire"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """Refuse arguments the model does not take with an error naming the model
        and what it takes (before the generated ``__init__`` can name a private base)."""
        if len(args) == 1 and not kwargs and isinstance(args[0], (types.FunctionType, type)):
            _decorated(cls, args[0])
        positional, every = _init_names(cls)
        unknown = [k for k in kwargs if k not in every]
        if unknown or len(args) > len(positional):
            own = [n for n in every if n not in _SCOPE_NAMES]
            if unknown:
                what = f"no argument {unknown[0]}={kwargs[unknown[0]]!r}"
            else:
                what = (
                    f"at most {len(positional)} positional argument(s) "
                    f"({', '.join(positional) or 'none'}), not {len(args)}"
                )
            raise InvalidArgument(
                f"{cls.__name__}() takes {what}; its arguments: "
                f"{', '.join(own) or 'none of its own'}, and the scope arguments "
                f"{', '.join(_SCOPE_NAMES)} (from {cls.__name__})"
            )
        return super().__new__(cls)

    def __post_init__(self) -> None:
        source = type(self).__name__
        check_number("probability", self.probability, low=0, high=1, source=source)
        check_choice("per", self.per, ("operation", "connection"), source=source)
        object.__setattr__(self, "connections", _check_connections(self.connections, source))
        _check_address(self.address, source)
        if self.every is not None:
            check_number("every", self.every, low=1, integer=True, source=source)
        check_number("after_bytes", self.after_bytes, low=0, integer=True, source=source)
        if self.first_ops is not None:
            check_number("first_ops", self.first_ops, low=1, integer=True, source=source)
        check_choice("layer", self.layer, LAYERS, source=source)
        if self.layer == PLAINTEXT and not self.applies_to_transport("stream"):
            raise InvalidArgument(
                f"layer='plaintext' (from {source}): TLS runs over stream "
                "connections only; this model acts on datagrams"
            )
        self.validate()

    def validate(self) -> None:
        """Check the model's own parameters (override; raise through _errors)."""

    # -- scope ---------------------------------------------------------------

    def applies_to_kind(self, kind: str) -> bool:
        """Whether the model can act on operations of ``kind`` (``"recv"``, ``"send"``, ``"accept"``, ...)."""
        return kind in self.kinds

    def applies_to_transport(self, transport: str) -> bool:
        """Whether the model can ever fire on a ``"stream"`` or ``"datagram"`` server."""
        return any(self.applies_to_kind(kind) for kind in TRANSPORT_KINDS[transport])

    @property
    def scoped(self) -> bool:
        """Whether the model has any scope beyond ``probability`` (cached: the plan
        asks for every operation)."""
        cached = self.__dict__.get("_scoped")
        if cached is None:
            cached = (
                self.connections is not None
                or self.every is not None
                or self.address is not None
                or self.first_ops is not None
                or self.after_bytes > 0
            )  # (the layer is chosen with the kind)
            object.__setattr__(self, "_scoped", cached)
        return bool(cached)

    def in_scope(self, op: Operation) -> bool:
        """Whether ``op`` falls in this model's connections and window."""
        if self.connections is not None and op.connection not in self.connections:  # type: ignore[operator]
            return False
        if self.every is not None and op.connection % self.every:
            return False
        if self.address is not None:
            peer = op.address[0] if isinstance(op.address, tuple) else op.address
            wanted = self.address[0] if isinstance(self.address, tuple) else self.address
            if peer != wanted:
                return False
        if self.first_ops is not None and op.index >= self.first_ops:
            return False
        return op.offset >= self.after_bytes

    def bytes_until_window(self, op: Operation) -> int:
        """For a stream operation that starts before ``after_bytes`` and would move
        past it: how many bytes it may move so that the next one starts exactly
        where the model's window opens (0 when that does not apply). This makes
        ``after_bytes`` exact even when the whole request arrives in one read."""
        gap = self.after_bytes - op.offset
        if gap <= 0 or gap >= op.size or op.kind not in (RECV, SEND):
            return 0
        return gap if self.in_scope(op._replace(offset=self.after_bytes)) else 0

    @property
    def on_close(self) -> bool:
        """Whether the model looks at the server's end of file (a ``send`` of 0
        bytes: the fault proxy asks about the server closing its side only then)."""
        return False

    @property
    def proxy_only(self) -> bool:
        """Whether only the fault proxy can carry the model out: it acts on the
        server's closing, or cuts or stalls what the server writes -- things a
        server's own socket calls never see (in a server sockshock runs, it would
        never fire)."""
        return False

    def new_state(self) -> Any:
        """Per-connection state for stateful models (Bandwidth, BurstLoss...)."""
        return None

    @property
    def stateful(self) -> bool:
        """Whether the model keeps state (overrides :meth:`new_state`)."""
        return type(self).new_state is not FaultModel.new_state

    def decide(self, op: Operation, rng: random.Random, state: Any) -> Decision | None:
        """The model's decision for ``op`` (already in scope and drawn by
        ``probability``), or ``None`` to let it pass."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.describe()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis (and IPython) print a model: as :meth:`describe` says."""
        printer.text(self.describe())

    def describe(self) -> str:
        """The model as it would be written in Python (non-default arguments only);
        models are declared with ``repr=False`` so that this is their repr too."""
        args = []
        for f in fields(self):
            if f.name == "_":
                continue
            value = getattr(self, f.name)
            if value != f.default:
                args.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(args)})"


_INIT_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_SCOPE_NAMES = (
    "probability",
    "per",
    "connections",
    "every",
    "address",
    "after_bytes",
    "first_ops",
    "layer",
)


def _init_names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A model's positional parameters and all its parameters, by name (cached)."""
    names = _INIT_NAMES.get(cls)
    if names is None:
        every = [f for f in fields(cls) if f.init and f.name != "_"]
        positional = tuple(f.name for f in every if not f.kw_only)
        names = _INIT_NAMES[cls] = (positional, tuple(f.name for f in every))
    return names


def check_direction(model: FaultModel, direction: str, allowed: tuple[str, ...]) -> None:
    check_choice("direction", direction, allowed, source=type(model).__name__)


def check_positive(
    model: FaultModel,
    name: str,
    value: Any,
    *,
    integer: bool = False,
    allow_zero: bool = False,
    high: float | None = None,
) -> None:
    if integer:
        check_number(
            name,
            value,
            low=0 if allow_zero else 1,
            high=high,
            integer=True,
            source=type(model).__name__,
        )
    else:
        check_number(
            name, value, low=0, low_open=not allow_zero, high=high, source=type(model).__name__
        )


def check_delay(model: FaultModel, name: str, value: Any) -> None:
    """A delay in seconds: 0 to :data:`MAX_DELAY`."""
    check_positive(model, name, value, allow_zero=True, high=MAX_DELAY)

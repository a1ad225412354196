"""The clients as plain data: :class:`ClientSpec`, for scenario files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sockshock._clients._address import Address
from sockshock._clients._functions import defaults, prepare
from sockshock._clients._limits import KINDS, check_kind, validate
from sockshock._clients._run import ClientRun
from sockshock._util import InvalidArgument

__all__ = ["ClientSpec"]


@dataclass(frozen=True, init=False)
class ClientSpec:
    """A client as plain data: its kind and options, checked when made.

    ``ClientSpec("slowloris", count=5, interval=0.05)`` or, from a parsed
    scenario file, ``ClientSpec.from_mapping({"kind": "slowloris", "count": 5},
    source="scenarios/x.toml:12")``. Options are the client function's keyword
    arguments; options not given take the function's defaults. Byte options also
    accept text (encoded as UTF-8), since TOML and JSON have no bytes. A bad
    value raises one :class:`~sockshock.InvalidArgument` (or
    :class:`~sockshock.InvalidArgument`) naming it and ``source``.

    Attributes:
        kind: one of :data:`KINDS`.
        options: the options given, checked, as sorted ``(name, value)`` pairs.
        source: where the spec came from (used in error messages only).
    """

    kind: str
    options: tuple[tuple[str, Any], ...]
    source: str | None = field(default=None, compare=False)

    def __init__(self, kind: str, *, source: str | None = None, **options: Any) -> None:
        where = source or f"ClientSpec({kind!r})"
        check_kind(kind, where)
        checked = validate(kind, options, where, defaults(kind), text=True)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "options", tuple(sorted(checked.items())))
        object.__setattr__(self, "source", source)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None) -> ClientSpec:
        """Make a spec from ``{"kind": ..., option: value, ...}`` (a parsed TOML table).

        Raises:
            InvalidArgument: no ``kind``, an unknown kind or option, a value out
                of bounds; the message names ``source``.
            InvalidArgument: ``data`` is not a mapping, or a value has the wrong type.
        """
        where = source or "ClientSpec.from_mapping()"
        if not isinstance(data, Mapping):
            raise InvalidArgument(
                f"expected a mapping but got {data!r} (type={type(data).__name__}) (from {where})"
            )
        if "kind" not in data:
            raise InvalidArgument(
                f"a client spec needs a 'kind', one of {', '.join(KINDS)}; "
                f"got keys {sorted(map(str, data))} (from {where})"
            )
        options = {str(k): v for k, v in data.items() if k != "kind"}
        return cls(check_kind(data["kind"], where), source=source, **options)

    def to_mapping(self) -> dict[str, Any]:
        """``{"kind": ..., **options}``: what :meth:`from_mapping` takes back."""
        return {"kind": self.kind, **dict(self.options)}

    def run(self, address: Address) -> ClientRun[Any]:
        """The client, aimed at ``address`` (checked here; errors name ``source``)."""
        return prepare(self.kind, address, self.source, dict(self.options))

"""The clients' options, their bounds, and the checks that hold every run to them.

Every run is bounded in time (``duration``, and ``timeout`` for each wait on the
server) and in size (counts and byte lengths have hard maxima, see
:data:`LIMITS`); a bad value raises one :class:`~sockshock.InvalidArgument` naming
the value, the range and where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from sockshock._util import (
    MAX_UDP_PAYLOAD,
    InvalidArgument,
    check_number,
    check_type,
    did_you_mean,
)

__all__ = [
    "KINDS",
    "LIMITS",
    "MAX_DURATION",
    "MAX_TIMEOUT",
    "Limit",
    "check_kind",
    "validate",
]

_KiB = 1024
_MiB = 1024 * _KiB


@dataclass(frozen=True)
class Limit:
    """The allowed values of one client option.

    Attributes:
        what: ``"int"``, ``"seconds"`` (int or float) or ``"bytes"`` (the bounds
            then apply to the length).
        low: the smallest value (or length) allowed.
        high: the largest value (or length) allowed.
        low_open: whether ``low`` itself is excluded.
        optional: whether ``None`` is allowed.
    """

    what: Literal["int", "seconds", "bytes"]
    low: float
    high: float
    low_open: bool = False
    optional: bool = False

    def check(self, name: str, value: Any, *, source: str, text: bool = False) -> Any:
        """Return ``value`` (str made bytes if ``text``) or raise one clear error."""
        if value is None and self.optional:
            return None
        if self.what == "bytes":
            if text and isinstance(value, str):
                value = value.encode()
            check_type(name, value, bytes, source=source)
            check_number(
                f"len({name})",
                len(value),
                low=self.low,
                high=self.high,
                integer=True,
                source=source,
            )
            return value
        check_number(
            name,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            integer=self.what == "int",
            source=source,
        )
        return value


MAX_DURATION = 300.0
MAX_TIMEOUT = 60.0

_COMMON: dict[str, Limit] = {
    "duration": Limit("seconds", 0, MAX_DURATION, low_open=True),
    "timeout": Limit("seconds", 0, MAX_TIMEOUT, low_open=True),
    "max_reply": Limit("int", 0, 16 * _MiB),
}

_LIMITS: dict[str, dict[str, Limit]] = {
    "slowloris": {
        "count": Limit("int", 1, 1000),
        "interval": Limit("seconds", 0.001, 60),
        "request": Limit("bytes", 0, 64 * _KiB),
    },
    "drip_feed": {
        "payload": Limit("bytes", 1, 16 * _MiB),
        "chunk": Limit("int", 1, 64 * _KiB),
        "pause": Limit("seconds", 0, 60),
        "until": Limit("bytes", 1, 64 * _KiB, optional=True),
    },
    "never_reads": {
        "request": Limit("bytes", 0, 16 * _MiB),
        "repeat": Limit("int", 1, 100_000),
        "rcvbuf": Limit("int", 1, 16 * _MiB, optional=True),
    },
    "half_close": {"request": Limit("bytes", 0, 16 * _MiB)},
    "rst_on_close": {"request": Limit("bytes", 0, 16 * _MiB), "hold": Limit("seconds", 0, 60)},
    "connect_and_idle": {"count": Limit("int", 1, 1000)},
    "connection_flood": {
        "count": Limit("int", 1, 10_000),
        "concurrency": Limit("int", 1, 256),
        "request": Limit("bytes", 0, 64 * _KiB, optional=True),
        "until": Limit("bytes", 1, 64 * _KiB, optional=True),
    },
    "datagram_burst": {
        "count": Limit("int", 1, 10_000),
        "payload": Limit("bytes", 0, MAX_UDP_PAYLOAD),
    },
}
LIMITS: Mapping[str, Mapping[str, Limit]] = MappingProxyType(
    {kind: MappingProxyType(limits) for kind, limits in _LIMITS.items()}
)
"""Each client's options and their bounds, read-only (besides ``duration`` in (0, 300]
s, ``timeout`` in (0, 60] s and ``max_reply`` in [0, 16 MiB], which every client takes)."""

KINDS = tuple(LIMITS)
"""The clients' names, as :class:`ClientSpec` takes them."""

_NEVER_READS_TOTAL = 16 * _MiB


def check_kind(kind: Any, source: str) -> str:
    """Return ``kind`` if it names a client, else raise one clear error naming ``source``."""
    check_type("kind", kind, str, source=source)
    if kind not in LIMITS:
        hint = did_you_mean(kind, KINDS)
        raise InvalidArgument(
            f"kind={kind!r} is not a client; {hint}known: {', '.join(KINDS)} (from {source})"
        )
    return str(kind)


def validate(
    kind: str,
    options: Mapping[str, Any],
    source: str,
    defaults: Mapping[str, Any],
    *,
    text: bool = False,
) -> dict[str, Any]:
    """Check a client's options against its limits, or raise one clear error.

    Args:
        kind: a client (already checked).
        options: the options given, by name.
        source: where they came from, for the error message.
        defaults: every option's default, for the checks that look at several
            options together (what was not given takes its default).
        text: accept ``str`` for byte options (encoded as UTF-8).

    Returns:
        The options given, checked (text made bytes).
    """
    limits = {**_LIMITS[kind], **_COMMON}
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if name not in limits:
            hint = did_you_mean(name, limits)
            raise InvalidArgument(
                f"{name}={value!r} is not an option of {kind}; {hint}"
                f"options: {', '.join(sorted(limits))} (from {source})"
            )
        checked[name] = limits[name].check(name, value, source=source, text=text)
    full = {**defaults, **checked}
    if kind == "never_reads":
        check_number(
            "len(request) * repeat",
            len(full["request"]) * full["repeat"],
            low=0,
            high=_NEVER_READS_TOTAL,
            integer=True,
            source=source,
        )
    if kind == "connection_flood" and full["until"] is not None and full["request"] is None:
        raise InvalidArgument(
            f"until={full['until']!r} needs a request= to be the reply's end marker (from {source})"
        )
    return checked

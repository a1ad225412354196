"""Judging a reply: what ``sockshock run`` expects of a handler's answer.

By default a reply under faults must be the handler's own reply to the same
request without faults, with *volatile parts* allowed to differ: runs of digits
(dates, times, counters, ports: an HTTP ``Date`` header changes every second).
``--expect`` asks for exactly these bytes, ``--expect-prefix`` for a reply that
starts with them, ``--expect-regex`` for one a regular expression matches. A
mismatch says where the two differ, with both sides around that place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Expectation", "difference"]

_DIGITS = re.compile(rb"\d+")
_CONTEXT = 24  # bytes shown on each side of the first difference


def difference(got: bytes, wanted: bytes) -> str:
    """Where ``got`` first differs from ``wanted``, with both sides around it."""
    at = next(
        (i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b),
        min(len(got), len(wanted)),
    )
    start = max(0, at - _CONTEXT)
    return (
        f"differs at byte {at} of {len(got)} (expected {len(wanted)} bytes): "
        f"got ...{got[start : at + _CONTEXT]!r}..., expected ...{wanted[start : at + _CONTEXT]!r}..."
    )


@dataclass(frozen=True)
class Expectation:
    """What a reply must be: ``kind`` is ``"baseline"``, ``"exact"``, ``"prefix"`` or
    ``"regex"``; ``value`` the bytes or pattern (none for the baseline)."""

    kind: str = "baseline"
    value: bytes = b""
    flags: int = 0  # a regular expression's flags (re.S always)

    def judge(self, reply: bytes, baseline: bytes) -> str | None:
        """None if ``reply`` is as expected, else why not."""
        if self.kind == "exact":
            return None if reply == self.value else "the reply " + difference(reply, self.value)
        if self.kind == "prefix":
            if reply.startswith(self.value):
                return None
            return "the reply's start " + difference(reply[: len(self.value)], self.value)
        if self.kind == "regex":
            if re.search(self.value, reply, re.S | self.flags):
                return None
            return f"the reply {reply[: 2 * _CONTEXT]!r}... does not match {self.value!r}"
        if reply == baseline or _DIGITS.sub(b"0", reply) == _DIGITS.sub(b"0", baseline):
            return None
        return (
            "the reply "
            + difference(reply, baseline)
            + " -- the reply without faults; digits may differ"
        )

"""Server lifecycle fault models: accept() failing, the server stopped abruptly.

Pure and seeded (see ``_core``).
"""

from __future__ import annotations

import errno as _errno
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from sockshock._faults._core import (
    ACCEPT,
    DATAGRAM_IN,
    DATAGRAM_OUT,
    ERROR,
    RECV,
    SEND,
    SHUTDOWN,
    Decision,
    FaultModel,
    Operation,
    check_direction,
    check_positive,
)
from sockshock._faults._stream import DIRECTIONS
from sockshock._util import InvalidArgument, check_number, exported_by

__all__ = ["ACCEPT_ERRNOS", "MAX_TIMES", "AbruptShutdown", "AcceptErrors"]

MAX_TIMES = 1_000_000  # accept errors

#: The errors accept(2) can report to a Python program (EINTR is retried by Python
#: itself, EFAULT cannot happen from it), by name, in the order the manual lists
#: them; Linux also passes on the new connection's pending network errors (the last
#: six). Only the names this platform defines count.
ACCEPT_ERRNOS: tuple[str, ...] = tuple(
    name
    for name in (
        "EAGAIN",
        "EWOULDBLOCK",
        "EBADF",
        "ECONNABORTED",
        "EINVAL",
        "EMFILE",
        "ENFILE",
        "ENOBUFS",
        "ENOMEM",
        "ENOTSOCK",
        "EOPNOTSUPP",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "ENETUNREACH",
    )
    if hasattr(_errno, name)
)

#: Scope arguments that can never select an accept() (it has no peer address yet,
#: moves no bytes, is never the n-th operation of a connection, and happens below TLS).
_NOT_FOR_ACCEPT = {"address": None, "after_bytes": 0, "first_ops": None, "layer": "wire"}


def _errno_value(value: Any, source: str) -> int:
    if isinstance(value, str):
        number = getattr(_errno, value, None)
        if not isinstance(number, int):
            raise InvalidArgument(
                f"errno={value!r} is not an errno name such as 'EMFILE' (from {source})"
            )
    else:
        check_number("errno", value, low=1, integer=True, source=source)
        if value not in _errno.errorcode:
            raise InvalidArgument(f"errno={value!r} is not a known error number (from {source})")
        number = int(value)
    if number not in {getattr(_errno, name) for name in ACCEPT_ERRNOS}:
        raise InvalidArgument(
            f"errno={value!r}{'' if isinstance(value, str) else f' ({_errno.errorcode[number]})'}"
            " is not an error "
            f"accept() gives; it can give {', '.join(ACCEPT_ERRNOS)} (from {source})"
        )
    return number


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class AcceptErrors(FaultModel):
    """``accept()`` fails ``times`` times with ``errno`` (a number or a name such as
    ``"EMFILE"``) without taking the pending connection, which stays in the backlog
    as it would when the process is out of descriptors.

    Args:
        errno: the error, a number or a name (default ``"EMFILE"``).
        times: how many ``accept()`` calls fail (at most 1,000,000).
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    errno: int | str = _errno.EMFILE
    times: int = 1
    kinds: ClassVar[tuple[str, ...]] = (ACCEPT,)
    state_scope: ClassVar[str] = "plan"

    def validate(self) -> None:
        object.__setattr__(self, "errno", _errno_value(self.errno, "AcceptErrors"))
        check_positive(self, "times", self.times, integer=True, high=MAX_TIMES)
        for name, default in _NOT_FOR_ACCEPT.items():
            value = getattr(self, name)
            if value != default:
                raise InvalidArgument(
                    f"{name}={value!r} cannot scope accept() (no peer address, no bytes, "
                    "no operations of a connection yet, below TLS); AcceptErrors takes "
                    "probability, per, connections and every (from AcceptErrors)"
                )

    def new_state(self) -> dict[str, int]:
        return {"injected": 0}

    def decide(self, op: Operation, rng: random.Random, state: dict[str, int]) -> Decision | None:
        if state["injected"] >= self.times:
            return None
        state["injected"] += 1
        return Decision(action=ERROR, errno=int(self.errno))

    def describe(self) -> str:
        name = _errno.errorcode.get(int(self.errno), str(self.errno))
        return super().describe().replace(f"errno={self.errno!r}", f"errno={name}")


@exported_by("sockshock.faults")
@dataclass(frozen=True, repr=False)
class AbruptShutdown(FaultModel):
    """The server is shut down (``shutdown()`` then ``server_close()``, from another
    thread) at one precise moment: the first operation in scope -- for example
    ``AbruptShutdown(connections=2, after_bytes=5)`` stops it while the third
    connection's request is being read, after its first 5 bytes. Happens once.

    Args:
        direction: which operations can trigger it: ``"in"`` (default: the server's reads), ``"out"`` or ``"both"``.
        **scope: keyword-only, as every model takes them: ``probability``, ``per``,
            ``connections``, ``every``, ``address``, ``after_bytes``, ``first_ops``,
            ``layer`` (see :class:`~sockshock.faults.FaultPlan` and the fault-model
            reference page).
    """

    direction: str = "in"
    kinds: ClassVar[tuple[str, ...]] = ()
    state_scope: ClassVar[str] = "plan"

    def validate(self) -> None:
        check_direction(self, self.direction, DIRECTIONS)

    def applies_to_kind(self, kind: str) -> bool:
        table = {
            "in": (RECV, DATAGRAM_IN),
            "out": (SEND, DATAGRAM_OUT),
            "both": (RECV, SEND, DATAGRAM_IN, DATAGRAM_OUT),
        }
        return kind in table[self.direction]

    def new_state(self) -> dict[str, bool]:
        return {"done": False}

    def decide(self, op: Operation, rng: random.Random, state: dict[str, bool]) -> Decision | None:
        if state["done"]:
            return None
        state["done"] = True
        return Decision(action=SHUTDOWN)

"""Bounds and defaults, named once.

Every duration sockshock accepts -- a stop bound, a timeout, a pause, a delay -- is
at most :data:`MAX_SECONDS` (an hour: longer is a mistake in a test, and beyond what
clocks and ``select()`` represent it overflows); every seed is a 64-bit unsigned
integer. The checks here are the only place these bounds are written.
"""

from __future__ import annotations

import errno
from typing import Any

from sockshock._util._errors import check_number

__all__ = [
    "ACCEPT_BACKOFF_MAX",
    "ACCEPT_BACKOFF_MIN",
    "ACCEPT_RESOURCE_ERRNOS",
    "DATAGRAM_PEERS_KEPT",
    "DATAGRAM_PEER_IDLE",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_TOLERANCE",
    "MAX_SECONDS",
    "MAX_UDP_PAYLOAD",
    "SEED_MAX",
    "check_seconds",
    "check_seed",
]

#: The longest duration any parameter takes, in seconds (one hour).
MAX_SECONDS = 3600.0
#: The largest UDP payload, in bytes: what fits in one IPv4 datagram (65,535 less
#: the IP and UDP headers); sendto() of more fails with EMSGSIZE.
MAX_UDP_PAYLOAD = 65507
#: The largest seed: seeds are 64-bit unsigned integers.
SEED_MAX = 2**64 - 1
#: Seconds after which a silent datagram peer (a UDP or Unix datagram client) is
#: forgotten, with what faults kept for it: two minutes, the least RFC 4787 (REQ-5)
#: lets a NAT keep a UDP mapping. If it sends again, it is a new peer.
DATAGRAM_PEER_IDLE = 120.0
#: The most datagram peers remembered at once; beyond, the least recently seen is
#: forgotten (about 1 KB each): a flood of new source ports keeps memory bounded.
DATAGRAM_PEERS_KEPT = 4096
#: accept() errors that mean "out of a resource, try later" rather than "this one
#: connection went wrong": the client stays in the backlog, and the listening
#: socket stays readable while they last (retrying at once spins).
ACCEPT_RESOURCE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")
    if hasattr(errno, name)
)
#: After such an error, accept again after this long, doubling up to the maximum.
ACCEPT_BACKOFF_MIN = 0.005
ACCEPT_BACKOFF_MAX = 0.1
#: How long stopping a served server may take by default, in seconds.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: ``assert_stops_within()`` allows ``seconds * DEFAULT_TOLERANCE + slack`` by
#: default, for noisy CI machines.
DEFAULT_TOLERANCE = 2.0


def check_seconds(
    name: str,
    value: Any,
    *,
    source: str,
    allow_zero: bool = False,
    allow_none: bool = False,
) -> None:
    """A duration: a finite number in ``(0, MAX_SECONDS]`` (``[0, ...]`` with
    ``allow_zero``; ``None`` too with ``allow_none``)."""
    if value is None and allow_none:
        return
    check_number(name, value, low=0, low_open=not allow_zero, high=MAX_SECONDS, source=source)


def check_seed(value: Any, *, source: str, name: str = "seed") -> None:
    """A seed: an integer in ``[0, 2**64 - 1]``."""
    check_number(name, value, low=0, high=SEED_MAX, integer=True, source=source)

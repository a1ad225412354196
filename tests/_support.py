"""Small helpers shared by the tests."""

from __future__ import annotations

import functools
import socket


@functools.cache
def ipv6_loopback() -> bool:
    """Whether ``::1`` can be bound here (containers often have IPv6 switched off)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def read_line(client: socket.socket) -> bytes:
    """Read up to and including a newline, or to the end of the stream."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = client.recv(4096)
        if not chunk:
            break
        data += chunk
    return data

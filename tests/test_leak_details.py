"""What the leak audit says a leaked descriptor is: a socket by its local and peer
addresses and TCP state (read from the descriptor itself, or from the harness's
note of a connection it accepted, once the connection is over), anything else by
what ``/proc/self/fd`` says."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
import time
from pathlib import Path

import pytest

import sockshock
from sockshock import socketserver
from sockshock._harness import LeakAudit

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="procfs")


def _descriptions(audit: LeakAudit) -> dict[int, str]:
    """Every new descriptor's description, by descriptor (one report: each costs a
    garbage collection when something looks leaked)."""
    found = {}
    for line in audit.report().descriptors:
        fd = int(re.match(r"fd (\d+)", line).group(1))  # type: ignore[union-attr]
        found[fd] = line
    return found


def _described(audit: LeakAudit, fd: int) -> str:
    return _descriptions(audit)[fd]


def test_sockets_are_described_by_their_addresses(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        audit = LeakAudit(grace=0)
        listening = stack.enter_context(socket.socket())
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        client = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        accepted = stack.enter_context(listening.accept()[0])
        udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        unix = stack.enter_context(socket.socket(socket.AF_UNIX))
        unix.bind(str(tmp_path / "s.sock"))
        unix.listen()

        seen = _descriptions(audit)
        assert seen[listening.fileno()] == (
            f"fd {listening.fileno()}: TCP listening on 127.0.0.1:{port}"
        )
        client_port = client.getsockname()[1]
        assert seen[client.fileno()] == (
            f"fd {client.fileno()}: TCP 127.0.0.1:{client_port} -> 127.0.0.1:{port} (ESTABLISHED)"
        )
        assert seen[accepted.fileno()] == (
            f"fd {accepted.fileno()}: TCP 127.0.0.1:{port} -> 127.0.0.1:{client_port} (ESTABLISHED)"
        )
        assert seen[udp.fileno()] == f"fd {udp.fileno()}: UDP 127.0.0.1:{udp.getsockname()[1]}"
        assert seen[unix.fileno()] == (
            f"fd {unix.fileno()}: Unix stream listening on {tmp_path / 's.sock'}"
        )
        accepted.close()  # the client's end now waits for its own close
        assert _described(audit, client.fileno()).endswith(
            "(CLOSE_WAIT: the peer has closed its side)"
        )


@needs_proc
def test_other_descriptors_are_what_procfs_says(tmp_path: Path) -> None:
    audit = LeakAudit(grace=0)
    with open(tmp_path / "f.txt", "w") as f:
        assert _described(audit, f.fileno()) == f"fd {f.fileno()} -> {tmp_path / 'f.txt'}"


KEPT: list[socket.socket] = []


class KeepsACopy(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        KEPT.append(self.request.dup())
        self.wfile.write(self.rfile.readline())


def test_a_leaked_connection_that_is_over_still_shows_its_peer() -> None:
    audit = LeakAudit(grace=0)
    try:
        with (
            sockshock.serving("ThreadingTCPServer", KeepsACopy) as srv,
            srv.connect() as client,
        ):
            client.sendall(b"hi\n")
            assert client.recv(10) == b"hi\n"
            client_address = client.getsockname()
        (kept,) = KEPT
        line = _described(audit, kept.fileno())
        # Both ends, whatever state the connection is in by now (once it is closed
        # the kernel has forgotten the peer: the harness noted it on accept()).
        assert re.fullmatch(
            rf"fd {kept.fileno()}: TCP 127\.0\.0\.1:{srv.address[1]} -> "
            rf"127\.0\.0\.1:{client_address[1]} \(.+\)",
            line,
        ), line
        assert "socket:[" not in line
        assert audit.report().summary().startswith(f"1 descriptor (fd {kept.fileno()}: TCP ")
    finally:
        for sock in KEPT:
            sock.close()
        KEPT.clear()


def test_the_summary_of_nothing() -> None:
    assert LeakAudit(grace=0).report().summary() == "nothing"


def test_a_reset_connection_whose_peer_the_kernel_forgot_shows_the_noted_peer() -> None:
    audit = LeakAudit(grace=0)
    try:
        with sockshock.serving("ThreadingTCPServer", KeepsACopy) as srv:
            client = srv.connect()
            client.sendall(b"hi\n")
            assert client.recv(10) == b"hi\n"
            client_port = client.getsockname()[1]
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # a reset: the server's end is CLOSE, without a peer
        (kept,) = KEPT
        deadline = time.monotonic() + 5  # the reset reaches the server's end
        while time.monotonic() < deadline:
            try:
                kept.getpeername()
            except OSError:
                break
            time.sleep(0.001)
        with pytest.raises(OSError, match="not connected"):
            kept.getpeername()
        assert _described(audit, kept.fileno()) == (
            f"fd {kept.fileno()}: TCP 127.0.0.1:{srv.address[1]} -> 127.0.0.1:{client_port} "
            "(CLOSE: the connection is over)"
        )
    finally:
        for sock in KEPT:
            sock.close()
        KEPT.clear()


def test_a_socket_never_bound_says_so() -> None:
    audit = LeakAudit(grace=0)
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix:
        assert (
            _described(audit, tcp.fileno()) == f"fd {tcp.fileno()}: TCP, never bound or connected"
        )
        assert _described(audit, unix.fileno()) == (
            f"fd {unix.fileno()}: Unix datagram, never bound or connected"
        )

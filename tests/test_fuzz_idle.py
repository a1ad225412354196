"""ServerHandle.wait_idle(): a bounded wait until no handler call is under way,
so that properties about clients that leave without reading need no polling."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock.errors import InvalidArgument


class Tally(ss.StreamRequestHandler):
    """Reads a line (blocking until it comes or the client leaves), counts it,
    then answers."""

    def handle(self) -> None:
        line = self.rfile.readline()
        self.server.lines.append(line)
        self.wfile.write(b"answer to " + line)


class DatagramTally(ss.DatagramRequestHandler):
    def handle(self) -> None:
        self.server.lines.append(self.rfile.read())


@pytest.mark.parametrize(
    "server", ["TCPServer", "ThreadingTCPServer", "ThreadPoolTCPServer", "ForkingTCPServer"]
)
def test_wait_idle_waits_for_handlers_of_clients_that_left_without_reading(server: str) -> None:
    lines: list[bytes] = []
    with sockshock.serving(server, Tally, lines=lines) as srv:
        clients = [srv.connect() for _ in range(1 if server == "TCPServer" else 3)]
        try:
            for client in clients:
                client.sendall(b"partial")  # no newline: each handler waits for more
            assert srv.wait_idle(0.05) is False  # bounded: handlers are still reading
            for client in clients:
                client.sendall(b" line\n")
        finally:
            for client in clients:
                client.close()  # without reading the answer
        assert srv.wait_idle() is True
        if server != "ForkingTCPServer":  # a child's list is its own
            assert lines == [b"partial line\n"] * len(clients)


def test_wait_idle_on_a_datagram_server() -> None:
    lines: list[bytes] = []
    with sockshock.serving("ThreadingUDPServer", DatagramTally, lines=lines) as srv:
        with srv.connect() as client:
            for n in range(5):
                client.send(b"d%d" % n)
        # On loopback sendto() delivers at once: until the server has taken every
        # datagram (a readable socket) and handled it, it is not idle.
        assert srv.wait_idle() is True
        assert sorted(lines) == [b"d%d" % n for n in range(5)]


def test_wait_idle_is_bounded_and_checks_its_timeout() -> None:
    with sockshock.serving("ThreadingTCPServer", Tally, lines=[]) as srv:
        with srv.connect() as client:
            client.sendall(b"no end")
            assert srv.wait_idle(0.02) is False
        assert srv.wait_idle(2.0) is True
        for bad in (0, -1, float("inf"), "1"):
            with pytest.raises(InvalidArgument, match="from wait_idle"):
                srv.wait_idle(bad)  # type: ignore[arg-type]


def test_wait_idle_needs_no_polling_of_active_threads() -> None:
    # The property the issue had to poll threading.active_count() for.
    lines: list[Any] = []
    with sockshock.serving("ThreadingTCPServer", Tally, lines=lines) as srv:
        for n in range(20):
            with srv.connect() as client:
                client.sendall(b"%d\n" % n)
                client.shutdown(socket.SHUT_WR)
        assert srv.wait_idle()
        assert sorted(lines) == sorted(b"%d\n" % n for n in range(20))

"""drive(..., schedule=..., sockets="real"): the scheduler over real loopback TCP and
UDP sockets and Unix sockets in a temporary directory -- every server class, replay
exactness, virtual timeouts on real descriptors, resets, and nothing left behind."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pytest

import sockshock
from sockshock import socketserver
from sockshock.errors import InvalidArgument
from sockshock.faults import PartialReads
from sockshock.scripts import ClientScript, Pause, Read, Reset, Send
from tests._races import RACES, DatagramUpper, Upper

UNIX = hasattr(socket, "AF_UNIX")


ASKER = [Send(b"hi\n"), Read(until=b"\n")]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(
    "server",
    ["ThreadingTCPServer", "ThreadPoolTCPServer", "TCPServer"]
    + (["ThreadingUnixStreamServer", "UnixStreamServer"] if UNIX else []),
)
def test_stream_servers_on_real_sockets(server: str) -> None:
    clients = [[Send(b"%d\n" % i), Read(until=b"\n")] for i in range(3)]
    ts = sockshock.drive(Upper, clients, server=server, schedule=2, sockets="real")
    assert [t.received for t in ts] == [b"0\n", b"1\n", b"2\n"]
    assert [t.output for t in ts] == [b"0\n", b"1\n", b"2\n"]
    again = sockshock.drive(Upper, clients, server=server, schedule=ts[0].schedule, sockets="real")
    assert again[0].schedule == ts[0].schedule
    assert again[0].schedule.exact


@pytest.mark.parametrize(
    "server",
    ["ThreadingUDPServer", "ThreadPoolUDPServer", "UDPServer"]
    + (["ThreadingUnixDatagramServer"] if UNIX else []),
)
def test_datagram_servers_on_real_sockets(server: str) -> None:
    ts = sockshock.drive(
        DatagramUpper, [[b"a", b"b"], [b"c"]], server=server, schedule=4, sockets="real"
    )
    assert [sorted(t.replies) for t in ts] == [[b"A", b"B"], [b"C"]]
    assert [t.requests for t in ts] == [2, 1]
    again = sockshock.drive(
        DatagramUpper,
        [[b"a", b"b"], [b"c"]],
        server=server,
        schedule=ts[0].schedule,
        sockets="real",
    )
    assert again[0].schedule == ts[0].schedule


def test_a_race_on_real_sockets_is_found_and_replays_exactly() -> None:
    race = RACES[0]

    def run(schedule: Any) -> tuple[list[Any], dict[str, Any]]:
        attrs = race.attrs()
        ts = sockshock.drive(
            race.handler,
            race.clients,
            server="ThreadingTCPServer",
            schedule=schedule,
            server_attrs=attrs,
            sockets="real",
        )
        return ts, attrs

    failing = next(ts for ts, attrs in map(run, range(50)) if race.broken(attrs, ts))
    for _ in range(20):
        again, attrs = run(failing[0].schedule)
        assert race.broken(attrs, again)
        assert again[0].schedule == failing[0].schedule


def test_timeouts_on_real_sockets_are_virtual() -> None:
    class Patient(socketserver.StreamRequestHandler):
        timeout = 30

        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    slow = ClientScript((Pause(20), Send(b"late\n"), Read(until=b"\n")), timeout=60)
    too_slow = ClientScript((Pause(40), Send(b"later\n"), Read(until=b"\n")), timeout=60)
    started = time.monotonic()
    ts = sockshock.drive(Patient, [slow, too_slow], schedule=1, sockets="real")
    assert ts[0].received == b"late\n"
    assert isinstance(ts[1].error, TimeoutError)
    assert ts[0].elapsed == 40.0
    assert time.monotonic() - started < 5  # virtual seconds, not real ones


def test_a_client_reset_reaches_the_handler_as_the_kernel_reports_it() -> None:
    seen: list[BaseException] = []

    class Reads(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(10)
            try:
                self.request.recv(10)
            except OSError as exc:
                seen.append(exc)

    sockshock.drive(Reads, [[Send(b"x"), Reset()]], schedule=0, sockets="real")
    assert len(seen) == 1
    assert isinstance(seen[0], ConnectionResetError)


def test_nothing_is_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    from sockshock._sched import RealLayer

    made: list[str] = []
    original = RealLayer.__init__

    def spy(self: Any, sched: Any) -> None:
        original(self, sched)
        made.append(self.directory)

    monkeypatch.setattr(RealLayer, "__init__", spy)
    before = open_descriptors()
    for seed in range(5):
        sockshock.drive(Upper, [ASKER, ASKER], schedule=seed, sockets="real")
        if UNIX:
            sockshock.drive(
                Upper, [ASKER], server="ThreadingUnixStreamServer", schedule=seed, sockets="real"
            )
    assert open_descriptors() <= before
    assert made
    assert not [d for d in made if os.path.exists(d)]


def test_bad_sockets_and_faults_on_real_sockets_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="sockets"):
        sockshock.drive(Upper, [ASKER], schedule=1, sockets="loopback")
    with pytest.raises(InvalidArgument, match="faults are carried out on in-memory sockets only"):
        sockshock.drive(Upper, [ASKER], schedule=1, sockets="real", faults=[PartialReads(1)])

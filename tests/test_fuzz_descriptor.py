"""drive() of handlers that use their descriptor (fileno, fcntl O_NONBLOCK,
select.select): fakeredis' TCP handler and one of our own, on a real connected
socket pair -- chosen automatically or by sockets="real" -- with the same
scripts, fault layer and Transcript as in memory."""

from __future__ import annotations

import fcntl
import io
import os
import select
import threading
from typing import Any

import pytest
from hypothesis import given, settings

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from sockshock.scripts import ClientScript, HalfClose, Read, Reset, Send
from sockshock.strategies import fault_plans

fakeredis_tcp = pytest.importorskip("fakeredis._clients._tcp_server")
fakeredis_core = pytest.importorskip("fakeredis._core")
RedisHandler = fakeredis_tcp.TCPFakeRequestHandler


def redis_state() -> dict[str, Any]:
    """What fakeredis' TcpFakeServer gives its handlers."""
    return {
        "_shutdown_event": threading.Event(),
        "clients": {},
        "fake_server": fakeredis_core.FakeServer(server_type="redis"),
    }


def command(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


SET_GET = command(b"SET", b"k", b"v") + command(b"GET", b"k")
REPLY = b"+OK\r\n+v\r\n"  # fakeredis answers GET with a simple string


class SelectEcho(ss.BaseRequestHandler):
    """Exactly what fakeredis does to its connection: O_NONBLOCK with fcntl, then
    select() before each read; echoes until end of file."""

    def handle(self) -> None:
        fd = self.request.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        while True:
            readable, _, _ = select.select([self.request], [], [], 1.0)
            if not readable:
                continue
            try:
                data = self.request.recv(4096)
            except BlockingIOError:
                continue
            if not data:
                return
            self.request.sendall(data)


def test_fakeredis_runs_under_drive_on_a_real_socket_pair_found_automatically() -> None:
    # Before: UnsupportedOperation('an in-memory socket has no file descriptor...').
    transcript = sockshock.drive(RedisHandler, SET_GET, server_attrs=redis_state())
    assert transcript.sockets == "real"
    assert transcript.error is None, transcript
    assert transcript.received == REPLY
    assert transcript.input == transcript.request == SET_GET
    assert transcript.request_complete


def test_fakeredis_under_faults_replies_in_full() -> None:
    plan = F.FaultPlan(F.PartialReads(2), F.PartialWrites(3), seed=7)
    transcript = sockshock.drive(RedisHandler, SET_GET, faults=plan, server_attrs=redis_state())
    assert transcript.error is None, transcript
    assert transcript.received == REPLY
    assert {event.name for event in transcript.log} == {"PartialReads", "PartialWrites"}
    assert all(isinstance(e.model, (F.PartialReads, F.PartialWrites)) for e in transcript.log)
    assert transcript.plan is plan


def test_fakeredis_with_a_reset_right_after_connect() -> None:
    transcript = sockshock.drive(RedisHandler, [Reset()], server_attrs=redis_state())
    assert isinstance(transcript.error, OSError)  # its setup() asks for the peer's address
    assert transcript.error.errno == 107  # ENOTCONN, as Linux says after an RST


@settings(max_examples=25, deadline=None)
@given(plan=fault_plans(models=[F.PartialReads, F.PartialWrites, F.Latency]))
def test_fakeredis_answers_whatever_the_split(plan: F.FaultPlan) -> None:
    script = ClientScript([Send(SET_GET), HalfClose(), Read()], timeout=1.0)
    transcript = sockshock.drive(RedisHandler, script, faults=plan, server_attrs=redis_state())
    assert transcript.received == REPLY


def test_a_select_handler_runs_by_flag_or_found_out() -> None:
    memory = sockshock.drive(SelectEcho, [b"one", b"two"], sockets="memory")
    assert isinstance(memory.error, io.UnsupportedOperation)
    assert "drive(..., sockets='real')" in str(memory.error)
    by_flag = sockshock.drive(SelectEcho, [b"one", b"two"], sockets="real")
    found = sockshock.drive(SelectEcho, [b"one", b"two"])
    for transcript in (by_flag, found):
        assert transcript.sockets == "real"
        assert transcript.error is None
        assert [r.outcome for r in transcript.steps] == ["ok", "ok", "ok", "eof"]
        assert transcript.received == transcript.output == b"onetwo"
        assert transcript.closed is False
        assert transcript.half_closed is False


def test_a_handler_asking_for_its_descriptor_after_reading_is_told_how() -> None:
    class Late(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(10)
            select.select([self.request], [], [], 0)

    transcript = sockshock.drive(Late, b"x")
    assert transcript.sockets == "memory"
    assert isinstance(transcript.error, io.UnsupportedOperation)
    assert "sockets='real'" in str(transcript.error)

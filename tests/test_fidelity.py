"""Harness fidelity found on real servers: the fault layer and the plugin behave as
the operating system and a test writer expect."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import sockshock
from sockshock import faults as F
from sockshock import socketserver as ss
from tests._support import WAIT, run_pytest

pytest_plugins = ["pytester"]


def test_sendall_timeout_bounds_the_whole_call_as_cpython_does() -> None:
    outcome: list[Any] = []

    class Writer(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(1.0)
            clock = self.server.socket_layer.clock
            try:
                self.request.sendall(b"x" * 100)  # 100 sends of 1 byte, 0.2 s apart
            except TimeoutError as exc:
                outcome.append((exc, clock.now()))

    with (
        sockshock.serving(
            "TCPServer", Writer, faults=[F.SlowReader(chunk=1, pause=0.2)], clock="virtual", seed=0
        ) as srv,
        srv.connect() as client,
    ):
        while client.recv(1000):  # to the end: the handler has given up by then
            pass
    ((error, at),) = outcome
    assert str(error) == "timed out"
    assert 0.8 <= at <= 1.2  # one timeout for the whole sendall, not one per send


def test_a_stall_ends_when_the_real_peer_closes() -> None:
    seen: list[bytes] = []
    entered, returned = threading.Event(), threading.Event()

    class Reader(ss.BaseRequestHandler):
        def handle(self) -> None:
            entered.set()
            seen.append(self.request.recv(100))  # no timeout: only the peer can end it
            returned.set()

    with sockshock.serving("ThreadingTCPServer", Reader, faults=[F.Stall(0)], seed=0) as srv:
        client = srv.connect()
        client.sendall(b"never delivered")
        assert entered.wait(5)
        client.close()  # the peer goes away: the stalled read ends as end of file
        assert returned.wait(5), "the stall outlived its peer"  # before the stop
        assert seen == [b""]


def test_abrupt_shutdown_fires_at_its_byte_even_when_the_request_comes_in_one_read() -> None:
    reads: list[bytes] = []

    class Reader(ss.BaseRequestHandler):
        def handle(self) -> None:
            reads.append(self.request.recv(4096))
            reads.append(self.request.recv(4096))

    with (
        sockshock.serving(
            "ThreadingTCPServer", Reader, seed=0, faults=[F.AbruptShutdown(after_bytes=5)]
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"0123456789")  # one segment: one read could take it all
        assert srv.layer.shutdown_triggered.wait(5)
        assert srv.wait_stopped(WAIT)
    assert reads == [b"01234", b"56789"]


def test_expected_errors_and_the_fixture_is_not_the_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixture="""
import pytest
from sockshock import socketserver, faults as F

class Resets(socketserver.BaseRequestHandler):
    def handle(self):
        while self.request.recv(100):
            pass

@pytest.mark.sockshock(expect_errors=ConnectionResetError)
@pytest.mark.faults(F.ResetAfter(2))
def test_declared(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", Resets)
    with srv.connect() as client:
        client.sendall(b"abcdef")
        client.recv(10)
    with pytest.raises(AttributeError, match="the name 'sockshock' is the fixture"):
        sockshock.faults  # the fixture does not pose as the package

@pytest.mark.faults(F.ResetAfter(2))
def test_undeclared(sockshock):
    srv = sockshock.serve("ThreadingTCPServer", Resets)
    with srv.connect() as client:
        client.sendall(b"abcdef")
        client.recv(10)
"""
    )
    result = run_pytest(pytester)
    result.assert_outcomes(passed=2, errors=1)  # the undeclared one errs at teardown
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_undeclared*", "*ConnectionResetError*"]
    )

"""Faults replaced while a proxy holds data back: what the old plan held goes on at
once, as when a toxiproxy toxic is removed (its latency toxic, interrupted, "exits
fast without applying latency" and drops nothing); a reset it scheduled still
comes, as toxiproxy's ``reset_peer`` cannot be interrupted. Found with redis-py
(tests/test_proxy_redis.py): a reply held by a 10 s latency toxic took the whole
10 s after the toxic was removed."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from tests._support import WAIT, read_line
from tests.test_proxy_control import Echo

LONG = 10.0  # a delay no test waits for: each ends long before it
SOON = LONG / 2  # "at once", on a machine as loaded as it may be


def fired(proxy: sockshock.FaultProxy) -> threading.Event:
    """Set when the proxy's plan decides anything (the data is then held)."""
    event = threading.Event()
    proxy.on_event = lambda _: event.set()
    return event


def test_a_reply_held_by_latency_goes_at_once_when_the_faults_go() -> None:
    with (
        sockshock.serving("ThreadingTCPServer", Echo) as srv,
        sockshock.FaultProxy(srv.address, faults=[F.Latency(LONG, direction="out")]) as proxy,
        socket.create_connection(proxy.address, timeout=WAIT) as client,
    ):
        held = fired(proxy)
        client.sendall(b"held\n")
        assert held.wait(WAIT)
        replaced = time.monotonic()
        proxy.set_faults(None)
        assert read_line(client) == b"held\n"
        assert time.monotonic() - replaced < SOON
        assert proxy.plan.log == []  # the new plan decided nothing


def test_held_data_goes_first_and_the_new_plans_latency_applies_after_it() -> None:
    with (
        sockshock.serving("ThreadingTCPServer", Echo) as srv,
        sockshock.FaultProxy(srv.address, faults=[F.Latency(LONG, direction="out")]) as proxy,
        socket.create_connection(proxy.address, timeout=WAIT) as client,
    ):
        held = fired(proxy)
        client.sendall(b"first\n")
        assert held.wait(WAIT)
        plan = proxy.set_faults([F.Latency(0.2, direction="out")])
        start = time.monotonic()
        assert read_line(client) == b"first\n"
        assert time.monotonic() - start < SOON
        start = time.monotonic()
        client.sendall(b"second\n")
        assert read_line(client) == b"second\n"
        assert 0.2 * 0.99 <= time.monotonic() - start < SOON
        assert [e.decision.delay for e in plan.log] == [0.2]


def test_an_end_of_file_held_by_slow_close_goes_at_once_when_the_faults_go() -> None:
    class ReplyAndClose(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"bye\n")

    slow_close = F.Latency(LONG, direction="out", close_only=True)
    with (
        sockshock.serving("ThreadingTCPServer", ReplyAndClose) as srv,
        sockshock.FaultProxy(srv.address, faults=[slow_close]) as proxy,
        socket.create_connection(proxy.address, timeout=WAIT) as client,
    ):
        held = fired(proxy)
        assert read_line(client) == b"bye\n"  # the data is not held
        assert held.wait(WAIT)  # the end of file is
        replaced = time.monotonic()
        proxy.set_faults(None)
        assert client.recv(10) == b""
        assert time.monotonic() - replaced < SOON


def test_a_scheduled_reset_still_comes_when_the_faults_go() -> None:
    delay = 0.3
    with (
        sockshock.serving("ThreadingTCPServer", Echo) as srv,
        sockshock.FaultProxy(srv.address, faults=[F.ResetAfter(0, delay=delay)]) as proxy,
        socket.create_connection(proxy.address, timeout=WAIT) as client,
    ):
        held = fired(proxy)
        start = time.monotonic()
        client.sendall(b"doomed\n")
        assert held.wait(WAIT)
        proxy.set_faults(None)
        with pytest.raises(ConnectionResetError):
            client.recv(10)
        assert time.monotonic() - start >= delay * 0.99

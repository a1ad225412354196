"""Faults replaced on a running proxy, as toxiproxy's toxics change. What the old
plan held back goes on at once, as when a toxiproxy toxic is removed (its latency
toxic, interrupted, "exits fast without applying latency" and drops nothing); a
reset it scheduled still comes, as toxiproxy's ``reset_peer`` cannot be
interrupted; a direction whose models did not change goes on as it was, as
toxiproxy's downstream toxics are untouched by a change upstream. Both found with
redis-py (tests/test_proxy_redis.py): a reply held by a 10 s latency toxic took the
whole 10 s after the toxic was removed, and an upstream toxic added restarted a
downstream ``limit_data``'s count."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from tests._support import WAIT, read_line
from tests.test_proxy_control import Echo

LONG = 10.0  # a delay no test waits for: each ends long before it
SOON = LONG / 2  # "at once", on a machine as loaded as it may be


@contextlib.contextmanager
def proxied(
    handler: type[ss.BaseRequestHandler], faults: list[Any]
) -> Iterator[tuple[sockshock.FaultProxy, socket.socket, threading.Event]]:
    """A server with ``handler``, a proxy with ``faults`` in front of it, a client of
    the proxy, and an event set when the plan decides anything (the data is then
    held) -- hooked before the client connects, so that nothing goes unseen."""
    with (
        sockshock.serving("ThreadingTCPServer", handler) as srv,
        sockshock.FaultProxy(srv.address, faults=faults) as proxy,
    ):
        held = threading.Event()
        proxy.on_event = lambda _: held.set()
        with socket.create_connection(proxy.address, timeout=WAIT) as client:
            yield proxy, client, held


def test_a_reply_held_by_latency_goes_at_once_when_the_faults_go() -> None:
    with proxied(Echo, [F.Latency(LONG, direction="out")]) as (proxy, client, held):
        client.sendall(b"held\n")
        assert held.wait(WAIT)
        replaced = time.monotonic()
        proxy.set_faults(None)
        assert read_line(client) == b"held\n"
        assert time.monotonic() - replaced < SOON
        assert proxy.plan.log == []  # the new plan decided nothing


def test_held_data_goes_first_and_the_new_plans_latency_applies_after_it() -> None:
    with proxied(Echo, [F.Latency(LONG, direction="out")]) as (proxy, client, held):
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
    with proxied(ReplyAndClose, [slow_close]) as (proxy, client, held):
        assert read_line(client) == b"bye\n"  # the data is not held
        assert held.wait(WAIT)  # the end of file is
        replaced = time.monotonic()
        proxy.set_faults(None)
        assert client.recv(10) == b""
        assert time.monotonic() - replaced < SOON


def test_a_scheduled_reset_still_comes_when_the_faults_go() -> None:
    delay = 0.3
    with proxied(Echo, [F.ResetAfter(0, delay=delay)]) as (proxy, client, held):
        start = time.monotonic()
        client.sendall(b"doomed\n")
        assert held.wait(WAIT)
        proxy.set_faults(None)
        with pytest.raises(ConnectionResetError):
            client.recv(10)
        assert time.monotonic() - start >= delay * 0.99


def ask(client: socket.socket, line: bytes) -> bytes:
    client.sendall(line)
    return read_line(client)


def test_a_change_upstream_leaves_downstream_counting_on() -> None:
    limit = F.EOFAfter(30, direction="out")
    with (
        sockshock.serving("ThreadingTCPServer", Echo) as srv,
        sockshock.FaultProxy(srv.address, faults=[limit]) as proxy,
        socket.create_connection(proxy.address, timeout=WAIT) as client,
    ):
        for _ in range(4):
            assert ask(client, b"abcdef\n") == b"abcdef\n"  # 28 bytes back
        proxy.set_faults([limit, F.Latency(0.001, direction="in")])
        assert ask(client, b"abcdef\n") == b"ab"  # 30: cut, end of file


def test_a_change_upstream_leaves_a_delay_downstream_running() -> None:
    hold = F.Latency(LONG, direction="out")
    with proxied(Echo, [hold]) as (proxy, client, held):
        client.sendall(b"held\n")
        assert held.wait(WAIT)
        proxy.set_faults([hold, F.Latency(0.001, direction="in")])
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):  # still held: downstream did not change
            client.recv(10)
        client.settimeout(WAIT)
        proxy.set_faults(None)  # now it did
        assert read_line(client) == b"held\n"

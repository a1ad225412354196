"""ThreadPoolMixIn: bounded threads, a bounded queue, nothing accepted is dropped."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from tests.conftest import within


class Gate:
    """Holds handlers until released, counting how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.release = threading.Event()
        self.changed = threading.Condition(self.lock)

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.changed.notify_all()

    def leave(self) -> None:
        with self.lock:
            self.running -= 1

    def wait_running(self, n: int, timeout: float = 5) -> bool:
        with self.lock:
            return self.changed.wait_for(lambda: self.running >= n, timeout)


def gated_echo(gate: Gate) -> Any:
    class Echo(ss.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            gate.enter()
            try:
                assert gate.release.wait(10)
                self.wfile.write(line)
            finally:
                gate.leave()

    return Echo


class CountingPool(ss.ThreadPoolTCPServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted = 0
        self.accepted_changed = threading.Condition()

    def get_request(self) -> Any:
        request = super().get_request()
        with self.accepted_changed:
            self.accepted += 1
            self.accepted_changed.notify_all()
        return request

    def wait_accepted(self, n: int, timeout: float) -> bool:
        with self.accepted_changed:
            return self.accepted_changed.wait_for(lambda: self.accepted >= n, timeout)


def test_a_flood_neither_spawns_unbounded_threads_nor_drops_requests() -> None:
    gate = Gate()
    with sockshock.serving(
        CountingPool, gated_echo(gate), max_workers=2, max_queued_requests=3
    ) as srv:
        clients = [srv.connect() for _ in range(20)]
        for i, client in enumerate(clients):
            client.sendall(b"%d\n" % i)
        try:
            assert gate.wait_running(2)
            # 2 running + 3 queued; the rest wait in the kernel's backlog.
            assert srv.server.wait_accepted(5, 5)
            assert not srv.server.wait_accepted(6, 0.1), "accepted beyond the queue's bound"
            assert len(srv.server._pool.workers) == 2
        finally:
            gate.release.set()
        for i, client in enumerate(clients):
            assert client.recv(100) == b"%d\n" % i
        assert gate.peak == 2
        assert srv.server.accepted == 20


def test_server_close_serves_what_was_queued() -> None:
    gate = Gate()
    server = CountingPool(("127.0.0.1", 0), gated_echo(gate))
    server.max_workers = 1
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clients = []
    try:
        for i in range(4):
            client = socket.create_connection(server.server_address, timeout=5)
            clients.append(client)
            client.sendall(b"%d\n" % i)
        assert gate.wait_running(1)
        assert server.wait_accepted(4, 5)  # 1 running, 3 queued
        within(5, server.shutdown)
        closer = threading.Thread(target=server.server_close, daemon=True)
        closer.start()
        closer.join(0.05)
        assert closer.is_alive(), "server_close() must wait for the queue (block_on_close)"
        gate.release.set()
        closer.join(5)
        assert not closer.is_alive()
        for i, client in enumerate(clients):
            assert client.recv(100) == b"%d\n" % i
    finally:
        gate.release.set()
        if thread.is_alive():
            within(5, server.shutdown)
        within(5, server.server_close)
        thread.join(5)
        for client in clients:
            client.close()


def test_daemon_threads_and_block_on_close_false_are_honoured() -> None:
    gate = Gate()

    class Pool(ss.ThreadPoolTCPServer):
        daemon_threads = True
        block_on_close = False

    server = Pool(("127.0.0.1", 0), gated_echo(gate))
    try:
        with socket.create_connection(server.server_address, timeout=5) as client:
            client.sendall(b"x\n")
            server.handle_request()
            assert gate.wait_running(1)
            (worker,) = server._pool.workers
            assert worker.daemon
            server.server_close()  # returns although a handler still runs
            assert worker.is_alive()
            gate.release.set()
            assert client.recv(10) == b"x\n"
            worker.join(5)
            assert not worker.is_alive()
    finally:
        gate.release.set()
        server.server_close()


def test_a_worker_ended_by_systemexit_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # Like ThreadingMixIn, SystemExit ends the thread and reaches threading.excepthook.
    seen: list[type[BaseException]] = []
    hooked = threading.Event()

    def excepthook(args: Any) -> None:
        seen.append(args.exc_type)
        hooked.set()

    monkeypatch.setattr(threading, "excepthook", excepthook)

    class Handler(ss.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            if line == b"exit\n":
                raise SystemExit
            self.wfile.write(line)

    with sockshock.serving("ThreadPoolTCPServer", Handler, max_workers=1) as srv:
        with srv.connect() as first:
            first.sendall(b"exit\n")
            assert first.recv(10) == b""
        with srv.connect() as second:
            second.sendall(b"still\n")
            assert second.recv(10) == b"still\n"
    assert hooked.wait(5)
    assert seen == [SystemExit]


def test_a_pool_handler_may_call_shutdown() -> None:
    stopped = threading.Event()

    class Stop(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.server.shutdown()
            stopped.set()

    with sockshock.serving("ThreadPoolTCPServer", Stop) as srv, srv.connect():
        assert stopped.wait(5)
        srv.thread.join(5)
        assert not srv.thread.is_alive()


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"max_workers": 0}, "max_workers=0 must be in [1, inf] (from Pool)"),
        ({"max_queued_requests": -1}, "max_queued_requests=-1 must be in [1, inf] (from Pool)"),
        ({"max_workers": "4"}, "expected int but got max_workers='4' (type=str) (from Pool)"),
    ],
)
def test_bad_pool_settings_are_refused_at_construction(attrs: dict[str, Any], message: str) -> None:
    Pool = type("Pool", (ss.ThreadPoolTCPServer,), attrs)
    with pytest.raises(sockshock.errors.InvalidArgument) as info:
        Pool(("127.0.0.1", 0), ss.BaseRequestHandler)
    assert str(info.value) == message

"""Regression tests for the standard library's defects that sockshock fixes.

Each test runs against both modules: the stdlib run is marked ``xfail(strict=True)``
so the suite proves that the defect exists there and is gone here. Every wait is
bounded, and every stdlib run is rescued (woken, released) in its ``finally`` so that
no thread outlives its test.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ours
from tests.conftest import stdlib_defect

BOUND = 0.5  # seconds; what we fix takes microseconds, the stdlib takes 0.5 s to forever


def one_line_handler(module: Any) -> Any:
    class OneLine(module.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    return OneLine


@contextmanager
def serve_in_thread(server: Any, **kwargs: Any) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=server.serve_forever, kwargs=kwargs, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        stopper.join(5)
        server.server_close()
        thread.join(5)
        assert not thread.is_alive(), "the serving thread did not end"


def round_trip(address: Any, payload: bytes = b"ping\n") -> bytes:
    with socket.create_connection(address, timeout=5) as client:
        client.sendall(payload)
        return client.recv(100)


def wake_stdlib_loop(server: Any) -> None:
    """Make a stdlib serve_forever() leave select() early (it checks its flag then)."""
    try:
        with socket.create_connection(server.server_address, timeout=1):
            pass
    except OSError:
        pass


class _WaitingSelector(selectors.PollSelector):
    """Counts the serving loop's waits in select(): once a wait has begun, only a
    wake-up (or the timeout) can make the loop look at its shutdown flag again."""

    waits = 0
    changed = threading.Condition()

    def select(self, timeout: float | None = None) -> list[Any]:
        with _WaitingSelector.changed:
            _WaitingSelector.waits += 1
            _WaitingSelector.changed.notify_all()
        return super().select(timeout)

    @classmethod
    def wait_for(cls, n: int) -> bool:
        with cls.changed:
            return cls.changed.wait_for(lambda: cls.waits >= n, 5)


@stdlib_defect("serve_forever() polls: shutdown() waits out poll_interval (gh-88932)")
def test_shutdown_wakes_the_loop_instead_of_waiting_for_poll_interval(
    module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_WaitingSelector, "waits", 0)
    monkeypatch.setattr(module, "_ServerSelector", _WaitingSelector)
    server = module.TCPServer(("127.0.0.1", 0), one_line_handler(module))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 30}, daemon=True
    )
    thread.start()
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    try:
        assert _WaitingSelector.wait_for(1)  # idle, waiting for the first request
        assert round_trip(server.server_address) == b"ping\n"
        # The request is over; wait until the loop waits again (for up to 30 s).
        assert _WaitingSelector.wait_for(2)
        stopper.start()
        stopper.join(BOUND)
        assert not stopper.is_alive(), "shutdown() waited for the poll interval"
        thread.join(BOUND)
        assert not thread.is_alive()
    finally:
        if stopper.is_alive():
            wake_stdlib_loop(server)
            stopper.join(5)
        thread.join(5)
        server.server_close()


class _EmfileServerMixin:
    """get_request() fails with EMFILE while ``exhausted`` is set, like accept()
    with no descriptor left: the pending connection stays in the backlog."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.exhausted = threading.Event()
        self.exhausted.set()
        self.failures: list[float] = []
        self.actions_between_failures = 0
        self.five_failures = threading.Event()

    def get_request(self) -> Any:
        if self.exhausted.is_set():
            self.failures.append(time.monotonic())
            if len(self.failures) == 5:
                self.five_failures.set()
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return super().get_request()  # type: ignore[misc]

    def service_actions(self) -> None:
        if 1 <= len(self.failures) < 5:
            self.actions_between_failures += 1


@stdlib_defect("accept() failing with EMFILE spins the loop at 100% CPU")
def test_accept_resource_errors_back_off_and_the_waiting_client_is_served(module: Any) -> None:
    class Server(_EmfileServerMixin, module.TCPServer):
        pass

    server = Server(("127.0.0.1", 0), one_line_handler(module))
    with (
        serve_in_thread(server, poll_interval=0.001),
        socket.create_connection(server.server_address, timeout=5) as client,
    ):
        assert server.five_failures.wait(5)
        first, fifth = server.failures[0], server.failures[4]
        # Back-off 5 + 10 + 20 + 40 ms between five attempts: at least 50 ms.
        # The stdlib retries at once: microseconds.
        assert fifth - first >= 0.05, f"5 failed accepts within {fifth - first:.6f} s"
        # And the loop kept doing its other work meanwhile.
        assert server.actions_between_failures >= 1
        server.exhausted.clear()  # descriptors are free again
        client.sendall(b"served\n")
        assert client.recv(100) == b"served\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux-like rlimits")
@pytest.mark.parametrize(
    "module",
    [
        pytest.param(
            "stdlib",
            marks=pytest.mark.xfail(
                raises=AssertionError,
                strict=True,
                reason="accept() failing with EMFILE spins the loop at 100% CPU",
            ),
        ),
        "sockshock",
    ],
)
def test_a_process_out_of_descriptors_does_not_spin(module: str) -> None:
    """The real thing: RLIMIT_NOFILE exhausted in a child process. Judged by the
    accept() attempts in a 0.3 s window (the stdlib's run to thousands even when a
    loaded machine gives it little CPU; ours back off: 5, 10, 20... ms apart)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    probe = Path(__file__).with_name("_emfile_probe.py")
    proc = subprocess.run(
        [sys.executable, str(probe), module], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0:  # not an AssertionError: never taken for the stdlib's defect
        raise RuntimeError(f"the probe failed: {proc.stderr}")
    result = json.loads(proc.stdout)
    if result["emfile"] < 1:
        raise RuntimeError(
            f"accept() never failed with EMFILE: the probe tested nothing ({result})"
        )
    assert result["attempts"] < 20, (
        f"{result['attempts']} failed accepts and {result['cpu']:.3f} s of CPU in a 0.3 s "
        "window: spinning"
    )
    assert result["served"] == "served\n"


class _LyingSelector(selectors.PollSelector):
    """Reports the server readable once although nothing arrived (select(2), BUGS)."""

    lied = False

    def select(self, timeout: float | None = None) -> list[Any]:
        if not _LyingSelector.lied:
            for key in self.get_map().values():
                if not isinstance(key.fileobj, socket.socket):  # the server itself
                    _LyingSelector.lied = True
                    return [(key, selectors.EVENT_READ)]
        return super().select(timeout)


@stdlib_defect("UDPServer blocks in recvfrom() after a spurious readiness report")
def test_udp_loop_survives_spurious_readiness(module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Echo(module.DatagramRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.read())

    monkeypatch.setattr(_LyingSelector, "lied", False)
    monkeypatch.setattr(module, "_ServerSelector", _LyingSelector)
    server = module.UDPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 30}, daemon=True
    )
    thread.start()
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    try:
        stopper.start()
        stopper.join(BOUND)
        assert not stopper.is_alive(), "shutdown() hung: the loop is stuck in recvfrom()"
    finally:
        if stopper.is_alive():  # stdlib: unblock recvfrom() with a datagram
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rescue:
                rescue.sendto(b"x", server.server_address)
            stopper.join(5)
        thread.join(5)
        server.server_close()


@stdlib_defect("shutdown() from a handler in the serving thread deadlocks (gh-83978)")
def test_shutdown_from_the_serving_thread_raises(module: Any) -> None:
    outcome: list[BaseException | None] = []
    returned = threading.Event()

    class Stopper(module.BaseRequestHandler):
        def handle(self) -> None:
            try:
                self.server.shutdown()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)
            finally:
                returned.set()

    server = module.TCPServer(("127.0.0.1", 0), Stopper)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        with socket.create_connection(server.server_address, timeout=5):
            assert returned.wait(BOUND), "shutdown() in the serving thread never returned"
        assert len(outcome) == 1
        assert isinstance(outcome[0], sockshock.errors.ShutdownDeadlockError)
        assert isinstance(outcome[0], RuntimeError)
        assert "threading.Thread(target=server.shutdown)" in str(outcome[0])
    finally:
        if not returned.is_set():  # stdlib: release the deadlocked wait
            server._BaseServer__is_shut_down.set()
            returned.wait(5)
        else:
            threading.Thread(target=server.shutdown, daemon=True).start()
        thread.join(5)
        server.server_close()
    assert not thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_shutdown_from_a_forked_child_raises() -> None:
    class Stopper(ours.BaseRequestHandler):
        def handle(self) -> None:
            try:
                self.server.shutdown()
                self.request.sendall(b"returned")
            except sockshock.errors.ShutdownDeadlockError as exc:
                self.request.sendall(f"raised: {exc}".encode())

    with sockshock.serving(ours.ForkingTCPServer, Stopper) as srv, srv.connect() as client:
        reply = client.recv(1000).decode()
    assert reply.startswith("raised: shutdown() called in process")
    assert "child forked" in reply


def connect_burst(address: Any, count: int, bound: float) -> int:
    """Start ``count`` connects at once; return how many completed within ``bound``."""
    clients = []
    try:
        with selectors.DefaultSelector() as selector:
            for _ in range(count):
                client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                clients.append(client)
                client.setblocking(False)
                client.connect_ex(address)
                selector.register(client, selectors.EVENT_WRITE)
            connected = 0
            deadline = time.monotonic() + bound
            while connected < count and (remaining := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(remaining):
                    selector.unregister(key.fileobj)
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        connected += 1
            return connected
    finally:
        for client in clients:
            client.close()


@stdlib_defect("request_queue_size = 5: a burst waits for SYN retransmits (1 s and more)")
def test_default_backlog_absorbs_a_burst_of_connections(module: Any) -> None:
    # Nobody accepts: everything that connects must fit in the listen backlog.
    with module.TCPServer(("127.0.0.1", 0), module.BaseRequestHandler) as server:
        assert connect_burst(server.server_address, 64, BOUND) == 64


def test_request_queue_size_stays_overridable() -> None:
    class Small(ours.TCPServer):
        request_queue_size = 2

    with Small(("127.0.0.1", 0), ours.BaseRequestHandler) as server:
        # Linux queues backlog + 1 connections and drops the SYNs beyond.
        assert connect_burst(server.server_address, 16, 0.2) < 16


@stdlib_defect("ThreadingUDPServer.server_close() closes the socket its handlers reply on")
def test_threading_udp_handlers_can_still_reply_during_server_close(module: Any) -> None:
    entered, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    class Late(module.DatagramRequestHandler):
        def handle(self) -> None:
            entered.set()
            release.wait(5)
            self.wfile.write(b"late reply")

    class Server(module.ThreadingUDPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            import sys

            failures.append(sys.exc_info()[1])  # type: ignore[arg-type]

    server = Server(("127.0.0.1", 0), Late)
    closer = threading.Thread(target=server.server_close, daemon=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(BOUND)
            client.sendto(b"request", server.server_address)
            server.handle_request()
            assert entered.wait(5)
            # Release the handler once server_close() waits for it (both modules
            # join their handler threads; the stdlib has closed the socket by then).
            joining = threading.Event()
            threads = server._threads
            real_join = threads.join

            def join() -> None:
                joining.set()
                real_join()

            threads.join = join
            closer.start()
            assert joining.wait(5)
            release.set()
            closer.join(5)
            assert failures == []
            assert client.recv(100) == b"late reply"
    finally:
        release.set()
        closer.join(5)
        server.server_close()


def test_serve_forever_without_descriptors_for_its_wake_up_still_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Started while the process is out of descriptors, the loop falls back to
    polling for shutdown (the stdlib's behaviour) instead of failing."""

    def no_descriptors(*args: Any) -> Any:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    class Echo(ours.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    server = ours.TCPServer(("127.0.0.1", 0), Echo)
    monkeypatch.setattr(ours.socket, "socketpair", no_descriptors)
    with serve_in_thread(server, poll_interval=0.01):
        assert round_trip(server.server_address) == b"ping\n"

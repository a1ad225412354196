"""The robustness checks of ``sockshock run``: a pytest module run with the plugin.

``sockshock run`` runs this module through ``pytest.main`` with sockshock's own
plugin, so every check gets what every sockshock test gets: a seed derived from
the session seed, the fault log in its failure report, the shutdown bound and the
leak audit at teardown. The target (server classes, handler, request) comes from
the plugin object that the command line registers (a ``cli.RunTarget``).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from sockshock import _faults as F

TIMEOUT = 2.0  # every client wait is bounded by this

#: The checks, in matrix order: test function name -> its column in the matrix
#: ``sockshock run`` prints. Adding a check is adding a function decorated with
#: :func:`check` here.
CHECKS: dict[str, str] = {}


_F = TypeVar("_F", bound=Callable[..., None])


def check(column: str) -> Callable[[_F], _F]:
    """Declare a test function as a check shown in ``column``."""

    def register(function: _F) -> _F:
        CHECKS[function.__name__] = column
        return function

    return register


def _find_target(config: pytest.Config) -> Any:
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "is_sockshock_run_target", False) is True:
            return plugin
    return None


def _target(config: pytest.Config) -> Any:
    target = _find_target(config)
    if target is None:
        pytest.skip("run through `sockshock run`")
    return target


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    target = _find_target(metafunc.config)
    if target is None or "server" not in metafunc.fixturenames:
        return
    kind = metafunc.definition.get_closest_marker("transport")
    servers = [s for s in target.servers if kind is None or s.transport == kind.args[0]]
    metafunc.parametrize("server", servers, ids=[s.name for s in servers])


def exchange(srv: Any, request: bytes) -> bytes:
    """One request and its whole response (until the server closes, or one datagram)."""
    with srv.connect(timeout=TIMEOUT) as client:
        if srv.type == socket.SOCK_DGRAM:
            client.send(request)
            return client.recv(65536)  # type: ignore[no-any-return]
        client.sendall(request)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def baseline(target: Any, server: Any) -> bytes:
    """What the handler answers without faults (cached per server class). A handler
    that fails even without faults does not support this server: its checks are
    skipped with the reason, once per cause."""
    import sockshock

    key = server.name
    if key not in target.baselines:
        try:
            with sockshock.serving(server.server_class, target.handler_for(server)) as srv:
                target.baselines[key] = exchange(srv, target.request)
        except Exception as exc:  # the handler's own failure, or no reply in time
            target.baselines[key] = exc
    value = target.baselines[key]
    if isinstance(value, Exception):
        pytest.skip(
            f"unsupported: the handler fails even without faults ({type(value).__name__}: {value})"
        )
    return value  # type: ignore[no-any-return]


def judge(target: Any, server: Any, reply: bytes) -> None:
    problem = target.expectation.judge(reply, baseline(target, server))
    assert problem is None, problem


pytestmark = pytest.mark.shutdown_within(2.0)


@check("echo")
def test_echo_round_trip(sockshock: Any, server: Any, request: pytest.FixtureRequest) -> None:
    target = _target(request.config)
    baseline(target, server)  # skips a server the handler does not support
    srv = sockshock.serve(server.server_class, target.handler_for(server))
    reply = exchange(srv, target.request)
    assert reply, "no reply at all"
    judge(target, server, reply)


def _same_reply_under(
    sockshock: Any, server: Any, request: pytest.FixtureRequest, fault: F.FaultModel
) -> None:
    """Under ``fault`` the handler answers as it does without faults."""
    target = _target(request.config)
    baseline(target, server)
    srv = sockshock.serve(server.server_class, target.handler_for(server), faults=[fault])
    judge(target, server, exchange(srv, target.request))


@check("partial reads")
@pytest.mark.transport("stream")
def test_partial_reads(sockshock: Any, server: Any, request: pytest.FixtureRequest) -> None:
    _same_reply_under(sockshock, server, request, F.PartialReads(1))


@check("partial writes")
@pytest.mark.transport("stream")
def test_partial_writes(sockshock: Any, server: Any, request: pytest.FixtureRequest) -> None:
    _same_reply_under(sockshock, server, request, F.PartialWrites(1))


@check("slow client")
@pytest.mark.transport("stream")
def test_slow_client_while_others_are_served(
    sockshock: Any, server: Any, request: pytest.FixtureRequest
) -> None:
    target = _target(request.config)
    expected = baseline(target, server)
    if server.concurrency == "sync":
        request.applymarker(
            pytest.mark.xfail(
                strict=True, reason="a synchronous server serves one client at a time"
            )
        )
    pause = max(0.002, 0.05 / max(1, len(target.request)))  # 50 ms of slowness
    srv = sockshock.serve(
        server.server_class,
        target.handler_for(server),
        faults=[F.SlowClient(chunk=1, pause=pause, connections=0)],
    )
    errors: list[BaseException] = []
    slow_reply: list[bytes] = []

    def slow() -> None:
        try:
            slow_reply.append(exchange(srv, target.request))
        except BaseException as exc:
            errors.append(exc)

    def slow_reads() -> int:  # how far the server got reading the slow request
        return sum(1 for event in srv.plan.log if event.connection == 0)

    slow_client = threading.Thread(target=slow, name="sockshock run: slow client")
    slow_client.start()
    try:
        while not slow_reads() and slow_client.is_alive():  # the slow one is being read
            time.sleep(0.001)
        judge(target, server, exchange(srv, target.request))
        read_meanwhile = slow_reads()
    finally:
        slow_client.join(TIMEOUT * 5)
    if errors or target.expectation.judge(slow_reply[0], expected) is not None:
        # The server gave up on the slow client (a timeout, say): a policy, not
        # another client kept waiting.
        dropped = repr(errors[0]) if errors else f"its reply was {slow_reply[0][:40]!r}"
        pytest.xfail(f"the server dropped the slow client ({dropped})")
    # Judged by the server's own progress, not by which client thread ran first.
    assert read_meanwhile < slow_reads(), "one slow client kept the others waiting"


@check("lost datagrams")
@pytest.mark.transport("datagram")
def test_lost_datagrams_with_client_retry(
    sockshock: Any, server: Any, request: pytest.FixtureRequest
) -> None:
    target = _target(request.config)
    baseline(target, server)
    # Half of the datagrams lost, and surely the first one.
    srv = sockshock.serve(
        server.server_class,
        target.handler_for(server),
        faults=[F.DropDatagrams(0.5), F.DropDatagrams(first_ops=1)],
    )

    def drops() -> int:  # datagrams lost (one may be dropped by both models)
        return len(
            {
                (event.connection, event.index)
                for event in srv.plan.log
                if event.decision.action == "drop"
            }
        )

    retries = 0
    deadline = time.monotonic() + TIMEOUT
    with srv.connect(timeout=TIMEOUT) as client:
        for _ in range(8):
            while True:  # until answered; resent when the server's log says it was lost
                lost_before = drops()
                client.send(target.request)
                while not select.select([client], [], [], 0.001)[0] and drops() == lost_before:
                    assert time.monotonic() < deadline, f"no answer within {TIMEOUT} s"
                if drops() == lost_before:
                    break
                retries += 1
            judge(target, server, client.recv(65536))
    # Every lost datagram cost exactly one retry, and no answer came twice.
    assert retries == drops() > 0, f"{retries} retries for {drops()} lost datagrams"


@check("abrupt shutdown")
def test_abrupt_shutdown_mid_request(
    sockshock: Any, server: Any, request: pytest.FixtureRequest
) -> None:
    target = _target(request.config)
    # Mid-request: as the handler starts reading the first client's request.
    baseline(target, server)
    srv = sockshock.serve(
        server.server_class, target.handler_for(server), faults=[F.AbruptShutdown(connections=0)]
    )
    with contextlib.suppress(TimeoutError, ConnectionError):
        exchange(srv, target.request)  # answered, cut off or refused: but never hung
    assert srv.layer.shutdown_triggered.wait(TIMEOUT), "the shutdown never came"
    assert srv.wait_stopped(TIMEOUT * 2), "shutdown()/server_close() did not finish"
    assert srv.server.socket.fileno() == -1

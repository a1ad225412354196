"""The fault proxy in front of a real ``redis-server``, with the real clients a
toxiproxy user brings: redis-py (unmodified; PyPI ``redis``) and ``redis-benchmark``
(Debian ``redis-tools``), as issue 21's user ran them -- in-process
``sockshock.FaultProxy``, ``sockshock proxy --api`` driven by toxiproxy-python, and
the ``sockshock proxy`` command line. No adapter, no monkeypatching: each test says
what redis-py or redis-benchmark sees.

One ``redis-server`` per module (per xdist worker) on a free loopback port, without
persistence; the module is skipped, saying why, when ``redis-server`` is not on PATH
or redis-py is not installed (``.ci/run`` installs both where it can). redis-py (6
and later) retries a failed command by default, with a back-off; the tests that
want to see the first error say so (``retry=NO_RETRY``), as a test of error
handling would."""

from __future__ import annotations

import contextlib
import errno
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sockshock
from sockshock import faults as F
from tests import test_proxy_api as api_tests
from tests._support import SUBPROCESS_TIMEOUT, WAIT, stop_process
from tests.test_proxy_control import proxy_process

redis = pytest.importorskip("redis", reason="redis-py is not installed (pip install redis)")
if shutil.which("redis-server") is None:
    pytest.skip(
        "redis-server is not on PATH (Debian: apt-get install redis-server redis-tools)",
        allow_module_level=True,
    )

from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402
from toxiproxy import Toxiproxy  # noqa: E402

# toxiproxy's API process and toxiproxy-python pointed at it: test_proxy_api.py's
# fixtures (one home), one API process for this module too.
api = api_tests.api
toxi = api_tests.toxi
address_of = api_tests.address_of

#: No retries: the test sees the first error, where redis-py's defaults retry with a
#: back-off first.
NO_RETRY = Retry(NoBackoff(), 0)


# -- the server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A running ``redis-server`` and a direct connection that watches its clients."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.address = ("127.0.0.1", port)
        self.upstream = f"127.0.0.1:{port}"
        self.observer = redis.Redis(*self.address, socket_timeout=WAIT, retry=NO_RETRY)

    def clients(self) -> int:
        """Its connected clients, the observer included."""
        return int(self.observer.info("clients")["connected_clients"])

    def connections_received(self) -> int:
        """Every connection it has accepted since it started."""
        return int(self.observer.info("stats")["total_connections_received"])

    def wait_until(self, what: str, check: Callable[[], bool]) -> None:
        """Poll the server until ``check()`` holds, for :data:`WAIT` at most."""
        deadline = time.monotonic() + WAIT
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"redis-server: not {what} within {WAIT} s "
                    f"({self.clients()} clients, {self.connections_received()} received)"
                )
            time.sleep(0.005)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``redis-server`` on a free loopback port, answering PING; a port taken
    between the probe and the bind is tried again with another."""
    for _ in range(3):
        port = free_port()
        log = workdir / f"redis-{port}.log"
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + WAIT
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with redis.Redis("127.0.0.1", port, socket_timeout=WAIT, retry=NO_RETRY) as r:
                    if r.ping():
                        return proc, port
            except redis.ConnectionError:
                time.sleep(0.01)
        stop_process(proc)
    said = log.read_text() if log.exists() else "(no log)"
    pytest.fail(f"redis-server did not start on 127.0.0.1:{port}: {said[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        running = RedisServer(proc, port)
        try:
            yield running
        finally:
            running.observer.close()
    finally:
        stop_process(proc)


def client(address: tuple[str, int], **options: Any) -> Any:
    """redis-py against ``address``: no retries unless ``retry=`` says otherwise."""
    options.setdefault("socket_timeout", WAIT)
    options.setdefault("retry", NO_RETRY)
    return redis.Redis(*address, **options)


def os_error_of(exc: BaseException) -> OSError | None:
    """The OS error redis-py's exception was raised from, if any."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ or seen.__context__
    return seen


# -- in-process: sockshock.FaultProxy ----------------------------------------------------


def test_redis_py_through_an_empty_plan(server: RedisServer) -> None:
    value = bytes(range(256)) * 4096  # 1 MiB, binary
    before = server.connections_received()
    with sockshock.FaultProxy(server.address) as proxy, client(proxy.address) as r:
        assert r.ping() is True
        assert r.set("empty:key", value) is True
        assert r.get("empty:key") == value
        pipe = r.pipeline()
        for _ in range(100):
            pipe.incr("empty:counter")
        assert pipe.execute() == list(range(1, 101))
        assert r.delete("empty:key", "empty:counter") == 2
    assert proxy.plan.log == []
    assert server.connections_received() - before == 1  # redis-py's one, through the proxy


def test_disable_is_a_connection_error_and_enable_serves_again(server: RedisServer) -> None:
    with (
        sockshock.FaultProxy(server.address) as proxy,
        client(proxy.address) as r,
        client(proxy.address) as listener,
    ):
        subscriber = listener.pubsub()
        try:
            subscriber.subscribe("disable:news")
            assert subscriber.get_message(timeout=WAIT)["type"] == "subscribe"
            assert r.ping() is True
            address = proxy.address
            proxy.disable()
            with pytest.raises(redis.ConnectionError):  # its connection was closed
                subscriber.get_message(timeout=WAIT)
            with pytest.raises(redis.ConnectionError) as refused:
                r.ping()
            assert os_error_of(refused.value) is not None
            assert "refused" in str(refused.value)  # ECONNREFUSED, as from a closed port
            proxy.enable()
            assert proxy.address == address
            assert r.ping() is True  # the same client, the same port
        finally:
            subscriber.close()


def test_redis_py_default_retries_ride_out_one_reset(server: RedisServer) -> None:
    """The first connection reset: redis-py as shipped retries on a new connection;
    without retries the application sees the reset."""
    first_only = [F.ResetAfter(0, connections=[0])]
    with sockshock.FaultProxy(server.address, faults=first_only) as proxy:
        with client(proxy.address) as r, pytest.raises(redis.ConnectionError) as reset:
            r.ping()
        error = os_error_of(reset.value)
        assert error is not None
        assert error.errno == errno.ECONNRESET
    with (
        sockshock.FaultProxy(server.address, faults=first_only) as proxy,
        redis.Redis(*proxy.address) as r,  # redis-py's defaults
    ):
        assert r.ping() is True
    assert [(e.connection, e.decision.action) for e in proxy.plan.log] == [(0, "reset")]


# -- toxiproxy's API, driven by toxiproxy-python -------------------------------------------


def proxy_for(toxi: Toxiproxy, server: RedisServer, name: str) -> Any:
    return toxi.create(upstream=server.upstream, name=name, listen="127.0.0.1:0")


def test_a_pipeline_under_latency_takes_one_latency_not_one_per_command(
    toxi: Toxiproxy, server: RedisServer
) -> None:
    latency, commands = 0.1, 50
    proxy = proxy_for(toxi, server, "redis-latency")
    with client(address_of(proxy)) as r:
        assert r.ping() is True  # connected (redis-py's handshake) before the toxic
        proxy.add_toxic(type="latency", attributes={"latency": int(latency * 1000)})
        pipe = r.pipeline(transaction=False)
        for i in range(commands):
            pipe.echo(f"line {i}")
        start = time.monotonic()
        replies = pipe.execute()
        elapsed = time.monotonic() - start
        start = time.monotonic()
        r.echo("one")
        r.echo("two")
        one_by_one = time.monotonic() - start
    assert replies == [f"line {i}".encode() for i in range(commands)]
    assert latency * 0.99 <= elapsed < commands * latency / 2
    assert one_by_one >= 2 * latency * 0.99  # a round trip each


def test_removing_a_latency_toxic_lets_the_reply_it_holds_go_at_once(
    toxi: Toxiproxy, server: RedisServer, api: api_tests.Api
) -> None:
    """toxiproxy's latency toxic, removed, "exits fast without applying latency":
    a test that heals the network sees redis-py's reply then, not 10 s later."""
    proxy = proxy_for(toxi, server, "redis-heal")
    replies: list[Any] = []
    with client(address_of(proxy)) as r:
        assert r.ping() is True
        proxy.add_toxic(type="latency", attributes={"latency": 10_000})
        waiter = threading.Thread(target=lambda: replies.append(r.ping()), daemon=True)
        waiter.start()
        try:
            deadline = time.monotonic() + WAIT
            while not api_tests.events(api, "redis-heal"):  # the reply is held
                assert time.monotonic() < deadline, "no latency decided"
                time.sleep(0.005)
            removed = time.monotonic()
            proxy.destroy_toxic("latency_downstream")
            waiter.join(WAIT)
            healed = time.monotonic() - removed
        finally:
            waiter.join(WAIT)
    assert replies == [True]
    assert healed < 5.0


def test_down_is_a_connection_error_and_up_serves_on_the_same_port(
    toxi: Toxiproxy, server: RedisServer
) -> None:
    proxy = proxy_for(toxi, server, "redis-down")
    with client(address_of(proxy)) as r:
        assert r.set("down:key", "kept") is True
        with proxy.down():
            with pytest.raises(redis.ConnectionError) as refused:
                r.get("down:key")
            assert "refused" in str(refused.value)
        assert r.get("down:key") == b"kept"  # reconnected through the same port
        r.delete("down:key")


@pytest.mark.parametrize(
    ("stream", "timeout_ms"), [("upstream", 0), ("downstream", 200)], ids=["at-once", "200ms"]
)
def test_reset_peer_is_connection_reset_by_peer(
    toxi: Toxiproxy, server: RedisServer, stream: str, timeout_ms: int
) -> None:
    proxy = proxy_for(toxi, server, f"redis-reset-{stream}")
    with client(address_of(proxy)) as r:
        assert r.ping() is True
        proxy.add_toxic(type="reset_peer", stream=stream, attributes={"timeout": timeout_ms})
        start = time.monotonic()
        with pytest.raises(redis.ConnectionError) as reset:
            r.ping()
        elapsed = time.monotonic() - start
    error = os_error_of(reset.value)
    assert error is not None
    assert error.errno == errno.ECONNRESET  # what redis-py gets from the OS
    assert elapsed >= timeout_ms / 1000 * 0.99


def test_timeout_closes_the_connection_after_the_timeout(
    toxi: Toxiproxy, server: RedisServer
) -> None:
    proxy = proxy_for(toxi, server, "redis-timeout")
    with client(address_of(proxy)) as r:
        assert r.ping() is True
        proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 200})
        start = time.monotonic()
        with pytest.raises(redis.ConnectionError, match="Connection closed by server"):
            r.ping()
        assert time.monotonic() - start >= 0.199


def test_timeout_zero_is_a_redis_py_timeout_until_the_toxic_goes(
    toxi: Toxiproxy, server: RedisServer
) -> None:
    proxy = proxy_for(toxi, server, "redis-timeout0")
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    with client(address_of(proxy), socket_timeout=0.2) as r, pytest.raises(redis.TimeoutError):
        r.ping()  # nothing answers: redis-py's own socket_timeout ends the wait
    proxy.destroy_toxic("timeout_upstream")
    with client(address_of(proxy)) as r:
        assert r.ping() is True


def test_limit_data_cuts_the_reply_that_crosses_the_limit(
    toxi: Toxiproxy, server: RedisServer
) -> None:
    proxy = proxy_for(toxi, server, "redis-limit")
    with client(address_of(proxy)) as r:
        assert r.set("limit:key", "v" * 100) is True  # before the toxic: not counted
        proxy.add_toxic(type="limit_data", attributes={"bytes": 30})
        assert r.ping() is True  # +PONG: 7 bytes
        assert r.ping() is True  # 14
        with pytest.raises(redis.ConnectionError, match="Connection closed by server"):
            r.get("limit:key")  # $100 and the value: cut at 30
    with client(server.address) as direct:
        direct.delete("limit:key")


def test_a_toxic_added_upstream_leaves_limit_data_downstream_counting(
    toxi: Toxiproxy, server: RedisServer
) -> None:
    """toxiproxy's downstream toxics are untouched by a change upstream: 35 bytes
    do not get through a 30-byte limit because a toxic was added the other way."""
    proxy = proxy_for(toxi, server, "redis-limit-kept")
    with client(address_of(proxy)) as r:
        assert r.ping() is True
        proxy.add_toxic(type="limit_data", attributes={"bytes": 30})
        for _ in range(4):
            assert r.ping() is True  # 4 x 7 bytes: 28
        proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 1})
        with pytest.raises(redis.ConnectionError, match="Connection closed by server"):
            r.ping()  # 35


def test_slow_close_delays_the_close_redis_py_sees(toxi: Toxiproxy, server: RedisServer) -> None:
    """A blocked BLPOP whose connection the server kills: redis-py hears of it
    ``delay`` after the kill, not at once."""
    delay = 0.3
    proxy = proxy_for(toxi, server, "redis-slow-close")
    proxy.add_toxic(type="slow_close", attributes={"delay": int(delay * 1000)})
    outcome: list[BaseException | None] = []
    with client(address_of(proxy)) as r:
        conn_id = r.client_id()
        blocked_before = int(server.observer.info("clients")["blocked_clients"])

        def wait_for_a_list() -> None:
            try:
                r.blpop(["slow-close:nothing"], timeout=0)
                outcome.append(None)
            except BaseException as exc:  # judged in the test
                outcome.append(exc)

        waiter = threading.Thread(target=wait_for_a_list, daemon=True)
        waiter.start()
        try:
            server.wait_until(
                "blocking the BLPOP",
                lambda: int(server.observer.info("clients")["blocked_clients"]) > blocked_before,
            )
            killed = time.monotonic()
            assert server.observer.client_kill_filter(_id=conn_id) == 1
            waiter.join(WAIT)
            noticed = time.monotonic() - killed
        finally:
            with contextlib.suppress(redis.RedisError):
                server.observer.client_kill_filter(_id=conn_id)
            waiter.join(WAIT)
    assert not waiter.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], redis.ConnectionError)
    assert noticed >= delay * 0.99


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_a_stall_releases_the_server_connection_when_redis_py_gives_up(
    toxi: Toxiproxy, server: RedisServer, stream: str
) -> None:
    """``timeout`` 0 holds every connection; a client that times out and leaves
    takes the proxy's connection to redis-server with it."""
    clients = 4
    proxy = proxy_for(toxi, server, f"redis-stall-{stream}")
    proxy.add_toxic(type="timeout", stream=stream, attributes={"timeout": 0})
    baseline = server.clients()
    received = server.connections_received()
    for _ in range(clients):
        with client(address_of(proxy), socket_timeout=0.1) as r, pytest.raises(redis.TimeoutError):
            r.ping()
    server.wait_until(
        f"reached by {clients} connections",
        lambda: server.connections_received() - received == clients,
    )
    server.wait_until("back to its baseline of clients", lambda: server.clients() == baseline)
    assert set(proxy.toxics()) == {f"timeout_{stream}"}  # still stalled: the clients left


# -- the command line: sockshock proxy and redis-benchmark ---------------------------------

BENCHMARK = shutil.which("redis-benchmark")
REQUESTS = 2000
#: What ``sockshock proxy`` runs with; the benchmark's own options.
CASES = {
    "empty": ([], []),
    "idle model": (["--fault", "ResetAfter(1000000000000, direction='both')"], []),
    "latency": (["--fault", "Latency(0.005, direction='out')"], ["-P", "10"]),
}


def benchmark_results(output: str) -> dict[str, tuple[int, float]]:
    """Each test redis-benchmark ran: (requests completed, min latency in ms)."""
    results = {}
    names = re.findall(r"====== (\S+) ======", output)
    bodies = re.split(r"====== \S+ ======", output)[1:]
    for name, body in zip(names, bodies, strict=True):
        done = re.search(r"(\d+) requests completed", body)
        summary = re.search(
            r"latency summary \(msec\):\s+avg\s+min.*\n\s+([\d.]+)\s+([\d.]+)", body
        )
        assert done is not None, body
        assert summary is not None, body
        results[name] = (int(done.group(1)), float(summary.group(2)))
    return results


@pytest.mark.skipif(BENCHMARK is None, reason="redis-benchmark is not on PATH (redis-tools)")
@pytest.mark.parametrize("case", list(CASES))
def test_redis_benchmark_through_sockshock_proxy(
    server: RedisServer, tmp_path: Path, case: str
) -> None:
    faults, options = CASES[case]
    log = tmp_path / "events.jsonl"
    received = server.connections_received()
    with proxy_process(
        "--upstream", server.upstream, "--seed", "1", "--log", str(log), *faults
    ) as (proc, address):
        host, port = address.rsplit(":", 1)
        run = subprocess.run(
            [BENCHMARK or "redis-benchmark", "-h", host, "-p", port,
             "-n", str(REQUESTS), "-c", "10", "-t", "ping,get,set", *options],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
    assert run.returncode == 0, run.stderr
    assert proc.returncode == 0, err
    results = benchmark_results(run.stdout)
    assert set(results) == {"PING_INLINE", "PING_MBULK", "SET", "GET"}
    assert {name: done for name, (done, _) in results.items()} == dict.fromkeys(results, REQUESTS)
    connections = server.connections_received() - received
    assert connections >= 4 * 10  # ten clients per test, each through the proxy
    events = [json.loads(line) for line in log.read_text().splitlines()]
    if case == "latency":
        # Every connection redis-server took came through the proxy and was delayed.
        assert len({e["connection"] for e in events}) == connections
        assert f"{len(events)} fault(s) injected" in out
        assert min(low for _, low in results.values()) >= 5.0  # ms, every request
    else:
        assert events == []
        assert "0 fault(s) injected" in out

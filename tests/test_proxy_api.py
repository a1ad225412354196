"""``sockshock proxy --api``: toxiproxy's HTTP API, driven by toxiproxy's own
clients -- toxiproxy-python from PyPI, toxiproxy-node-client from npm (where node
and npm are installed) -- and each toxic's semantics against a real client.

One ``sockshock proxy --api 127.0.0.1:0`` process per test module (per xdist
worker); every test makes its own proxies and removes them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock.handlers import DatagramEcho, LineEcho

toxiproxy = pytest.importorskip("toxiproxy")
from toxiproxy import Toxiproxy  # noqa: E402
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists  # noqa: E402

WAIT = 5.0


# -- the API process ------------------------------------------------------------------


class Api:
    """A running ``sockshock proxy --api`` and its address."""

    def __init__(self, proc: subprocess.Popen[str], address: str, log: Path) -> None:
        self.proc = proc
        self.address = address
        self.url = f"http://{address}"
        self.log = log

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A raw request: (status, the decoded JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw = error.read()
            status = error.code
        return status, json.loads(raw) if raw.strip() else None


def start_api(*args: str, log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sockshock", "proxy", "--api", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(WAIT * 2)
    if not ready or not ready[0].strip():
        proc.kill()
        _, err = proc.communicate(timeout=WAIT)
        pytest.fail(f"sockshock proxy --api did not start: {err}")
    return proc, ready[0].strip()


def stop_api(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.communicate(timeout=WAIT * 2)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=WAIT)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    log = tmp_path_factory.mktemp("api") / "events.jsonl"
    proc, address = start_api("--log", str(log), log=log)
    try:
        yield Api(proc, address, log)
    finally:
        stop_api(proc)


@pytest.fixture
def toxi(api: Api) -> Iterator[Toxiproxy]:
    """toxiproxy-python, pointed at the API; every proxy removed afterwards."""
    host, port = api.address.rsplit(":", 1)
    server = Toxiproxy()
    server.update_api_consumer(host, int(port))
    try:
        yield server
    finally:
        server.destroy_all()


class Echo(LineEcho):
    """LineEcho that takes a reset (reset_peer's, a stopped proxy's) as the end."""

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            super().handle()


@pytest.fixture
def echo() -> Iterator[Any]:
    """A line echo server on loopback, in this process."""
    with sockshock.serving("ThreadingTCPServer", Echo) as srv:
        yield srv


def upstream_of(srv: Any) -> str:
    return f"{srv.address[0]}:{srv.address[1]}"


def address_of(proxy: Any) -> tuple[str, int]:
    host, port = proxy.listen.rsplit(":", 1)
    return host, int(port)


def connect(proxy: Any, timeout: float = WAIT) -> socket.socket:
    return socket.create_connection(address_of(proxy), timeout=timeout)


def round_trip(proxy: Any, line: bytes = b"ping\n") -> tuple[bytes, float]:
    with connect(proxy) as client:
        start = time.monotonic()
        client.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = client.recv(4096)
            if not chunk:
                break
            data += chunk
        return data, time.monotonic() - start


def read_until_eof(client: socket.socket) -> tuple[bytes, list[int]]:
    data = b""
    sizes = []
    while chunk := client.recv(65536):
        data += chunk
        sizes.append(len(chunk))
    return data, sizes


def events(api: Api, name: str) -> list[dict[str, Any]]:
    status, body = api.request("GET", f"/sockshock/events?proxy={name}")
    assert status == 200
    return list(body)


# -- the API as toxiproxy-python uses it ------------------------------------------------------


def test_toxiproxy_python_creates_lists_and_destroys_proxies(toxi: Toxiproxy, echo: Any) -> None:
    assert toxi.running()
    assert b"toxiproxy API" in toxi.version()
    proxy = toxi.create(upstream=upstream_of(echo), name="create", listen="127.0.0.1:0")
    assert proxy.enabled is True
    host, port = address_of(proxy)
    assert host == "127.0.0.1"
    assert port > 0
    assert round_trip(proxy)[0] == b"ping\n"
    listed = toxi.proxies()
    assert set(listed) == {"create"}
    assert listed["create"].upstream == upstream_of(echo)
    with pytest.raises(ProxyExists):
        toxi.create(upstream=upstream_of(echo), name="create")
    assert proxy.destroy()
    assert toxi.proxies() == {}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=WAIT).close()


def test_toxics_are_added_listed_and_removed(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="toxics")
    proxy.add_toxic(type="latency", attributes={"latency": 200})
    assert set(proxy.toxics()) == {"latency_downstream"}
    toxic = proxy.get_toxic("latency_downstream")
    assert toxic.type == "latency"
    assert toxic.stream == "downstream"
    assert toxic.attributes == {"latency": 200, "jitter": 0}
    assert toxic.toxicity == 1.0
    assert round_trip(proxy)[1] >= 0.2
    with pytest.raises(ProxyExists):  # toxiproxy-python's name for any 409
        proxy.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latencyy", name="typo")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", stream="sideways", name="bad stream")
    assert proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    assert round_trip(proxy)[1] < 0.2
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_down_refuses_connections_and_keeps_the_port(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="down")
    client = connect(proxy)
    client.sendall(b"before\n")
    assert client.recv(100) == b"before\n"
    with proxy.down():
        assert toxi.get_proxy("down").enabled is False
        assert client.recv(100) == b""  # open connections are closed (toxiproxy's)
        with pytest.raises(ConnectionRefusedError):
            connect(proxy).close()
        taken = socket.socket()
        with pytest.raises(OSError, match="in use"):
            taken.bind(address_of(proxy))  # the port is still the proxy's
        taken.close()
    client.close()
    assert toxi.get_proxy("down").enabled is True
    assert round_trip(proxy)[0] == b"ping\n"  # the same port again


def test_reset_enables_every_proxy_and_removes_every_toxic(toxi: Toxiproxy, echo: Any) -> None:
    first = toxi.create(upstream=upstream_of(echo), name="reset1")
    second = toxi.create(upstream=upstream_of(echo), name="reset2")
    first.add_toxic(type="timeout", attributes={"timeout": 0})
    second.disable()
    assert toxi.reset()
    assert toxi.get_proxy("reset2").enabled is True
    assert first.toxics() == {}
    assert round_trip(first)[0] == round_trip(second)[0] == b"ping\n"


def test_populate_keeps_what_is_unchanged_and_replaces_the_rest(toxi: Toxiproxy, echo: Any) -> None:
    (kept,) = toxi.populate(
        [{"name": "pop", "upstream": upstream_of(echo), "listen": "127.0.0.1:0"}]
    )
    kept_port = address_of(kept)[1]
    again = toxi.populate([{"name": "pop", "upstream": upstream_of(echo), "listen": kept.listen}])
    assert again == []  # toxiproxy-python returns only what it created
    assert address_of(toxi.get_proxy("pop"))[1] == kept_port
    assert round_trip(toxi.get_proxy("pop"))[0] == b"ping\n"


# -- status codes and shapes, as toxiproxy's api.go has them --------------------------------


def test_status_codes_and_json_shapes(api: Api, echo: Any) -> None:
    assert api.request("GET", "/proxies/nobody") == (
        404,
        {"error": "proxy not found", "status": 404},
    )
    status, created = api.request(
        "POST", "/proxies", {"name": "shapes", "upstream": upstream_of(echo)}
    )
    try:
        assert status == 201
        assert set(created) == {"name", "listen", "upstream", "enabled", "toxics", "sockshock"}
        assert created["toxics"] == []
        assert created["enabled"] is True
        assert api.request("POST", "/proxies", {"name": "shapes", "upstream": "x"})[0] == 409
        assert api.request("POST", "/proxies", {"upstream": upstream_of(echo)}) == (
            400,
            {"error": "missing required field: name", "status": 400},
        )
        assert api.request("POST", "/proxies", {"name": "x"})[0] == 400
        status, body = api.request("POST", "/proxies", {"name": "far", "upstream": "10.0.0.1:80"})
        assert status == 400
        assert "loopback" in body["error"]
        status, toxic = api.request(
            "POST", "/proxies/shapes/toxics", {"type": "bandwidth", "attributes": {"rate": 5}}
        )
        assert status == 200
        assert toxic == {
            "name": "bandwidth_downstream",
            "type": "bandwidth",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"rate": 5},
        }
        status, updated = api.request(
            "POST", "/proxies/shapes/toxics/bandwidth_downstream", {"attributes": {"rate": 7}}
        )
        assert status == 200
        assert updated["attributes"] == {"rate": 7}
        assert api.request("GET", "/proxies/shapes/toxics/nothing")[0] == 404
        assert api.request("DELETE", "/proxies/shapes/toxics/nothing")[0] == 404
        status, body = api.request(
            "POST", "/proxies/shapes/toxics", {"type": "latency", "attributes": {"latency": -1}}
        )
        assert status == 400
        assert "negative" in body["error"]
        assert api.request("POST", "/proxies/shapes/toxics", "not an object")[0] == 400
        status, shown = api.request("GET", "/proxies/shapes")
        assert shown["sockshock"]["models"] == [
            "Bandwidth(bytes_per_second=7000.0, direction='out')"
        ]
        assert api.request("PATCH", "/proxies/shapes", {"enabled": False})[1]["enabled"] is False
        assert api.request("DELETE", "/proxies/shapes/toxics/bandwidth_downstream") == (204, None)
        assert api.request("GET", "/nowhere")[0] == 404
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            status, body = api.request(
                "POST",
                "/proxies",
                {"name": "busy", "upstream": upstream_of(echo), "listen": f"127.0.0.1:{port}"},
            )
        assert status == 500
        assert f"cannot listen on 127.0.0.1:{port}: it is in use" in body["error"]
    finally:
        assert api.request("DELETE", "/proxies/shapes") == (204, None)


def test_a_proxy_moves_when_its_upstream_changes(api: Api, echo: Any) -> None:
    with sockshock.serving("ThreadingTCPServer", Echo) as other:
        status, _created = api.request(
            "POST", "/proxies", {"name": "move", "upstream": upstream_of(echo)}
        )
        try:
            status, moved = api.request("POST", "/proxies/move", {"upstream": upstream_of(other)})
            assert status == 200
            assert moved["upstream"] == upstream_of(other)
            host, port = moved["listen"].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=WAIT) as client:
                client.sendall(b"moved\n")
                assert client.recv(100) == b"moved\n"
            assert other.connections_served if hasattr(other, "connections_served") else True
        finally:
            api.request("DELETE", "/proxies/move")


def test_sockshock_extensions_udp_unix_seed_and_any_model(api: Api, tmp_path: Path) -> None:
    with sockshock.serving("UDPServer", DatagramEcho) as udp:
        status, created = api.request(
            "POST",
            "/proxies",
            {
                "name": "udp",
                "upstream": upstream_of(udp),
                "sockshock": {"transport": "udp", "seed": 7},
            },
        )
        try:
            assert status == 201
            assert created["sockshock"]["seed"] == 7
            status, _ = api.request(
                "POST",
                "/proxies/udp/toxics",
                {"type": "sockshock", "attributes": {"model": "DuplicateDatagrams(1)"}},
            )
            assert status == 200
            host, port = created["listen"].rsplit(":", 1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(WAIT)
                client.connect((host, int(port)))
                client.send(b"twice")
                assert client.recv(100) == client.recv(100) == b"twice"
            assert [e["model"] for e in events(api, "udp")] == ["DuplicateDatagrams()"]
        finally:
            api.request("DELETE", "/proxies/udp")
    with sockshock.serving("ThreadingUnixStreamServer", Echo) as unix:
        listen = str(tmp_path / "proxy.sock")
        status, created = api.request(
            "POST",
            "/proxies",
            {
                "name": "unix",
                "upstream": unix.address,
                "listen": listen,
                "sockshock": {"transport": "unix"},
            },
        )
        try:
            assert status == 201
            assert created["listen"] == listen
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(WAIT)
                client.connect(listen)
                client.sendall(b"unix\n")
                assert client.recv(100) == b"unix\n"
        finally:
            api.request("DELETE", "/proxies/unix")


# -- each toxic's semantics, against a real client --------------------------------------------


def test_latency_delays_each_request_from_its_arrival_not_behind_the_others(
    toxi: Toxiproxy, echo: Any
) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="latency")
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 300})
    with connect(proxy) as client:
        sent = []
        for i in range(5):  # pipelined, 40 ms apart: toxiproxy answers all in ~0.3 + 0.16 s
            sent.append(time.monotonic())
            client.sendall(b"%d\n" % i)
            time.sleep(0.04)
        arrived = []
        data = b""
        while len(arrived) < 5:
            chunk = client.recv(100)
            assert chunk
            data += chunk
            arrived.extend([time.monotonic()] * chunk.count(b"\n"))
    assert data == b"0\n1\n2\n3\n4\n"
    delays = [a - s for a, s in zip(arrived, sent, strict=True)]
    assert min(delays) >= 0.29
    # Each from its own arrival: the last one is not 5 x 0.3 - 0.16 s late.
    assert max(delays) < 2 * 0.3


def test_latency_jitter_is_plus_or_minus(toxi: Toxiproxy, echo: Any, api: Api) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="jitter")
    proxy.add_toxic(type="latency", attributes={"latency": 20, "jitter": 15})
    with connect(proxy) as client:
        for _ in range(20):
            client.sendall(b"j\n")
            assert client.recv(10) == b"j\n"
    delays = [e["decision"].get("delay", 0.0) for e in events(api, "jitter")]
    assert len(delays) >= 15
    assert all(0.005 <= d <= 0.035 for d in delays)
    assert min(delays) < 0.0175  # below 20 ms
    assert max(delays) > 0.0225  # and above


def test_a_bulk_transfer_under_latency_is_not_capped_by_it(toxi: Toxiproxy) -> None:
    got = []

    class Sink(ss.BaseRequestHandler):
        def handle(self) -> None:
            total = 0
            while chunk := self.request.recv(1 << 20):
                total += len(chunk)
            got.append(total)

    with sockshock.serving("ThreadingTCPServer", Sink) as sink:
        proxy = toxi.create(upstream=upstream_of(sink), name="bulk")
        proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 50})
        size = 40 * 1024 * 1024
        block = b"x" * (1 << 20)
        with connect(proxy, timeout=30) as client:
            start = time.monotonic()
            for _ in range(size // len(block)):
                client.sendall(block)
            client.shutdown(socket.SHUT_WR)
            assert client.recv(1) == b""
            elapsed = time.monotonic() - start
    assert got == [size]
    # One chunk per 50 ms would take 40 MiB / 256 KiB x 50 ms = 8 s; in flight
    # together they take a fraction of it.
    assert elapsed < 4.0


def test_bandwidth_limits_the_rate(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="bandwidth")
    proxy.add_toxic(type="bandwidth", attributes={"rate": 100})  # 100 KB/s back
    line = b"b" * 49_999 + b"\n"
    with connect(proxy) as client:
        start = time.monotonic()
        client.sendall(line)
        data = b""
        while len(data) < len(line):
            data += client.recv(65536)
        elapsed = time.monotonic() - start
    assert data == line
    assert 0.4 <= elapsed < 2.0  # 50 KB at 100 KB/s


def test_slow_close_delays_the_end_of_file_only(toxi: Toxiproxy) -> None:
    class ReplyAndClose(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"bye\n")

    with sockshock.serving("ThreadingTCPServer", ReplyAndClose) as srv:
        proxy = toxi.create(upstream=upstream_of(srv), name="slow_close")
        proxy.add_toxic(type="slow_close", attributes={"delay": 600})
        with connect(proxy) as client:
            start = time.monotonic()
            assert client.recv(100) == b"bye\n"
            data_at = time.monotonic() - start
            assert client.recv(100) == b""
            eof_at = time.monotonic() - start
    assert data_at < 0.5  # the data is not held back
    assert eof_at >= 0.59


def test_timeout_stops_data_and_closes_after_the_timeout(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="timeout")
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 300})
    with connect(proxy) as client:
        start = time.monotonic()
        client.sendall(b"never answered\n")
        assert client.recv(100) == b""  # closed, nothing came back
        elapsed = time.monotonic() - start
    assert 0.29 <= elapsed < 2.0
    proxy.destroy_toxic("timeout_upstream")
    assert round_trip(proxy)[0] == b"ping\n"


def test_timeout_zero_holds_until_the_toxic_is_removed(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="timeout0")
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    with connect(proxy, timeout=0.3) as client:
        client.sendall(b"dropped\n")
        with pytest.raises(TimeoutError):
            client.recv(100)
        proxy.destroy_toxic("timeout_upstream")  # data flows again (what came is lost)
        client.settimeout(WAIT)
        client.sendall(b"after\n")
        assert client.recv(100) == b"after\n"


def test_reset_peer_resets_after_its_timeout(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="reset_peer")
    proxy.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 200})
    with connect(proxy) as client:
        start = time.monotonic()
        client.sendall(b"hello\n")
        with pytest.raises(ConnectionResetError):
            client.recv(100)
        elapsed = time.monotonic() - start
    assert 0.19 <= elapsed < 2.0


def test_limit_data_in_both_directions(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="limit_data")
    proxy.add_toxic(type="limit_data", attributes={"bytes": 7})
    with connect(proxy) as client:
        client.sendall(b"0123456789\n")
        assert read_until_eof(client)[0] == b"0123456"  # the reply cut after 7 bytes
    proxy.destroy_toxic("limit_data_downstream")
    got = []

    class Count(ss.BaseRequestHandler):
        def handle(self) -> None:
            got.append(read_until_eof(self.request)[0])

    with sockshock.serving("ThreadingTCPServer", Count) as srv:
        up = toxi.create(upstream=upstream_of(srv), name="limit_up")
        up.add_toxic(type="limit_data", stream="upstream", attributes={"bytes": 4})
        with connect(up) as client:
            client.sendall(b"abcdefgh")
            assert client.recv(10) == b""  # the server saw the end, closed: so does the client
    assert got == [b"abcd"]


def test_slicer_cuts_the_reply_in_small_pieces(toxi: Toxiproxy, echo: Any, api: Api) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="slicer")
    proxy.add_toxic(type="slicer", attributes={"average_size": 2, "size_variation": 1, "delay": 0})
    line = b"s" * 40 + b"\n"
    assert round_trip(proxy, line)[0] == line
    limits = [e["decision"]["limit"] for e in events(api, "slicer")]
    assert len(limits) >= len(line) // 3
    assert max(limits) <= 3
    # moves all that is left changes nothing and is not logged)


def test_toxicity_is_drawn_per_connection(toxi: Toxiproxy, echo: Any) -> None:
    proxy = toxi.create(upstream=upstream_of(echo), name="toxicity")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0}, toxicity=0.0)
    assert round_trip(proxy)[0] == b"ping\n"  # never applies
    proxy.destroy_toxic("timeout_downstream")
    proxy.add_toxic(type="latency", attributes={"latency": 150}, toxicity=1.0)
    assert round_trip(proxy)[1] >= 0.15


def test_stall_releases_the_upstream_when_its_client_leaves(toxi: Toxiproxy) -> None:
    open_now = []
    lock = threading.Lock()
    left = threading.Event()

    class Hold(ss.BaseRequestHandler):
        def handle(self) -> None:
            with lock:
                open_now.append(1)
            try:
                read_until_eof(self.request)
            finally:
                with lock:
                    open_now.pop()
                    if not open_now:
                        left.set()

    with sockshock.serving("ThreadingTCPServer", Hold) as srv:
        proxy = toxi.create(upstream=upstream_of(srv), name="stall")
        proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
        clients = [connect(proxy) for _ in range(20)]
        for client in clients:
            client.sendall(b"hello")
        deadline = time.monotonic() + WAIT
        while len(open_now) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(open_now) == 20
        for client in clients:
            client.close()
        assert left.wait(WAIT)  # every upstream connection ended with its client


# -- the command line around the API ------------------------------------------------------


def test_config_file_at_start_and_the_log_on_sighup(tmp_path: Path, echo: Any) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [{"name": "from-config", "listen": "127.0.0.1:0", "upstream": upstream_of(echo)}]
        )
    )
    log = tmp_path / "events.jsonl"
    proc, address = start_api("--config", str(config), "--log", str(log), "--seed", "5", log=log)
    try:
        api = Api(proc, address, log)
        status, shown = api.request("GET", "/proxies/from-config")
        assert status == 200
        assert shown["sockshock"]["seed"] == 5
        api.request(
            "POST", "/proxies/from-config/toxics", {"type": "latency", "attributes": {"latency": 1}}
        )
        host, port = shown["listen"].rsplit(":", 1)
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=WAIT) as client:
                client.sendall(b"x\n")
                assert client.recv(10) == b"x\n"
        deadline = time.monotonic() + WAIT
        while log.read_text().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # streamed as they happen, before any exit
        assert log.read_text().count("\n") == 3
    finally:
        out, err = stop_api(proc, signal.SIGHUP)
    assert proc.returncode == 0, err
    assert "3 fault(s) injected" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["proxy"] for r in records} == {"from-config"}
    assert all(r["decision"] == {"delay": 0.001} for r in records)


def test_a_browser_is_turned_away_as_toxiproxy_does(api: Api) -> None:
    req = urllib.request.Request(api.url + "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=WAIT)
    assert refused.value.code == 403
    refused.value.close()


def test_a_bad_config_is_one_error(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "no-upstream"}]))
    proc = subprocess.run(
        [sys.executable, "-m", "sockshock", "proxy", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2  # a usage error: the file is bad input
    assert proc.stderr.strip().splitlines() == [
        f"sockshock proxy: --config {config}: missing required field: upstream at proxy 1"
    ]


# -- toxiproxy-node-client, where node and npm are installed ----------------------------------

NODE_CLIENT = "toxiproxy-node-client@4"
NODE_SCRIPT = r"""
const { Toxiproxy } = require("toxiproxy-node-client");
const net = require("net");
const [api, upstream] = process.argv.slice(2);

function roundTrip(listen) {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, host, () => socket.write("node\n"));
    socket.setTimeout(5000, () => reject(new Error("timeout")));
    socket.on("data", (data) => { socket.end(); resolve([data.toString(), Date.now() - started]); });
    socket.on("error", reject);
  });
}

(async () => {
  const toxiproxy = new Toxiproxy(api);
  const out = {};
  out.version = await toxiproxy.getVersion();
  const proxy = await toxiproxy.createProxy({ name: "node", listen: "127.0.0.1:0", upstream });
  out.created = proxy.toJson();
  out.plain = await roundTrip(proxy.listen);
  const toxic = await proxy.addToxic({ type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 200 } });
  out.toxic = toxic.toJson();
  out.slow = await roundTrip(proxy.listen);
  const updated = await toxic.update({ attributes: { latency: 10 } });
  out.updated = updated.toJson();
  await toxic.remove();
  out.fetched = (await toxiproxy.get("node")).toJson();
  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream });
  out.disabled = disabled.toJson();
  try { await roundTrip(proxy.listen); out.refused = false; } catch (e) { out.refused = e.code; }
  await toxiproxy.reset();
  out.after_reset = await roundTrip(proxy.listen);
  out.all = Object.keys(await toxiproxy.getAll());
  const populated = await toxiproxy.populate([{ name: "node2", listen: "127.0.0.1:0", upstream }]);
  out.populated = Object.keys(populated);
  await proxy.remove();
  await populated.node2.remove();
  out.left = Object.keys(await toxiproxy.getAll());
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def node_client_dir() -> Path:
    """toxiproxy-node-client installed once per machine (npm, bounded in time)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    where = Path(tempfile.gettempdir()) / "sockshock-test-node-client"
    where.mkdir(exist_ok=True)
    with _locked(where / ".lock"):
        if not (where / "node_modules" / "toxiproxy-node-client" / "package.json").exists():
            try:
                proc = subprocess.run(
                    [
                        "npm",
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--prefix",
                        str(where),
                        NODE_CLIENT,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=180,
                )
            except subprocess.TimeoutExpired:
                pytest.skip("npm install toxiproxy-node-client took over 180 s")
            if proc.returncode:
                pytest.skip(f"npm install toxiproxy-node-client failed: {proc.stderr[-500:]}")
    return where


def test_toxiproxy_node_client_drives_the_api(api: Api, echo: Any, tmp_path: Path) -> None:
    where = node_client_dir()
    script = tmp_path / "drive.js"
    script.write_text(NODE_SCRIPT)
    env = {**os.environ, "NODE_PATH": str(where / "node_modules")}
    proc = subprocess.run(
        ["node", str(script), api.url, upstream_of(echo)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "toxiproxy API" in out["version"]
    assert out["created"]["enabled"] is True
    assert out["created"]["upstream"] == upstream_of(echo)
    assert out["plain"][0] == "node\n"
    assert out["toxic"] == {
        "attributes": {"latency": 200, "jitter": 0},
        "name": "latency_downstream",
        "stream": "downstream",
        "toxicity": 1,
        "type": "latency",
    }
    assert out["slow"][0] == "node\n"
    assert out["slow"][1] >= 195
    assert out["updated"]["attributes"]["latency"] == 10
    assert out["disabled"]["enabled"] is False
    assert out["refused"] == "ECONNREFUSED"
    assert out["after_reset"][0] == "node\n"
    assert out["all"] == ["node"]
    assert out["populated"] == ["node2"]
    assert out["left"] == []


# -- the toxic-to-model table (docs/reference/proxy.md) ---------------------------------------------

TABLE = [
    (
        {"type": "latency", "attributes": {"latency": 100, "jitter": 20}},
        "Latency(seconds=0.1, jitter=0.02, direction='out')",
    ),
    (
        {"type": "latency", "stream": "upstream", "attributes": {"latency": 5}},
        "Latency(seconds=0.005)",
    ),
    (
        {"type": "bandwidth", "attributes": {"rate": 64}},
        "Bandwidth(bytes_per_second=64000.0, direction='out')",
    ),
    (
        {"type": "slow_close", "attributes": {"delay": 250}},
        "Latency(seconds=0.25, direction='out', close_only=True)",
    ),
    ({"type": "timeout", "attributes": {"timeout": 300}}, "Stall(direction='out', timeout=0.3)"),
    ({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}, "Stall()"),
    (
        {"type": "reset_peer", "attributes": {"timeout": 50}},
        "ResetAfter(direction='out', delay=0.05)",
    ),
    (
        {"type": "slicer", "attributes": {"average_size": 4, "size_variation": 2}},
        "PartialWrites(max_chunk=6)",
    ),
    (
        {"type": "slicer", "stream": "upstream", "attributes": {"average_size": 4, "delay": 1000}},
        "SlowClient(chunk=4, pause=0.001)",
    ),
    ({"type": "limit_data", "attributes": {"bytes": 9}}, "EOFAfter(nbytes=9, direction='out')"),
    (
        {"type": "limit_data", "toxicity": 0.5, "stream": "upstream", "attributes": {"bytes": 9}},
        "EOFAfter(probability=0.5, per='connection', nbytes=9)",
    ),
    (
        {"type": "sockshock", "attributes": {"models": ["DropDatagrams(0.1)", "PartialReads(2)"]}},
        "DropDatagrams(probability=0.1) PartialReads(max_chunk=2)",
    ),
]


@pytest.mark.parametrize(("body", "models"), TABLE, ids=[repr(b) for b, _ in TABLE])
def test_each_toxic_becomes_the_documented_models(body: dict[str, Any], models: str) -> None:
    from sockshock._proxy._toxics import check_toxic, models_of

    assert " ".join(repr(m) for m in models_of(check_toxic(body))) == models

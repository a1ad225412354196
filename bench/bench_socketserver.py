"""Benchmark sockshock.socketserver against the standard library, in one run.

    python bench/bench_socketserver.py            # the full run (about a minute)
    python bench/bench_socketserver.py --quick    # a smoke run (a few seconds)

Each figure is measured for both modules in the same process, in alternating
rounds (stdlib, ours, stdlib, ours...), and the median round of each is compared, so
that drift of the machine affects both alike. The load comes from a separate client
process (``bench/_client.py``), so that clients and servers do not share a GIL.
Prints a table of ratios against the targets of issue 3; exits 1 if a target is
missed.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import socketserver as stdlib
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sockshock.socketserver as ours
from _common import (
    NOISE,
    LoadClient,
    Running,
    alternate,
    datagram_echo,
    echo_handler,
    ratios,
    verdict,
)

MODULES = {"stdlib": stdlib, "sockshock": ours}


def wait_until_waiting(thread: threading.Thread, bound: float = 2.0) -> None:
    """Return once ``thread`` is blocked in a selector's select(): the server is idle.

    This is a benchmark, not a test: it looks at the thread's current frame."""
    deadline = time.perf_counter() + bound
    while time.perf_counter() < deadline:
        frame = sys._current_frames().get(thread.ident or -1)
        if (
            frame is not None
            and frame.f_code.co_name == "select"
            and frame.f_code.co_filename.endswith("selectors.py")
        ):
            return
        time.sleep(0.0002)


def cycle_ms(module: Any, rounds: int) -> list[float]:
    """ms taken by each of ``rounds`` cycles of: create, serve in a thread, one
    request, shutdown(), server_close().

    As in a test's teardown, shutdown() comes once the request is over: after its
    handler returned and the serving loop waits for the next event.
    """
    done = threading.Event()

    class Echo(echo_handler(module)):  # type: ignore[misc]
        def finish(self) -> None:
            super().finish()
            done.set()

    times = []
    for _ in range(rounds):
        done.clear()
        start = time.perf_counter()
        server = module.ThreadingTCPServer(("127.0.0.1", 0), Echo)
        running = Running(server)
        with running:
            with socket.create_connection(server.server_address) as client:
                client.sendall(b"x\n")
                client.recv(10)
            done.wait(5)
            wait_until_waiting(running.thread)
        times.append((time.perf_counter() - start) * 1000)
    return times


def connections_per_second(client: LoadClient, cls: Any, module: Any, count: int) -> float:
    return client.rate("connections", cls(("127.0.0.1", 0), echo_handler(module)), count)


def round_trips_per_second(client: LoadClient, module: Any, count: int) -> float:
    server = module.ThreadingTCPServer(("127.0.0.1", 0), echo_handler(module))
    return client.rate("round_trips", server, count)


def datagrams_per_second(client: LoadClient, module: Any, count: int) -> float:
    server = module.UDPServer(("127.0.0.1", 0), datagram_echo(module))
    return client.rate("datagrams", server, count)


def burst(module: Any, count: int, timeout: float) -> tuple[float, int]:
    """(p99 connect latency in ms, connects not done within ``timeout``) for ``count``
    simultaneous connects to a ThreadingTCPServer."""
    server = module.ThreadingTCPServer(("127.0.0.1", 0), echo_handler(module))
    latencies: list[float] = []
    clients = []
    with Running(server), selectors.DefaultSelector() as selector:
        start = time.perf_counter()
        for _ in range(count):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(server.server_address)
            selector.register(client, selectors.EVENT_WRITE)
            clients.append(client)
        deadline = start + timeout
        while len(latencies) < count and (left := deadline - time.perf_counter()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
                latencies.append(time.perf_counter() - start)
        for client in clients:
            client.close()
    failures = count - len(latencies)
    latencies += [timeout] * failures
    latencies.sort()
    return latencies[int(0.99 * (count - 1))] * 1000, failures


def per_round(measure: Callable[[Any], float], rounds: int) -> dict[str, list[float]]:
    """Each module's figure per round, alternating which module goes first
    (stdlib-ours, ours-stdlib, ...)."""
    return alternate(
        {name: (lambda module=module: measure(module)) for name, module in MODULES.items()}, rounds
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    args = parser.parse_args()
    n = 200 if args.quick else 3000
    rounds = 1 if args.quick else 7
    client = LoadClient()
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(
        name: str,
        unit: str,
        values: dict[str, float],
        target: float,
        higher: bool = True,
        key: tuple[str, str] = ("sockshock", "stdlib"),
        per_round: dict[str, list[float]] | None = None,
    ) -> None:
        """A figure; with ``per_round`` (rows where both modules run the same code
        path) judged by the median of per-round ratios within the noise band."""
        a, b = values[key[0]], values[key[1]]
        if per_round is not None:
            ratio = statistics.median(ratios(per_round, *key))
            text, ok = verdict(ratio, target)
            ok_text = "yes" if text == "met" else ("noise" if ok else "NO")
        else:
            ratio = a / b if higher else b / a
            ok_text = "yes" if ratio >= target else "NO"
        rows.append(
            (
                name,
                f"{a:,.1f} {unit}",
                f"{b:,.1f} {unit}",
                f"{ratio:,.2f}x",
                f">= {target:g}x",
                ok_text,
            )
        )
        print(f"  measured {name}", file=sys.stderr)

    def equal_path_row(name: str, measure: Callable[[Any], float]) -> None:
        results = per_round(measure, rounds)
        row(
            name,
            "/s",
            {k: statistics.median(v) for k, v in results.items()},
            1.0,
            per_round=results,
        )

    cycles: dict[str, list[float]] = {name: [] for name in MODULES}
    for _ in range(rounds):
        for name, module in MODULES.items():
            cycles[name] += cycle_ms(module, 3)
    cycle = {name: statistics.median(values) for name, values in cycles.items()}
    row("start/request/shutdown cycle (median)", "ms", cycle, 100, higher=False)
    equal_path_row(
        "new connections/s (ThreadingTCPServer)",
        lambda m: connections_per_second(client, m.ThreadingTCPServer, m, n),
    )
    equal_path_row(
        "round trips/s (ThreadingTCPServer)", lambda m: round_trips_per_second(client, m, n * 3)
    )
    equal_path_row(
        "datagram round trips/s (UDPServer)", lambda m: datagrams_per_second(client, m, n * 3)
    )
    pool_rates: dict[str, list[float]] = {"pool": [], "threading": []}
    for _ in range(rounds):
        pool_rates["pool"].append(connections_per_second(client, ours.ThreadPoolTCPServer, ours, n))
        pool_rates["threading"].append(
            connections_per_second(client, ours.ThreadingTCPServer, ours, n)
        )
    client.close()
    pool = {name: statistics.median(values) for name, values in pool_rates.items()}
    row("pool vs ThreadingTCPServer, connections/s", "/s", pool, 1.5, key=("pool", "threading"))

    burst_count = 100 if args.quick else 200
    bursts = {
        name: burst(module, burst_count, 3.0 if args.quick else 10.0)
        for name, module in MODULES.items()
    }
    p99 = {name: value[0] for name, value in bursts.items()}
    row(f"burst of {burst_count} connects: p99 latency", "ms", p99, 1.0, higher=False)

    width = max(len(r[0]) for r in rows)
    print(
        f"\n{'figure':<{width}}  {'sockshock':>16}  {'stdlib':>16}  {'ratio':>9}  {'target':>8}  ok"
    )
    for name, a, b, ratio, target, ok in rows:
        if name.startswith("pool vs"):
            a, b = f"{a} pool", f"{b} thr"
        print(f"{name:<{width}}  {a:>16}  {b:>16}  {ratio:>9}  {target:>8}  {ok}")
    print(
        f"burst failures (not connected within the bound): "
        f"sockshock {bursts['sockshock'][1]}, stdlib {bursts['stdlib'][1]} "
        f"of {burst_count}"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    print(
        f"ok: 'noise' = the median of per-round ratios is short of the target by less "
        f"than the machine's +-{NOISE:.0%} noise (the same code path in both modules)"
    )
    return 0 if all(r[5] != "NO" for r in rows) and bursts["sockshock"][1] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

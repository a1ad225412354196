"""Benchmark the fault layer, in one run.

    python bench/bench_faults.py            # about 20 seconds
    python bench/bench_faults.py --quick    # a smoke run

* Round trips per second on ThreadingTCPServer with ``FaultLayer()`` (an empty
  plan) against the default layer (plain sockets): goal >= 0.9x; with a model that
  never fires (``Latency(0)``, ``EOFAfter(2**60)``) against the empty plan: >= 0.85x;
  with ``PartialReads(1000)`` deciding every read: >= 0.6x. Contenders alternate
  round by round; each figure is the median of per-round ratios, judged with a
  +-25% noise band; the load comes from a separate client process.
* The cost of one wrapped ``recv`` (in-process, no server): plain socket, empty
  plan, an active model that never fires, and PartialReads deciding every call.
* Virtual clock: a slow client with 60 s of injected delay against a handler
  with a 5 s timeout, timed on the wall clock: target < 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sockshock
import sockshock.socketserver as ss
from _common import LoadClient, alternate, echo_handler, ratios, verdict
from sockshock import faults as F


def round_trips(client: LoadClient, layer: Any, count: int) -> float:
    server = ss.ThreadingTCPServer(("127.0.0.1", 0), echo_handler(ss), socket_layer=layer)
    return client.rate("round_trips", server, count)


def recv_cost_ns(layer: Any, count: int) -> float:
    """Nanoseconds per send+recv of one byte on a loopback connection."""
    listener = layer.socket(socket.AF_INET, socket.SOCK_STREAM) if layer else socket.socket()
    with listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as peer:
            conn, _ = listener.accept()
            with conn:
                start = time.perf_counter_ns()
                for _ in range(count):
                    peer.send(b"x")
                    conn.recv(1)
                return (time.perf_counter_ns() - start) / count


def virtual_slow_client() -> tuple[float, Any]:
    outcome: list[Any] = []

    class Line(ss.StreamRequestHandler):
        timeout = 5.0

        def handle(self) -> None:
            try:
                self.rfile.readline()
            except TimeoutError:
                outcome.append(self.server.socket_layer.clock.now())

    start = time.perf_counter()
    with (
        sockshock.serving(
            "ThreadingTCPServer",
            Line,
            clock="virtual",
            seed=0,
            faults=[F.SlowClient(chunk=1, pause=60.0)],
        ) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"a request that never completes in time\n")
        client.recv(1)
    return time.perf_counter() - start, outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n = (1, 2000) if args.quick else (7, 20000)
    ok = True

    client = LoadClient()
    layers: dict[str, Callable[[], Any]] = {
        "default layer": lambda: None,
        "FaultLayer() (empty plan)": sockshock.layer.FaultLayer,
        "Latency(0): never fires": lambda: sockshock.layer.FaultLayer([F.Latency(0)]),
        "EOFAfter(2**60): never fires": lambda: sockshock.layer.FaultLayer([F.EOFAfter(2**60)]),
        "PartialReads(1000): decides": lambda: sockshock.layer.FaultLayer([F.PartialReads(1000)]),
    }
    results = alternate(
        {name: (lambda make=make: round_trips(client, make(), n)) for name, make in layers.items()},
        rounds,
    )
    client.close()
    print("round trips/s on one connection, ThreadingTCPServer (median of per-round ratios):")
    goals = {
        "FaultLayer() (empty plan)": ("default layer", 0.9),
        "Latency(0): never fires": ("FaultLayer() (empty plan)", 0.85),
        "EOFAfter(2**60): never fires": ("FaultLayer() (empty plan)", 0.85),
        "PartialReads(1000): decides": ("FaultLayer() (empty plan)", 0.6),
    }
    print(f"  {'default layer':<30} {statistics.median(results['default layer']):>9,.0f}/s")
    for name, (anchor, goal) in goals.items():
        ratio = statistics.median(ratios(results, name, anchor))
        text, met = verdict(ratio, goal)
        ok &= met
        print(
            f"  {name:<30} {statistics.median(results[name]):>9,.0f}/s  {ratio:.2f}x of "
            f"{anchor} (goal >= {goal}x): {text}"
        )

    count = 2000 if args.quick else 50000
    in_process = {
        "plain socket": None,
        "FaultLayer() (empty plan)": sockshock.layer.FaultLayer(),
        "active model, never fires": sockshock.layer.FaultLayer([F.Latency(0.0)]),
        "PartialReads(1000), decides": sockshock.layer.FaultLayer([F.PartialReads(1000)]),
    }
    costs = {
        name: min(recv_cost_ns(layer, count) for _ in range(3))
        for name, layer in in_process.items()
    }
    plain = costs["plain socket"]
    print("\ncost of one 1-byte send+recv round on a loopback connection:")
    for name, cost in costs.items():
        extra = "" if name == "plain socket" else f" (+{cost - plain:,.0f} ns)"
        print(f"  {name:<30} {cost:8,.0f} ns{extra}")

    seconds, outcome = virtual_slow_client()
    ok &= seconds < 0.1 and outcome == [5.0]
    print(
        f"\nvirtual clock: 60 s slow client vs 5 s timeout -> TimeoutError at virtual "
        f"t={outcome[0] if outcome else '?'} s in {seconds * 1000:.1f} ms wall "
        f"(target < 100 ms) {'yes' if seconds < 0.1 else 'NO'}"
    )
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

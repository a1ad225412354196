"""What ``sockshock.serving()`` costs per server, against the same server by hand.

    python bench/bench_serving.py            # about 30 seconds
    python bench/bench_serving.py --quick    # a smoke run

* A cycle -- start a ThreadingTCPServer, one round trip, stop -- through
  ``serving()`` against the same by hand (``serve_forever`` in a thread,
  ``shutdown()``, ``server_close()``, join). Goal: at most 1.3x.
* A fresh server per hypothesis example (an echo property): examples/s through
  ``serving()``, against the same server started by hand per example. Goal: at least
  500 examples/s.
Contenders alternate round by round; each figure is the median of the per-round
ratios, judged with a +-25% noise band (machines vary that much between runs).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sockshock
from _common import alternate, ratios, verdict
from sockshock import socketserver as ss
from sockshock.handlers import LineEcho


def round_trip(address: object, payload: bytes = b"ping\n") -> None:
    with socket.create_connection(address, timeout=5) as client:  # type: ignore[arg-type]
        client.sendall(payload)
        reply = b""
        while not reply.endswith(b"\n"):
            reply += client.recv(4096)
        assert reply == payload


def by_hand(payload: bytes = b"ping\n") -> None:
    server = ss.ThreadingTCPServer(("127.0.0.1", 0), LineEcho)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    round_trip(server.server_address, payload)
    server.shutdown()
    server.server_close()
    thread.join()


def through_serving(payload: bytes = b"ping\n") -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        round_trip(srv.address, payload)


def ms_per_cycle(cycle: Callable[[], None], count: int) -> Callable[[], float]:
    def measure() -> float:
        start = time.perf_counter()
        for _ in range(count):
            cycle()
        return (time.perf_counter() - start) / count * 1000

    return measure


def examples_per_second(cycle: Callable[[bytes], None], examples: int) -> Callable[[], float]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"") + b"\n"))
    def property_(line: bytes) -> None:
        cycle(line)

    def measure() -> float:
        start = time.perf_counter()
        property_()
        return examples / (time.perf_counter() - start)

    return measure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, count, examples = (3, 50, 100) if args.quick else (15, 200, 500)
    ok = True
    for cycle in (by_hand, through_serving):  # warm up
        ms_per_cycle(cycle, 20)()

    results = alternate(
        {
            "by hand": ms_per_cycle(by_hand, count),
            "serving()": ms_per_cycle(through_serving, count),
        },
        rounds,
    )
    ratio = statistics.median(ratios(results, "serving()", "by hand"))
    text, met = verdict(ratio, 1.3, higher_is_better=False)
    ok &= met
    print(
        f"start + round trip + stop: by hand {statistics.median(results['by hand']):.3f} ms, "
        f"serving() {statistics.median(results['serving()']):.3f} ms; median of per-round "
        f"ratios {ratio:.2f}x (goal <= 1.3x): {text}"
    )

    results = alternate(
        {
            "by hand": examples_per_second(by_hand, examples),
            "serving()": examples_per_second(through_serving, examples),
        },
        max(3, rounds // 3),
    )
    rate = statistics.median(results["serving()"])
    hand = statistics.median(results["by hand"])
    met = rate >= 500 * 0.75
    ok &= met
    print(
        f"a fresh server per hypothesis example: serving() {rate:,.0f} examples/s, by hand "
        f"{hand:,.0f} examples/s (ratio {statistics.median(ratios(results, 'serving()', 'by hand')):.2f}x); "
        f"goal >= 500 examples/s: {'met' if rate >= 500 else 'within noise' if met else 'MISSED'}"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the fault proxy with an empty plan against a direct connection.

    python bench/bench_proxy.py            # about 20 seconds
    python bench/bench_proxy.py --quick    # a smoke run

The server and the client are separate processes (``_proxy_peer.py``); the proxy
runs in this one, on its own I/O thread. Direct and proxied runs alternate round by
round (which goes first alternates too), and each figure is the median of the
per-round ratios, so that drift of the machine's speed during the run cancels out.

* Throughput: a bulk transfer (``--megabytes``, default 512 MB) into a sink, MB/s.
  Goal: proxied >= 0.8x direct.
* Latency: the median of one-byte round trips on an echo connection. Goal: the
  proxy adds <= 100 us.

Machines vary by about +-25% from run to run (``_common.NOISE``); a figure within
that band of its goal is reported as "within noise", not as a miss.

It also reports, from ``/proc`` (Linux), the CPU time the three processes spent per
GiB transferred and how many CPUs they kept busy. Forwarding costs CPU (the proxy's
own, and more wake-ups for client and server): with fewer CPUs than processes --
a 2-CPU machine, or a busy one -- the throughput ratio measures that cost, not how
fast the proxy can forward.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import verdict
from sockshock._proxy import FaultProxy

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_proxy_peer.py")
THROUGHPUT_GOAL = 0.8  # proxied / direct, at least
LATENCY_GOAL = 100e-6  # seconds added per round trip, at most


def cpu_seconds(pids: list[int]) -> list[float] | None:
    """CPU time (user + system) of each process so far, exited threads included;
    None without /proc."""
    seconds = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        seconds.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return seconds


class Peer:
    def __init__(self, role: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, PEER, role], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, **command: Any) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--megabytes", type=int, default=None)
    parser.add_argument("--round-trips", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 9)
    nbytes = (args.megabytes or (32 if args.quick else 512)) * 1024 * 1024
    count = args.round_trips or (500 if args.quick else 5000)

    server = Peer("server")
    client = Peer("client")
    try:
        upstream = ("127.0.0.1", int(server.readline()))
        with FaultProxy(upstream, faults=[]) as proxy:
            targets = {"direct": upstream, "proxy": proxy.address}
            client.ask(name="bulk", address=upstream, nbytes=nbytes // 8)  # warm up
            client.ask(name="bulk", address=proxy.address, nbytes=nbytes // 8)
            speed: dict[str, list[float]] = {"direct": [], "proxy": []}
            rtt: dict[str, list[float]] = {"direct": [], "proxy": []}
            pids = [client.proc.pid, server.proc.pid, os.getpid()]
            cpu: dict[str, list[list[float]]] = {"direct": [], "proxy": []}  # per process
            busy: dict[str, list[float]] = {"direct": [], "proxy": []}
            for i in range(rounds):
                order = ["direct", "proxy"] if i % 2 == 0 else ["proxy", "direct"]
                for name in order:
                    before = cpu_seconds(pids)
                    started = time.perf_counter()
                    seconds = client.ask(name="bulk", address=targets[name], nbytes=nbytes)
                    wall = time.perf_counter() - started
                    after = cpu_seconds(pids)
                    speed[name].append(nbytes / seconds / 1e6)
                    if before is not None and after is not None:
                        used = [a - b for a, b in zip(after, before, strict=True)]
                        cpu[name].append([u / (nbytes / 2**30) for u in used])
                        busy[name].append(sum(used) / wall)
                for name in order:
                    rtt[name].append(client.ask(name="latency", address=targets[name], count=count))
            assert not proxy.plan.log
    finally:
        client.close()
        server.close()

    ratios = [p / d for p, d in zip(speed["proxy"], speed["direct"], strict=True)]
    added = [p - d for p, d in zip(rtt["proxy"], rtt["direct"], strict=True)]
    ratio = statistics.median(ratios)
    extra = statistics.median(added)
    throughput_text, throughput_met = verdict(ratio, THROUGHPUT_GOAL)
    latency_text, latency_met = verdict(extra, LATENCY_GOAL, higher_is_better=False)
    print(
        f"{rounds} rounds, alternating; {nbytes // (1024 * 1024)} MB per bulk transfer, "
        f"{count} round trips per latency run; medians of per-round figures"
    )
    print(
        f"throughput   direct {statistics.median(speed['direct']):9,.0f} MB/s   "
        f"proxy {statistics.median(speed['proxy']):9,.0f} MB/s   ratio {ratio:.2f}x "
        f"(goal >= {THROUGHPUT_GOAL}x): {throughput_text}"
    )
    print(
        f"round trip   direct {statistics.median(rtt['direct']) * 1e6:9,.1f} us     "
        f"proxy {statistics.median(rtt['proxy']) * 1e6:9,.1f} us     added "
        f"{extra * 1e6:.1f} us (goal <= {LATENCY_GOAL * 1e6:.0f} us): {latency_text}"
    )
    if cpu["direct"] and cpu["proxy"]:
        per_gib = {
            name: [statistics.median(column) for column in zip(*rows, strict=True)]
            for name, rows in cpu.items()
        }
        print(
            f"CPU s per GiB (client + server + proxy process): direct "
            f"{sum(per_gib['direct']):.2f}, proxied {sum(per_gib['proxy']):.2f} "
            f"(the proxy itself {per_gib['proxy'][2]:.2f}); CPUs kept busy: direct "
            f"{statistics.median(busy['direct']):.2f}, proxied "
            f"{statistics.median(busy['proxy']):.2f}, of {os.cpu_count()}"
        )
    print(f"per-round throughput ratios: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"per-round added latency (us): {', '.join(f'{a * 1e6:.0f}' for a in added)}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0 if throughput_met and latency_met else 1


if __name__ == "__main__":
    sys.exit(main())

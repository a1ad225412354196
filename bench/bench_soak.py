"""Soak: does memory stay flat over 100,000 connections with an active fault model?

    python bench/bench_soak.py                   # 100,000 connections per part: minutes
    python bench/bench_soak.py --quick           # 10,000 per part: a smoke run
    python bench/bench_soak.py --before 739fd3e  # the same soak on another commit too
    python bench/bench_soak.py --parts proxy     # only some parts (proxy, serving, udp)

Parts, each in a process of its own (so that one part's memory is not the next's):

* ``proxy``: a :class:`~sockshock.FaultProxy` (TCP, in this process) in front of an
  echo server in another process (``_proxy_peer.py``), with ``Latency(0,
  jitter=0.0002)`` -- every forwarding step draws -- and ``Bandwidth(1e9)`` (state
  per connection). One client thread: connect, a line out, the line back, close.
* ``serving``: the same client against ``serving("ThreadingTCPServer", LineEcho)``
  with the same models, through the fault layer.
* ``udp``: ``serving("UDPServer", DatagramEcho)`` with ``BurstLoss`` (state per
  peer) and ``DuplicateDatagrams(probability=0.5)``; each request from a new
  socket, so a new source port: datagram peers beyond what the layer remembers.

Every ``--every`` connections (default a tenth of the run), the part samples its
resident set (``VmRSS``) and what tracemalloc sees allocated (tracing is on for the
whole run: it slows it, the same for every tree). The figure that matters is the
growth after warm-up -- from the first sample where the plan's log is full (it keeps
the first 10,000 events), a fifth of the run is done and twice as many peers as a
layer remembers have come, to the last sample. Goal: within a few MB (``GOAL_MB``); before issue 23, a proxy grew about
3 MB per 1,000 connections. Faults decided per second: the plan's events (logged
and counted), over the run's wall time (clients and server share the machine: a
throughput of the whole, not of the plan alone; compare trees on one machine).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER = os.path.join(HERE, "_proxy_peer.py")
GOAL_MB = 4.0  # growth after warm-up, resident and traced, at most
PARTS = ("proxy", "serving", "udp")
DATAGRAM_PEERS_KEPT = 4096  # (sockshock._util's: the same on every tree compared)
WAIT = 10.0


def rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # peak, not current: a fallback without /proc

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Samples:
    """(connections, RSS MB, traced MB, whether the plan's log is full) at intervals."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.rows: list[tuple[int, float, float, bool]] = []
        self.plan: Any = None

    def take(self, done: int) -> None:
        gc.collect()
        full = self.plan is not None and self.plan.unlogged > 0
        self.rows.append((done, rss_mb(), tracemalloc.get_traced_memory()[0] / 2**20, full))


def stream_client(address: Any, count: int, samples: Samples, prefix: bytes = b"") -> None:
    """``count`` connections one after the other: a line out, the line back, close."""
    for done in range(1, count + 1):
        with socket.create_connection(address, timeout=WAIT) as sock:
            sock.sendall(prefix + b"ping\n")
            got = b""
            while not got.endswith(b"\n"):
                chunk = sock.recv(64)
                if not chunk:
                    raise RuntimeError(f"connection {done}: closed after {got!r}")
                got += chunk
        if done % samples.every == 0:
            samples.take(done)


def datagram_client(address: Any, count: int, samples: Samples) -> None:
    """``count`` requests, each from a new socket (a new source port)."""
    done = 0
    while done < count:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            sock.connect(address)
            sock.send(b"ping")
            with contextlib.suppress(TimeoutError):  # lost: a datagram client moves on
                sock.recv(64)
        done += 1
        if done % samples.every == 0:
            samples.take(done)


def stream_models(F: Any) -> list[Any]:
    return [F.Latency(0.0, jitter=0.0002, direction="both"), F.Bandwidth(1e9)]


def run_part(part: str, count: int, every: int) -> dict[str, Any]:
    import sockshock
    from sockshock import faults as F
    from sockshock.handlers import DatagramEcho, LineEcho

    samples = Samples(every)
    tracemalloc.start()
    samples.take(0)
    plan: Any
    start = time.perf_counter()
    if part == "proxy":
        peer = subprocess.Popen([sys.executable, PEER, "server"], stdout=subprocess.PIPE, text=True)
        try:
            assert peer.stdout is not None
            port = int(peer.stdout.readline())
            with sockshock.FaultProxy(
                ("127.0.0.1", port), faults=stream_models(F), seed=1
            ) as proxy:
                plan = samples.plan = proxy.plan
                start = time.perf_counter()
                stream_client(proxy.address, count, samples, prefix=b"E")
                elapsed = time.perf_counter() - start
        finally:
            peer.kill()
            peer.wait()
    elif part == "serving":
        with sockshock.serving(
            "ThreadingTCPServer", LineEcho, faults=stream_models(F), seed=1
        ) as srv:
            plan = samples.plan = srv.plan
            start = time.perf_counter()
            stream_client(srv.address, count, samples)
            elapsed = time.perf_counter() - start
    else:
        models = [F.BurstLoss(p=0.05, r=0.5, loss_bad=0.5), F.DuplicateDatagrams(probability=0.5)]
        with sockshock.serving("UDPServer", DatagramEcho, faults=models, seed=1) as srv:
            plan = samples.plan = srv.plan
            start = time.perf_counter()
            datagram_client(srv.address, count, samples)
            elapsed = time.perf_counter() - start
    tracemalloc.stop()
    decisions = len(plan.log) + plan.unlogged
    return {
        "part": part,
        "connections": count,
        "seconds": elapsed,
        "decisions": decisions,
        "samples": samples.rows,
    }


def source_of(rev: str, into: str) -> str:
    import tarfile

    archive = os.path.join(into, "src.tar")
    with open(archive, "wb") as out:
        subprocess.run(["git", "-C", ROOT, "archive", rev, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        if sys.version_info >= (3, 12):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return os.path.join(into, "src")


def in_process(src: str, part: str, count: int, every: int) -> dict[str, Any]:
    """One part in a fresh interpreter importing sockshock from ``src``."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", part, "--count", str(count), "--every", str(every)],
        env={**os.environ, "PYTHONPATH": src},
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def report(label: str, result: dict[str, Any]) -> tuple[float, float] | None:
    """Print a part's figures; the growth after warm-up (None: never warm)."""
    rows = result["samples"]
    last = rows[-1]
    # Warm: the plan's log full (it keeps 10,000 events), a fifth of the run done,
    # and for datagrams, more peers seen than the layer remembers.
    warm = next(
        (
            r
            for r in rows
            if r[3] and r[0] >= max(result["connections"] // 5, 2 * DATAGRAM_PEERS_KEPT)
        ),
        None,
    )
    rate = result["decisions"] / result["seconds"]
    print(
        f"  {label}: {result['connections']:,} connections in {result['seconds']:.1f} s, "
        f"{result['decisions']:,} faults decided ({rate:,.0f}/s)"
    )
    for i in range(0, len(rows), 6):
        print(
            "    "
            + "  ".join(f"{n:>7,}: {rss:5.1f}/{tr:5.1f}" for n, rss, tr, _ in rows[i : i + 6])
        )
    if warm is None or warm is last:
        print("    not warmed up (the log not full yet, or too few connections): no verdict")
        return None
    rss_growth, traced_growth = last[1] - warm[1], last[2] - warm[2]
    print(
        f"    after warm-up ({warm[0]:,} -> {last[0]:,}): RSS {rss_growth:+.1f} MB, "
        f"traced {traced_growth:+.1f} MB"
    )
    return rss_growth, traced_growth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 connections per part")
    parser.add_argument("--count", type=int, default=None, help="connections per part")
    parser.add_argument("--every", type=int, default=None, help="sample every N connections")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS)
    )
    parser.add_argument("--before", default=None, help="also run the soak on this commit")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.count or (10_000 if args.quick else 100_000)
    every = args.every or max(1, count // 10)
    if args.worker:
        print(json.dumps(run_part(args.worker, count, every)))
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    trees: dict[str, str] = {"this tree": os.path.join(ROOT, "src")}
    ok = True
    with tempfile.TemporaryDirectory(prefix="sockshock-soak-") as tmp:
        if args.before:
            trees[f"before ({args.before})"] = source_of(args.before, tmp)
        print(f"samples: connections: RSS/traced MB; goal: growth after warm-up <= {GOAL_MB} MB")
        for part in parts:
            print(f"{part}:")
            for label, src in trees.items():
                result = in_process(src, part, count, every)
                growth = report(label, result)
                if label == "this tree" and growth is not None and max(growth) > GOAL_MB:
                    ok = False
                    print(f"    MISSED: more than {GOAL_MB} MB after warm-up")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

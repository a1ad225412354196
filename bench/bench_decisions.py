"""The cost of one fault decision, and what a plan keeps per connection: this tree
against another (by default the commit before issue 23's counter-based derivation).

    python bench/bench_decisions.py                  # about 30 seconds
    python bench/bench_decisions.py --quick          # a smoke run
    python bench/bench_decisions.py --before REV     # against another commit
    python bench/bench_decisions.py --before-src DIR # against a source tree (its src/)

Each contender runs in a process of its own (``PYTHONPATH`` at its ``src``), the
two alternating round by round (the order reversing every round); each figure is
the median over rounds, and the verdict the median of per-round ratios
(after / before) judged with the +-25% noise band of ``_common.verdict``. Times are
the worker's CPU time (``process_time``): other processes on a busy machine do not
count.

Cases, each ``FaultPlan.decide()`` on operations made in advance (the log full, as
in a long run: events past ``log_limit`` are only counted):

* ``long``: one connection, 20,000 reads; ``short``: 5,000 connections of 4 reads
  each (a seeded plan used to make a generator per connection and model: that cost
  is in ``short``);
* models: ``PartialReads(64)`` (one draw per decision), ``Latency(0.001,
  jitter=0.001)`` (the issue's model), ``DropDatagrams(probability=0.5)`` on
  datagrams, ``EOFAfter(2**60)`` (in scope, never draws), ``PartialReads(64,
  probability=0.99, per="connection")`` (a connection affected, with either seed).

And ``recv via FaultLayer``: CPU time of one ``send`` + ``recv`` pair of one byte on
a loopback connection whose accepted end is a FaultySocket (the whole path a
decision takes: the layer's lock, the Operation, the plan, the socket), with
``PartialReads(1000)`` and with ``Latency(0, jitter=1e-7)`` -- what a handler feels.

And ``kept``: bytes a plan holds after 20,000 short connections (``log_limit=0``,
tracemalloc), per 1,000 connections -- with ``connection_ended()`` called as each
connection ends where the tree has it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

#: The last commit with one random.Random per (connection, model).
BEFORE = "739fd3e"

#: after / before for a read through a FaultySocket (what a handler feels): at most
#: 10% dearer. The plan's own figures are shown, not judged: a drawing decision on
#: a long connection is dearer (SplitMix64 in Python against the C Mersenne
#: Twister), a short connection's cheaper (no generator to seed), and memory is
#: the point.
GOAL = 1.10


# -- the worker: runs in the contender's interpreter --------------------------------------


def _models(F: Any) -> dict[str, tuple[list[Any], str]]:
    return {
        "PartialReads": ([F.PartialReads(64)], "recv"),
        "Latency+jitter": ([F.Latency(0.001, jitter=0.001)], "recv"),
        "DropDatagrams p=.5": ([F.DropDatagrams(probability=0.5)], "datagram_in"),
        "EOFAfter (no draw)": ([F.EOFAfter(2**60)], "recv"),
        "per=connection p=.99": ([F.PartialReads(64, probability=0.99, per="connection")], "recv"),
    }


def worker(scale: float) -> dict[str, float]:
    import tracemalloc

    from sockshock import faults as F
    from sockshock._faults import FaultPlan, Operation

    results: dict[str, float] = {}
    long_ops = int(20_000 * scale)
    short_connections = int(5_000 * scale)
    for name, (models, kind) in _models(F).items():
        shapes = {
            "long": [Operation(kind, 0, None, 100, 0, i) for i in range(long_ops)],
            "short": [
                Operation(kind, c, None, 100, 0, i)
                for c in range(short_connections)
                for i in range(4)
            ],
        }
        for shape, ops in shapes.items():
            plan = FaultPlan(*models, seed=1234, log_limit=0)  # the log full from the start
            ended = getattr(plan, "connection_ended", None)
            decide = plan.decide
            start = time.process_time_ns()
            if shape == "short" and ended is not None:
                for j in range(0, len(ops), 4):
                    decide(ops[j])
                    decide(ops[j + 1])
                    decide(ops[j + 2])
                    decide(ops[j + 3])
                    ended(ops[j].connection)
            else:
                for op in ops:
                    decide(op)
            results[f"{shape} {name}"] = (time.process_time_ns() - start) / len(ops)
    # The whole path through a FaultySocket.
    import socket

    from sockshock._wire import FaultLayer

    pairs = int(10_000 * scale)
    for name, models in [
        ("PartialReads", [F.PartialReads(1000)]),
        ("Latency+jitter", [F.Latency(0.0, jitter=1e-7)]),
    ]:
        layer = FaultLayer(models)
        with layer.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            with socket.create_connection(listener.getsockname()) as peer:
                conn, _ = listener.accept()
                with conn:
                    start = time.process_time_ns()
                    for _ in range(pairs):
                        peer.send(b"x")
                        conn.recv(1)
                    elapsed = time.process_time_ns() - start
        results[f"recv via FaultLayer {name}"] = elapsed / pairs
    # What a plan keeps per connection.
    connections = int(20_000 * scale)
    for name, (models, kind) in _models(F).items():
        if name != "Latency+jitter":
            continue
        ops = [Operation(kind, c, None, 100, 0, i) for c in range(connections) for i in range(4)]
        tracemalloc.start()
        plan = FaultPlan(*models, seed=1234, log_limit=0)
        ended = getattr(plan, "connection_ended", None)
        before = tracemalloc.get_traced_memory()[0]
        for j in range(0, len(ops), 4):
            for op in ops[j : j + 4]:
                plan.decide(op)
            if ended is not None:
                ended(ops[j].connection)
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        results["kept bytes/1000 connections"] = kept / connections * 1000
    return results


# -- the driver ------------------------------------------------------------------------------


def source_of(rev: str, into: str) -> str:
    """``src/`` of commit ``rev`` of this repository, extracted under ``into``."""
    archive = os.path.join(into, "src.tar")
    with open(archive, "wb") as out:
        subprocess.run(["git", "-C", ROOT, "archive", rev, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data") if sys.version_info >= (3, 12) else tar.extractall(into)
    return os.path.join(into, "src")


def run_worker(src: str, scale: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", "--scale", str(scale)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--before", default=BEFORE, help=f"a commit (default {BEFORE})")
    parser.add_argument("--before-src", help="a source tree's src/ instead of --before")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.scale)))
        return 0
    from _common import alternate, verdict

    rounds = args.rounds or (2 if args.quick else 7)
    scale = 0.1 if args.quick else 1.0
    with tempfile.TemporaryDirectory(prefix="sockshock-bench-") as tmp:
        before_src = args.before_src or source_of(args.before, tmp)
        after_src = os.path.join(ROOT, "src")
        results = alternate(
            {
                "before": lambda: run_worker(before_src, scale),
                "after": lambda: run_worker(after_src, scale),
            },
            rounds,
        )
    label = args.before_src or args.before
    print(f"FaultPlan.decide(), ns per decision (median of {rounds} rounds); before = {label}")
    print(f"{'case':40} {'before':>10} {'after':>10} {'after/before':>13}")
    ok = True
    for case in results["before"][0]:
        b = statistics.median(r[case] for r in results["before"])
        a = statistics.median(r[case] for r in results["after"])
        ratio = statistics.median(
            x[case] / y[case] for x, y in zip(results["after"], results["before"], strict=True)
        )
        note = ""
        if case.startswith("recv"):
            note, met = verdict(ratio, GOAL, higher_is_better=False)
            ok = ok and met
        print(f"{case:40} {b:10.0f} {a:10.0f} {ratio:12.2f}x {note}")
    print(f"(goal, judged on the reads through a FaultySocket only: <= {GOAL}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

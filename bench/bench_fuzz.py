"""Examples per second of an echo property under hypothesis, four ways, in one run.

    python bench/bench_fuzz.py            # about a minute
    python bench/bench_fuzz.py --quick    # a smoke run

The property: a line-echo handler (``sockshock.handlers.LineEcho``) sent a few
drawn lines returns them. Two variants: with no faults, and with a fault plan
drawn by ``fault_plans(models=[PartialReads, PartialWrites])`` (every contender
draws it, so hypothesis' own cost is the same; the ceiling cannot apply it).
Contenders, each a ``@given`` test run with the same settings
(``derandomize=True``: the same examples for all):

* ``hypothesis alone`` -- the same draws and nothing else: hypothesis' own cost,
  which the "net" figures subtract;
* ``ceiling`` -- the handler on a bare ``socket.socketpair()``, in the test's
  thread: no server, no fault layer; what remains is hypothesis' per-example cost;
* ``drive`` -- ``sockshock.drive(LineEcho, payload, faults=plan)``, in memory;
* ``shared server`` -- one ``serving("ThreadingTCPServer", ...)`` for the whole
  run, a connection per example (the drawn plan is put on its fault layer);
* ``fresh serving()`` -- a ``serving()`` per example (fewer examples: it is slow).

Contenders alternate round by round (the order reversing); each figure is the
median of the per-round ratios. Then the same bodies without hypothesis, a fixed
payload and plan, in microseconds per call: what each costs on its own, which
on a loaded machine (where hypothesis' own cost per example grows several-fold)
says more than the ratios of examples per second. Goals: ``drive`` at least 0.9x the ceiling and
3x the shared server. These machines vary by about +-25% from run to run, so a
median within that band below a goal is reported as such rather than as a miss.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import sockshock
from _common import alternate, ratios, verdict
from sockshock import faults as F
from sockshock.handlers import LineEcho
from sockshock.strategies import fault_plans

LINES = st.lists(
    st.binary(max_size=16).map(lambda b: b.replace(b"\n", b"") + b"\n"), min_size=1, max_size=4
).map(b"".join)
PLANS = fault_plans(models=[F.PartialReads, F.PartialWrites], min_models=1, max_models=2)
NO_PLAN = st.none()


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def on_socketpair(payload: bytes, plan: Any) -> None:
    server, client = socket.socketpair()
    with server, client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        LineEcho(server, ("127.0.0.1", 0), None)
        server.close()
        assert read_all(client) == payload


def nothing(payload: bytes, plan: Any) -> None:
    """Hypothesis' own cost: the same draws, no I/O."""


def in_memory(payload: bytes, plan: Any) -> None:
    assert sockshock.drive(LineEcho, payload, faults=plan).received == payload


def over(srv: Any, payload: bytes) -> None:
    with srv.connect() as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        assert read_all(client) == payload


class Shared:
    """One server for a whole run; each example's plan goes on its fault layer."""

    def __init__(self) -> None:
        self.srv: Any = None

    def __call__(self, payload: bytes, plan: Any) -> None:
        layer = self.srv.layer
        layer.plan = plan if plan is not None else F.FaultPlan(seed=0)
        layer.active = bool(layer.plan.models)
        over(self.srv, payload)


def fresh(payload: bytes, plan: Any) -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho, faults=plan) as srv:
        over(srv, payload)


def rate(body: Callable[[bytes, Any], None], plans: Any, examples: int) -> float:
    """Examples per second of ``body`` as a hypothesis property."""
    count = 0

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(payload=LINES, plan=plans)
    def prop(payload: bytes, plan: Any) -> None:
        nonlocal count
        count += 1
        body(payload, plan)

    start = time.perf_counter()
    prop()
    return count / (time.perf_counter() - start)


def per_call(body: Callable[[bytes, Any], None], faults: bool, count: int) -> float:
    """Microseconds per call of ``body``, without hypothesis (a fixed payload and,
    with ``faults``, a fresh plan of fixed decisions each call)."""
    payload = b"hello\nworld\n"
    start = time.perf_counter()
    for _ in range(count):
        plan = (
            F.FaultPlan(
                F.PartialReads(4), F.PartialWrites(3), rng=[F.Draws([0.5, 0.7]), F.Draws([0.9])]
            )
            if faults
            else None
        )
        body(payload, plan)
    return (time.perf_counter() - start) / count * 1e6


def measure_calls(count: int, rounds: int) -> None:
    shared = Shared()
    with sockshock.serving("ThreadingTCPServer", LineEcho, faults=[]) as srv:
        shared.srv = srv
        for faults in (False, True):
            results = alternate(
                {
                    "ceiling": lambda: per_call(on_socketpair, False, count),
                    "drive": lambda f=faults: per_call(in_memory, f, count),
                    "shared server": lambda f=faults: per_call(shared, f, count),
                    "fresh serving()": lambda f=faults: per_call(fresh, f, max(10, count // 20)),
                },
                rounds,
            )
            label = "PartialReads(4), PartialWrites(3)" if faults else "no faults"
            print(
                f"\nwithout hypothesis, {label} (the ceiling without): us per call, "
                f"median of {rounds} rounds"
            )
            for name, values in results.items():
                ratio = statistics.median(ratios(results, name, "drive"))
                print(f"  {name:<16} {statistics.median(values):>9,.1f} us   {ratio:5.2f}x drive's")


def measure(label: str, plans: Any, examples: int, rounds: int) -> bool:
    shared = Shared()
    with sockshock.serving("ThreadingTCPServer", LineEcho, faults=[]) as srv:
        shared.srv = srv
        results = alternate(
            {
                "hypothesis alone": lambda: rate(nothing, plans, examples),
                "ceiling": lambda: rate(on_socketpair, plans, examples),
                "drive": lambda: rate(in_memory, plans, examples),
                "shared server": lambda: rate(shared, plans, examples),
                "fresh serving()": lambda: rate(fresh, plans, max(10, examples // 10)),
            },
            rounds,
        )
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(
        f"\n{label}: examples/s, median of {rounds} rounds; net: per example, beyond "
        "hypothesis' own cost"
    )
    alone = results["hypothesis alone"]
    for name, value in medians.items():
        net = statistics.median(
            1e6 / r - 1e6 / a for r, a in zip(results[name], alone, strict=True)
        )
        print(
            f"  {name:<16} {value:>9,.0f} /s"
            + (f"   net {net:>8,.0f} us" if name != "hypothesis alone" else "")
        )
    ok = True
    for other, goal in (("ceiling", 0.9), ("shared server", 3.0), ("fresh serving()", None)):
        ratio = statistics.median(ratios(results, "drive", other))
        if goal is None:
            print(f"  drive / {other:<16} {ratio:6.2f}x")
            continue
        text, met = verdict(ratio, goal)
        ok &= met
        print(f"  drive / {other:<16} {ratio:6.2f}x  (goal >= {goal:g}x): {text}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    examples, rounds = (100, 1) if args.quick else (400, 7)
    warnings.simplefilter("ignore", sockshock.errors.FaultNeverFired)
    ok = measure("echo, no faults", NO_PLAN, examples, rounds)
    ok &= measure("echo under a drawn plan (PartialReads, PartialWrites)", PLANS, examples, rounds)
    measure_calls(examples * 5, rounds)
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

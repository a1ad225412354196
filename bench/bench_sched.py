"""The controlled scheduler: how fast scheduled runs are, and how many runs each way
of searching needs to find each example race of tests/_races.py.

    python bench/bench_sched.py            # a few minutes
    python bench/bench_sched.py --quick    # a smoke run
    python bench/bench_sched.py --throughput    # part 1 only

1. Throughput: scheduled ``drive()`` runs per second of a two-client line handler
   in memory (goal: at least 300 per second), the same on real loopback sockets
   (``sockets="real"``), beside the same two clients driven
   one at a time without a scheduler (``drive()`` twice: the cost of a run
   without threads). Contenders alternate round by round (the order reversing);
   the figure is the median over rounds, and the ratio the median of per-round
   ratios. These machines vary by about +-25% from run to run: a median within
   that band below the goal is reported as such.
2. Runs to find each race: ``drive.explore()`` with PCT (depth 3, length
   measured) and with a random walk, from 20 different first seeds each (median
   and worst run that failed first); hypothesis-drawn schedules (examples until the
   first failure, 20 hypothesis seeds); and 1,000 plain, unscheduled runs of the
   same handler and clients over real loopback sockets (``serving()``,
   ThreadingTCPServer, one thread per client): how many showed the race.
3. The fewest preemptions each race needs: ``drive.explore(strategy="bounded")``,
   the preemption-bounded exhaustive search (CHESS's iterative context bounding, on
   replayed decision prefixes) with bounds 0, 1, 2; and each correct variant under every schedule with at most two
   preemptions (none may fail or deadlock). Skipped with ``--quick``.
4. frontrun (PyPI), where it can express the race: the handler's state logic as
   plain functions on shared state (no sockets, clients or server, which it does
   not model), DPOR and its random strategy; run in a subprocess under
   ``frontrun python`` if frontrun is installed.
5. interleave-test (PyPI, Python >= 3.12) on the same state logic, random and PCT:
   ``--interleave-python /path/to/python3.13`` (with interleave-test installed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests._races import RACES, Race  # noqa: E402

import sockshock  # noqa: E402
from sockshock import socketserver  # noqa: E402
from sockshock._sched import Schedule  # noqa: E402
from sockshock.scripts import Read, Send  # noqa: E402

NOISE = 0.25
GOAL = 300.0


class Line(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline().upper())


CLIENT = [Send(b"hello\n"), Read(until=b"\n")]


# -- 1. throughput ------------------------------------------------------------------------------


def scheduled(count: int) -> float:
    started = time.perf_counter()
    for seed in range(count):
        sockshock.drive(Line, [CLIENT, CLIENT], server="ThreadingTCPServer", schedule=seed)
    return count / (time.perf_counter() - started)


def scheduled_real(count: int) -> float:
    started = time.perf_counter()
    for seed in range(count):
        sockshock.drive(
            Line, [CLIENT, CLIENT], server="ThreadingTCPServer", schedule=seed, sockets="real"
        )
    return count / (time.perf_counter() - started)


def unscheduled_pair(count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        sockshock.drive(Line, CLIENT)
        sockshock.drive(Line, CLIENT)
    return count / (time.perf_counter() - started)


def throughput(rounds: int, count: int) -> dict[str, Any]:
    contenders = {
        "scheduled, 2 clients": scheduled,
        "scheduled, real sockets": scheduled_real,
        "drive() twice, no scheduler": unscheduled_pair,
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for body in contenders.values():
        body(max(5, count // 10))  # warm up
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            rates[name].append(contenders[name](count))
    ratios = [
        a / b
        for a, b in zip(
            rates["scheduled, 2 clients"], rates["drive() twice, no scheduler"], strict=True
        )
    ]
    return {
        "runs_per_second": {name: statistics.median(v) for name, v in rates.items()},
        "spread": {name: (min(v), max(v)) for name, v in rates.items()},
        "ratio_scheduled_to_unscheduled": statistics.median(ratios),
    }


# -- 2. runs to find ------------------------------------------------------------------------------


def broken_under(race: Race, schedule: Any) -> bool:
    attrs = race.attrs()
    ts = sockshock.drive(
        race.handler,
        race.clients,
        server="ThreadingTCPServer",
        schedule=schedule,
        server_attrs=attrs,
    )
    return bool(race.broken(attrs, ts))


def first_failure(race: Race, strategy: str, first_seed: int, limit: int) -> int | None:
    """The run (1-based) at which explore() first failed, or None within ``limit``."""
    runs = 0

    def check(schedule: Schedule) -> None:
        nonlocal runs
        runs += 1
        assert not broken_under(race, schedule)

    try:
        sockshock.drive.explore(check, runs=limit, strategy=strategy, seed=first_seed)
    except AssertionError:
        return runs
    return None


def hypothesis_examples(race: Race, seed: int, limit: int) -> int | None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    calls = 0

    @settings(
        max_examples=limit,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=["generate"],
        deadline=None,
    )
    @given(st.randoms(use_true_random=False))
    def prop(rnd: random.Random) -> None:
        nonlocal calls
        calls += 1
        assert not broken_under(race, rnd)

    from hypothesis import seed as hseed

    try:
        hseed(seed)(prop)()
    except AssertionError:
        return calls
    return None


def plain_threads(race: Race, runs: int) -> dict[str, Any]:
    """The handler on a real ThreadingTCPServer (loopback), its clients as real
    threads, no scheduler: how many of ``runs`` runs show the race."""
    found = 0
    first = None
    with sockshock.serving(
        "ThreadingTCPServer", race.handler, expect_errors=Exception, **race.attrs()
    ) as srv:
        for i in range(runs):
            for name, value in race.attrs().items():
                setattr(srv.server, name, value)
            srv.errors.clear()

            def client(index: int) -> None:
                with srv.connect() as sock:
                    sock.settimeout(5)
                    for step in race.clients[index]:
                        if isinstance(step, Send):
                            sock.sendall(step.data)
                            continue
                        got = b""
                        while not got.endswith(b"\n"):
                            chunk = sock.recv(100)
                            if not chunk:
                                break
                            got += chunk

            threads = [threading.Thread(target=client, args=(k,)) for k in range(len(race.clients))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            # Every handler changes the state before its reply (or fails before it):
            # once both clients have their answer or end of file, the state is final.
            attrs = {name: getattr(srv.server, name) for name in race.attrs()}
            errors = srv.errors
            outcome = [_Outcome(errors[0].exception if errors else None)]
            if race.broken(attrs, outcome):
                found += 1
                first = first if first is not None else i + 1
            srv.errors.clear()
    return {"runs": runs, "showed_the_race": found, "first": first}


class _Outcome:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


# -- 3. fewest preemptions ----------------------------------------------------------------------


def _checker(race: Race, handler: Any) -> Any:
    def check(schedule: Any) -> None:
        attrs = race.attrs()
        ts = sockshock.drive(
            handler,
            race.clients,
            server="ThreadingTCPServer",
            schedule=schedule,
            server_attrs=attrs,
        )
        assert not race.broken(attrs, ts)
        assert not any(t.error is not None for t in ts)

    return check


def fewest_preemptions(race: Race, max_bound: int, budget: int) -> dict[str, Any]:
    """Iterative preemption bounding (``drive.explore(strategy="bounded")``): the
    smallest bound with a failing schedule."""
    for bound in range(max_bound + 1):
        try:
            done = sockshock.drive.explore(
                _checker(race, race.handler), strategy="bounded", preemptions=bound, runs=budget
            )
        except AssertionError as exc:
            return {"fewest": bound, "schedules_searched": _run_number(exc)}
        if not done.exhaustive:
            return {"fewest": None, "note": f"budget of {budget} runs spent at bound {bound}"}
    return {"fewest": None, "note": f"none with at most {max_bound} preemptions"}


def _run_number(exc: BaseException) -> int | None:
    """The failing run's number, from the report's first line ("... (run 370 of ...")."""
    found = re.search(r"\(run (\d+) of", "\n".join(getattr(exc, "__notes__", [])))
    return int(found.group(1)) if found else None


def correct_everywhere(race: Race, bound: int, budget: int) -> dict[str, Any]:
    """The correct variant under every schedule with at most ``bound`` preemptions."""
    try:
        done = sockshock.drive.explore(
            _checker(race, race.correct), strategy="bounded", preemptions=bound, runs=budget
        )
    except AssertionError as exc:
        return {"failing": getattr(exc, "__notes__", ["?"])[0].splitlines()[0]}
    return {"failing": None, "schedules": len(done), "exhaustive": done.exhaustive}


# -- 4. frontrun ----------------------------------------------------------------------------------

FRONTRUN_SCRIPT = r"""
import json, threading, time, frontrun

class Shop:
    def __init__(self): self.stock = {"book": 1}
def confirm(): pass  # the client's round trip: frontrun has no sockets or clients
def buy(shop):
    if shop.stock["book"] > 0:
        confirm()
        shop.stock["book"] -= 1

class Account:
    def __init__(self): self.balance = 0; self.lock = threading.Lock()
def deposit(acct):
    with acct.lock:
        b = acct.balance
    with acct.lock:
        acct.balance = b + 10

class Journal:
    def __init__(self): self.closed = False
    def close(self): self.closed = True
class Server:
    def __init__(self): self.active = 0; self.journal = None; self.lock = threading.Lock(); self.errors = []
def note(server):
    try:
        with server.lock:
            server.active += 1
            mine = None
            if server.active == 1:
                mine = server.journal = Journal()
        with server.lock:
            pass
        with server.lock:
            server.active -= 1
            if server.active == 0:
                mine.close()
    except AttributeError as exc:
        server.errors.append(exc)

cases = {
    "check-then-act": (Shop, buy, lambda s: s.stock["book"] >= 0),
    "lost update": (Account, deposit, lambda a: a.balance == 20),
    "ordering (two preemptions)": (Server, note, lambda s: not s.errors and s.journal.closed),
}
out = {}
for name, (setup, worker, invariant) in cases.items():
    for strategy in ("dpor", "random"):
        started = time.perf_counter()
        kwargs = {"seed": 1, "max_attempts": 2000} if strategy == "random" else {}
        result = frontrun.explore(setup=setup, workers=worker, count=2, invariant=invariant,
                                  strategy=strategy, reproduce_on_failure=0, **kwargs)
        out[f"{name} / {strategy}"] = {
            "found": not result.property_holds,
            "interleavings": result.num_explored,
            "seconds": round(time.perf_counter() - started, 3),
        }
print(json.dumps(out))
"""


INTERLEAVE_SCRIPT = r"""
import json, threading, time
import interleave_test as it

def confirm():  # the client's round trip: interleave-test has no sockets or clients
    pass

def checkout():
    shop = {"book": 1}
    def buy():
        if shop["book"] > 0:
            confirm()
            shop["book"] -= 1
    ts = [it.spawn(buy), it.spawn(buy)]
    for t in ts: t.join()
    assert shop["book"] >= 0

def lost_update():
    acct = {"balance": 0}
    lock = threading.Lock()
    def deposit():
        with lock:
            b = acct["balance"]
        with lock:
            acct["balance"] = b + 10
    ts = [it.spawn(deposit), it.spawn(deposit)]
    for t in ts: t.join()
    assert acct["balance"] == 20

def ordering():
    class Journal:
        closed = False
        def close(self): self.closed = True
    server = {"active": 0, "journal": None}
    lock = threading.Lock()
    def note():
        with lock:
            server["active"] += 1
            mine = None
            if server["active"] == 1:
                mine = server["journal"] = Journal()
        with lock:
            pass
        with lock:
            server["active"] -= 1
            if server["active"] == 0:
                mine.close()
    ts = [it.spawn(note), it.spawn(note)]
    for t in ts: t.join()
    assert server["journal"].closed

out = {}
for name, model in [("check-then-act", checkout), ("lost update", lost_update), ("ordering (two preemptions)", ordering)]:
    for strategy in ("random", "pct"):
        started = time.perf_counter()
        try:
            r = it.explore(model, iterations=1000, seed=1, strategy=strategy)
            out[f"{name} / {strategy}"] = {"found": False, "schedules": getattr(r, "iterations", None), "seconds": round(time.perf_counter() - started, 3)}
        except Exception as exc:
            text = str(exc)
            n = None
            for line in text.splitlines():
                if "found on schedule" in line:
                    n = int(line.split("found on schedule")[1].split()[0])
            out[f"{name} / {strategy}"] = {"found": True, "schedule": n, "seconds": round(time.perf_counter() - started, 3), "error": type(exc).__name__}
print(json.dumps(out))
"""


def interleave_results(python: str | None) -> dict[str, Any] | str:
    """interleave-test needs Python 3.12 or later: run with ``python`` (which has it)."""
    if python is None:
        return "interleave-test needs Python >= 3.12: give --interleave-python PATH; skipped"
    path = os.path.join(ROOT, "bench", ".interleave_races.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(INTERLEAVE_SCRIPT)
    try:
        done = subprocess.run([python, path], capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(path)
    if done.returncode:
        return f"interleave-test failed: {done.stderr.strip()[-500:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def frontrun_results() -> dict[str, Any] | str:
    exe = shutil.which("frontrun", path=os.path.dirname(sys.executable)) or shutil.which("frontrun")
    if exe is None:
        return "frontrun is not installed (pip install frontrun): skipped"
    path = os.path.join(ROOT, "bench", ".frontrun_races.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(FRONTRUN_SCRIPT)
    try:
        done = subprocess.run(
            [exe, sys.executable, path], capture_output=True, text=True, timeout=600
        )
    finally:
        os.unlink(path)
    if done.returncode:
        return f"frontrun failed: {done.stderr.strip()[-500:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--throughput", action="store_true", help="only part 1")
    parser.add_argument(
        "--interleave-python",
        help="a Python >= 3.12 with interleave-test installed, for part 5",
    )
    args = parser.parse_args()
    quick = args.quick
    report: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}

    print("1. throughput (two clients, line handler, in memory)")
    t = throughput(rounds=3 if quick else 7, count=50 if quick else 300)
    report["throughput"] = t
    rate = t["runs_per_second"]["scheduled, 2 clients"]
    for name, value in t["runs_per_second"].items():
        low, high = t["spread"][name]
        print(f"   {name:<30} {value:7.0f} runs/s (rounds: {low:.0f}..{high:.0f})")
    print(
        f"   scheduled / unscheduled (median of per-round ratios): {t['ratio_scheduled_to_unscheduled']:.2f}"
    )
    if rate >= GOAL:
        verdict = "meets the goal"
    elif rate >= GOAL * (1 - NOISE):
        verdict = "below the goal, within the +-25% noise band"
    else:
        verdict = "MISSES the goal"
    print(f"   goal >= {GOAL:.0f}/s: {verdict}")
    if args.throughput:
        print("\n" + json.dumps(report, default=str))
        return

    seeds = 5 if quick else 20
    limit = 1000
    print(
        f"\n2. runs to find each race (first failing run; {seeds} first seeds each; limit {limit})"
    )
    report["runs_to_find"] = {}
    for race in RACES:
        row: dict[str, Any] = {}
        for strategy in ("pct", "random"):
            found = [first_failure(race, strategy, k * 10007, limit) for k in range(seeds)]
            hits = [f for f in found if f is not None]
            row[strategy] = {
                "median": statistics.median(hits) if hits else None,
                "worst": max(hits) if hits else None,
                "missed": len(found) - len(hits),
            }
        drawn = [hypothesis_examples(race, k, 500) for k in range(seeds)]
        hits = [d for d in drawn if d is not None]
        row["hypothesis"] = {
            "median": statistics.median(hits) if hits else None,
            "worst": max(hits) if hits else None,
            "missed": len(drawn) - len(hits),
        }
        row["plain threads"] = plain_threads(race, 100 if quick else 1000)
        report["runs_to_find"][race.name] = row
        print(f"   {race.name}:")
        for name in ("pct", "random", "hypothesis"):
            r = row[name]
            print(
                f"     {name:<12} median {r['median']}, worst {r['worst']}, not found {r['missed']}"
            )
        p = row["plain threads"]
        print(
            f"     plain threads: the race showed in {p['showed_the_race']} of {p['runs']} runs (first: {p['first']})"
        )

    if not quick:
        print("\n3. fewest preemptions (preemption-bounded exhaustive search)")
        report["fewest_preemptions"] = {}
        for race in RACES:
            r = fewest_preemptions(race, max_bound=2, budget=40000)
            report["fewest_preemptions"][race.name] = r
            print(f"   {race.name}: {r}")
        print("   the correct variants, every schedule with at most 2 preemptions:")
        report["correct_variants"] = {}
        for race in RACES:
            r = correct_everywhere(race, bound=2, budget=200000)
            report["correct_variants"][race.name] = r
            print(f"   {race.correct.__name__}: {r}")

    print("\n4. frontrun on the same state logic (no sockets, clients or server)")
    fr = frontrun_results()
    report["frontrun"] = fr
    if isinstance(fr, str):
        print("   " + fr)
    else:
        for name, r in fr.items():
            print(
                f"   {name:<40} found={r['found']} after {r['interleavings']} interleavings, {r['seconds']} s"
            )
    print("\n5. interleave-test on the same state logic (no sockets, clients or server)")
    it = interleave_results(args.interleave_python)
    report["interleave-test"] = it
    if isinstance(it, str):
        print("   " + it)
    else:
        for name, r in it.items():
            print(
                f"   {name:<40} found={r['found']} at schedule {r.get('schedule')}, {r['seconds']} s"
            )
    print("\n" + json.dumps(report, default=str))


if __name__ == "__main__":
    main()

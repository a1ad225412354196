"""Where a failing drive() property's time goes: finding, shrinking, explaining.

    python bench/bench_explain.py            # about a minute
    python bench/bench_explain.py --quick    # a smoke run

The property: the README's length-prefixed handler (it reads its 4-byte header
with one ``recv(4)``), driven in memory under ``fault_plans(models=[PartialReads])``;
it fails. Three contenders run it to its reported failure, round by round in
alternating order: hypothesis' generate phase alone (finding), every phase but
explain (finding and shrinking), and every phase (explaining too). Each figure is
the median over the rounds; machines vary by about +-25% from run to run. The
claim it checks (docs/howto/fuzz-a-real-handler.md): explaining takes most of the time after the
failure is found.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import sockshock
from sockshock import faults as F
from sockshock import socketserver
from sockshock.strategies import fault_plans


class Reverse(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        (size,) = struct.unpack("!I", self.request.recv(4))  # the bug: may be short
        body = b""
        while len(body) < size:
            chunk = self.request.recv(size - len(body))
            if not chunk:
                raise ConnectionError("the client closed mid-message")
            body += chunk
        self.request.sendall(body[::-1])


def run(phases: tuple[Phase, ...]) -> float:
    """Seconds until hypothesis reports the failure, with these phases."""

    @settings(database=None, phases=phases, deadline=None)
    @given(plan=fault_plans(models=[F.PartialReads]), body=st.binary(max_size=32))
    def check(plan: F.FaultPlan, body: bytes) -> None:
        transcript = sockshock.drive(Reverse, struct.pack("!I", len(body)) + body, faults=plan)
        assert transcript.error is None
        assert transcript.received == body[::-1]

    started = time.perf_counter()
    try:
        check()
    except AssertionError:
        return time.perf_counter() - started
    raise SystemExit("the property passed: nothing to measure")


CONTENDERS = {
    "find (generate only)": (Phase.generate,),
    "find + shrink (no explain)": tuple(p for p in Phase if p is not Phase.explain),
    "find + shrink + explain": tuple(Phase),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two rounds")
    rounds = 2 if parser.parse_args().quick else 7
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    names = list(CONTENDERS)
    for n in range(rounds):
        for name in names if n % 2 == 0 else reversed(names):
            times[name].append(run(CONTENDERS[name]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:30} {value:7.3f} s (median of {rounds})")
    found = medians["find (generate only)"]
    shrink = medians["find + shrink (no explain)"] - found
    explain = medians["find + shrink + explain"] - medians["find + shrink (no explain)"]
    share = explain / max(1e-9, shrink + explain)
    print(f"after the failure is found: shrinking {shrink:.3f} s, explaining {explain:.3f} s")
    print(
        f"explaining is {share:.0%} of it (claim: most of it, > 50%): "
        + ("holds" if share > 0.5 else "does NOT hold")
    )


if __name__ == "__main__":
    main()

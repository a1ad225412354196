"""What loading sockshock's pytest plugin costs, against pytest's own import.

    python bench/bench_plugin_import.py            # 21 rounds, a few seconds
    python bench/bench_plugin_import.py --quick    # 5 rounds

pytest imports the plugin (entry point ``pytest11: sockshock``) at every start-up,
whether a test uses sockshock or not. Each round runs, in a fresh interpreter,

    python -X importtime -c "import pytest; import sockshock.pytest_plugin"

and reads from the same run the cumulative import time of ``pytest`` and of
``sockshock.pytest_plugin`` (the ``sockshock`` package included: Python imports a
submodule's package first). The ratio plugin/pytest is taken per round -- both
figures come from the same process, so a slow round slows both -- and judged by
the median over rounds: the goal is at most 0.15x. hypothesis' plugin module is
measured the same way, for comparison (its entry costs a few ms). The machines vary
by about +-25% from run to run: a median within that band above the goal is
reported as such rather than as a miss.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import verdict

GOAL = 0.15
_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S+)$")


def _cumulative(module: str) -> tuple[float, float]:
    """(pytest's cumulative import time, ``module``'s), in microseconds, from one run."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import pytest; import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    times: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        found = _LINE.match(line)  # top-level imports only: no indentation before the name
        if found:
            times[found.group(2)] = float(found.group(1))
    return times["pytest"], times[module]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 5 if args.quick else 21
    contenders = {"sockshock": "sockshock.pytest_plugin", "hypothesis": "_hypothesis_pytestplugin"}
    ratios: dict[str, list[float]] = {name: [] for name in contenders}
    pytest_ms: list[float] = []
    plugin_ms: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for _ in range(rounds):
        for name in order:
            base, plugin = _cumulative(contenders[name])
            ratios[name].append(plugin / base)
            plugin_ms[name].append(plugin / 1000)
            pytest_ms.append(base / 1000)
        order.reverse()
    ratio = statistics.median(ratios["sockshock"])
    text, met = verdict(ratio, GOAL, higher_is_better=False)
    print(
        f"pytest's own import: median {statistics.median(pytest_ms):.1f} ms over "
        f"{len(pytest_ms)} runs"
    )
    for name, module in contenders.items():
        print(
            f"{module:<26} median {statistics.median(plugin_ms[name]):6.1f} ms, "
            f"median of {rounds} per-round ratios {statistics.median(ratios[name]):.3f}x "
            f"(spread {min(ratios[name]):.3f}x-{max(ratios[name]):.3f}x)"
        )
    print(f"sockshock.pytest_plugin / pytest: {ratio:.3f}x (goal <= {GOAL}x): {text}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run one benchmark and keep what it printed as a dated result file.

    .venv/bin/python bench/record.py bench_socketserver [--quick ...]

writes ``bench/results/<date>-<benchmark>.json``: the command, when and where it ran
(Python, CPU count, load average before and after, the commit), whether every goal
was met, and the benchmark's output, verbatim. The docs' benchmark page reads these
files; figures are never copied into the docs by hand. The benchmarks exit with 1
when a goal is missed: that run is recorded too, as such. A run that crashes (any
other status, or a traceback) writes nothing.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def _commit() -> str:
    proc = subprocess.run(
        ["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "unknown"


def main(argv: list[str]) -> int:
    if not argv or not (BENCH / f"{argv[0]}.py").is_file():
        names = sorted(p.stem for p in BENCH.glob("bench_*.py"))
        print(f"usage: record.py BENCHMARK [ARGS...]; BENCHMARK is one of {', '.join(names)}")
        return 2
    name, args = argv[0], argv[1:]
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args], capture_output=True, text=True
    )
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    crashed = proc.returncode not in (0, 1) or "Traceback (most recent call last)" in proc.stderr
    if crashed:
        print(f"record.py: {name} exited with {proc.returncode}; nothing recorded", file=sys.stderr)
        return proc.returncode or 1
    record = {
        "benchmark": name,
        "command": " ".join([".venv/bin/python", f"bench/{name}.py", *args]),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "commit": _commit(),
        "goals": "met" if proc.returncode == 0 else "at least one goal missed",
        "output": proc.stdout,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{started:%Y-%m-%d}-{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"recorded in {path.relative_to(BENCH.parent)}", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

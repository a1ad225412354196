"""Pieces shared by the benchmarks: handlers, a server runner, the load client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any


def echo_handler(module: Any) -> Any:
    class Echo(module.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line)

    return Echo


def datagram_echo(module: Any) -> Any:
    class Echo(module.DatagramRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.read())

    return Echo


class Running:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class LoadClient:
    """The client process: runs one load command at a time against a server."""

    def __init__(self) -> None:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_client.py")
        self.proc = subprocess.Popen(
            [sys.executable, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def rate(self, name: str, server: Any, count: int, **extra: Any) -> float:
        with Running(server):
            return self.rate_at(name, server.server_address, count, **extra)

    def rate_at(self, name: str, address: Any, count: int, **extra: Any) -> float:
        """Operations per second of the load command ``name`` against ``address``
        (a server someone else runs)."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(
            json.dumps({"name": name, "count": count, "address": address, **extra}) + "\n"
        )
        self.proc.stdin.flush()
        seconds = json.loads(self.proc.stdout.readline())
        return count / seconds

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


#: How much these machines vary from run to run: +-25%.
NOISE = 0.25


def verdict(ratio: float, goal: float, *, higher_is_better: bool = True) -> tuple[str, bool]:
    """Judge the median of per-round ratios against ``goal`` with the noise band.

    Returns the words to print and whether the goal counts as met: "met", "within
    noise" (short of the goal by less than the band: the same code path, or too
    close to call on this machine), or "MISSED".
    """
    if higher_is_better:
        if ratio >= goal:
            return "met", True
        if ratio >= goal * (1 - NOISE):
            return f"within noise (+-{NOISE:.0%})", True
    else:
        if ratio <= goal:
            return "met", True
        if ratio <= goal * (1 + NOISE):
            return f"within noise (+-{NOISE:.0%})", True
    return "MISSED", False


def alternate(contenders: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """Call each contender once per round, the order reversing every round; the
    results, per contender, in round order (for per-round ratios)."""
    results: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for _ in range(rounds):
        for name in order:
            results[name].append(contenders[name]())
        order.reverse()
    return results


def ratios(results: dict[str, list[float]], a: str, b: str) -> list[float]:
    """Per-round ratios a/b."""
    return [x / y for x, y in zip(results[a], results[b], strict=True)]

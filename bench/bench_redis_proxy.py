"""redis-benchmark against redis-server, direct and through ``sockshock proxy``.

    python bench/bench_redis_proxy.py                     # about a minute
    python bench/bench_redis_proxy.py --quick             # a smoke run
    python bench/bench_redis_proxy.py --src /work/main/src   # the proxy of another tree ("before")

Needs ``redis-server`` and ``redis-benchmark`` on PATH (Debian: ``apt-get install
redis-server redis-tools``); without them it says so and exits 0. It starts its own
redis-server on a free loopback port (no persistence) and the proxy as a separate
process (``python -m sockshock proxy``), as a toxiproxy user would run it.

Each round runs every workload direct and through each proxy configuration, the
order alternating round by round; each figure is the median of the per-round
ratios (proxied / direct requests per second), so that drift of the machine's
speed cancels out. Machines vary by about +-25% (``_common.NOISE``): a figure
within that band of its goal is "within noise", not a miss.

Workloads (the issue's): ``GET -c 10`` and ``PING -c 1`` (``ping_mbulk``). Proxy
configurations: ``empty`` (no faults; goal >= 0.6x direct) and ``idle model`` (a
model that looks at every chunk both ways and never fires,
``ResetAfter(1000000000000, direction='both')``; goal: at most 20% below ``empty``).
It also reports the CPU time the proxy process and redis-server spent per
request, from /proc.

Where a C compiler is installed it also runs an anchor: a forty-line C proxy that
does nothing but epoll and splice (``--no-anchor`` leaves it out). It is what a
user-space proxy costs at the least on this machine -- the two extra hops, their
system calls and wake-ups -- so that the gap to direct can be split into the
kernel's part and Python's.

Where HAProxy is installed (Debian ``haproxy``) it runs as a second anchor, in
``mode tcp`` with its defaults: an industrial proxy written in C, for the same
comparison (``--no-anchor`` leaves it out too).

The CPU budget. With the client, the server and the proxy on the same machine the
runs are CPU-bound, so the benchmark also measures redis-benchmark's own CPU per
request (as a reaped child) and prints, per workload, the ratio the machine's CPUs
allow each contender, ``busy CPUs / (client + server + proxy CPU per request)``
over the direct rate: from the CPUs kept as busy as the direct runs kept them, to
every CPU busy (the hard ceiling). Beside it: how much CPU per request a proxy may
spend for the 0.6x goal. When the anchors' CPU per request is above that, the
goal is beyond any user-space proxy on this machine, not only beyond this one.

``--threads`` adds another design as a contender: a Python proxy with a thread per
direction blocking in splice (no faults, no control: a prototype, to measure what
the design would give).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import NOISE, verdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WORKLOADS = {
    "GET -c 10": ["-t", "get", "-c", "10"],
    "PING -c 1": ["-t", "ping_mbulk", "-c", "1"],
}
CONFIGS = {
    "empty": [],
    "idle model": ["--fault", "ResetAfter(1000000000000, direction='both')"],
}
EMPTY_GOAL = 0.6  # proxied / direct, at least
IDLE_GOAL = 0.8  # idle model / empty, at least (a further 20% at most)
ANCHOR = "C splice (anchor)"
HAPROXY = "HAProxy (anchor)"
THREADS = "threads (prototype)"
THREADS_SOURCE = r"""
import os, socket, sys, threading

upstream = ("127.0.0.1", int(sys.argv[1]))
listener = socket.create_server(("127.0.0.1", 0))
print(f"127.0.0.1:{listener.getsockname()[1]}", flush=True)
threading.stack_size(256 * 1024)


def pump(src, dst):
    r, w = os.pipe()
    try:
        while n := os.splice(src.fileno(), w, 1 << 20):
            while n:
                n -= os.splice(r, dst.fileno(), n)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


while True:
    client, _ = listener.accept()
    server = socket.create_connection(upstream)
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=pump, args=(client, server), daemon=True).start()
    threading.Thread(target=pump, args=(server, client), daemon=True).start()
"""
ANCHOR_SOURCE = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
/* The physical limit of a user-space proxy: epoll, splice, nothing else. */
#define MAXFD 65536
static int peer[MAXFD], pr[MAXFD], pw[MAXFD];
int main(int argc, char **argv) {
    int up = atoi(argv[1]), one = 1;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind(ls, (void *)&a, sizeof a); listen(ls, 512);
    socklen_t l = sizeof a; getsockname(ls, (void *)&a, &l);
    printf("127.0.0.1:%d\n", ntohs(a.sin_port)); fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[64];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                int u = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons(up)};
                inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
                connect(u, (void *)&b, sizeof b);
                fcntl(u, F_SETFL, O_NONBLOCK);
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                int p1[2], p2[2]; pipe2(p1, O_NONBLOCK); pipe2(p2, O_NONBLOCK);
                peer[c] = u; peer[u] = c; pr[c] = p1[0]; pw[c] = p1[1]; pr[u] = p2[0]; pw[u] = p2[1];
                ev.data.fd = c; epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                ev.data.fd = u; epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
                continue;
            }
            ssize_t got = splice(fd, NULL, pw[fd], NULL, 1 << 16, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (got <= 0) {
                if (got == 0) { int p = peer[fd]; close(fd); close(p); close(pr[fd]); close(pw[fd]); close(pr[p]); close(pw[p]); }
                continue;
            }
            while (got > 0) {
                ssize_t put = splice(pr[fd], NULL, peer[fd], NULL, got, SPLICE_F_MOVE);
                if (put <= 0) break;
                got -= put;
            }
        }
    }
}
"""


def build_anchor(where: str) -> str | None:
    """The C anchor proxy, compiled in ``where``; None without a compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source = os.path.join(where, "splice_proxy.c")
    binary = os.path.join(where, "splice_proxy")
    with open(source, "w", encoding="ascii") as f:
        f.write(ANCHOR_SOURCE)
    done = subprocess.run([compiler, "-O2", "-o", binary, source], capture_output=True, check=False)
    return binary if done.returncode == 0 else None


def start_haproxy(where: str, upstream: int) -> tuple[subprocess.Popen[str], int] | None:
    """HAProxy forwarding to ``upstream`` in plain TCP mode; None when not installed."""
    binary = shutil.which("haproxy")
    if binary is None:
        return None
    port = free_port()
    config = os.path.join(where, "haproxy.cfg")
    with open(config, "w", encoding="ascii") as f:
        f.write(
            "global\n  maxconn 4096\n"
            "defaults\n  mode tcp\n  timeout connect 5s\n"
            "  timeout client 60s\n  timeout server 60s\n"
            f"listen redis\n  bind 127.0.0.1:{port}\n  server redis 127.0.0.1:{upstream}\n"
        )
    proc = subprocess.Popen(
        [binary, "-db", "-f", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_for(port)
    return proc, port


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (the redis-benchmark runs)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def benchmark(port: int, workload: list[str], requests: int) -> float:
    """Requests per second of one redis-benchmark run."""
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-n",
            str(requests),
            "--csv",
            *workload,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    line = [row for row in out.splitlines() if row.startswith('"') and not row.startswith('"test"')]
    return float(line[-1].split(",")[1].strip('"'))


def start_proxy(src: str, upstream: int, extra: list[str]) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sockshock",
            "proxy",
            "--upstream",
            f"127.0.0.1:{upstream}",
            "--seed",
            "1",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
    return proc, port


def median_of(samples: list[tuple[float, float, float]], i: int) -> float:
    return statistics.median(sample[i] for sample in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None, help="per redis-benchmark run")
    parser.add_argument(
        "--src", default=os.path.join(ROOT, "src"), help="the sockshock source tree to run"
    )
    parser.add_argument("--no-anchor", action="store_true", help="leave out the C anchor proxy")
    parser.add_argument(
        "--threads", action="store_true", help="add the thread-per-direction prototype"
    )
    args = parser.parse_args()
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        print(
            "redis-server or redis-benchmark not installed (apt-get install redis-server "
            "redis-tools): skipped"
        )
        return 0
    rounds = args.rounds or (2 if args.quick else 7)
    requests = args.requests or (5000 if args.quick else 30000)
    redis_port = free_port()
    workdir = tempfile.mkdtemp(prefix="sockshock-redis-")
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxies: dict[str, tuple[subprocess.Popen[str], int]] = {}
    rps: dict[tuple[str, str], list[float]] = {}
    # (proxy, redis-server, redis-benchmark) CPU seconds per request
    cpu: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    try:
        wait_for(redis_port)
        subprocess.run(
            ["redis-cli", "-p", str(redis_port), "set", "key:__rand_int__", "x"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        for name, extra in CONFIGS.items():
            proxies[name] = start_proxy(args.src, redis_port, extra)
        anchor = None if args.no_anchor else build_anchor(workdir)
        if anchor is not None:
            proc = subprocess.Popen(
                [anchor, str(redis_port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            proxies[ANCHOR] = (proc, int(proc.stdout.readline().strip().rsplit(":", 1)[1]))
        haproxy = None if args.no_anchor else start_haproxy(workdir, redis_port)
        if haproxy is not None:
            proxies[HAPROXY] = haproxy
        if args.threads:
            proc = subprocess.Popen(
                [sys.executable, "-c", THREADS_SOURCE, str(redis_port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            proxies[THREADS] = (proc, int(proc.stdout.readline().strip().rsplit(":", 1)[1]))
        targets = {"direct": redis_port, **{n: p for n, (_, p) in proxies.items()}}
        for workload in WORKLOADS.values():  # warm up
            for port in targets.values():
                benchmark(port, workload, requests // 10)
        for i in range(rounds):
            order = list(targets) if i % 2 == 0 else list(reversed(targets))
            for wname, workload in WORKLOADS.items():
                for target in order:
                    pid = proxies[target][0].pid if target in proxies else None
                    before = (
                        cpu_seconds(pid) if pid else 0.0,
                        cpu_seconds(redis.pid),
                        children_cpu(),
                    )
                    rate = benchmark(targets[target], workload, requests)
                    after = (
                        cpu_seconds(pid) if pid else 0.0,
                        cpu_seconds(redis.pid),
                        children_cpu(),
                    )
                    rps.setdefault((wname, target), []).append(rate)
                    cpu.setdefault((wname, target), []).append(
                        (
                            (after[0] - before[0]) / requests,
                            (after[1] - before[1]) / requests,
                            (after[2] - before[2]) / requests,
                        )
                    )
    finally:
        for proc, _ in proxies.values():
            proc.terminate()
            proc.communicate(timeout=10)
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    met = True
    print(
        f"{rounds} rounds, alternating; {requests} requests per run; medians of per-round "
        f"ratios; noise band +-{NOISE:.0%}; proxy from {os.path.abspath(args.src)}"
    )
    cpus = os.cpu_count() or 1
    for wname in WORKLOADS:
        direct = rps[(wname, "direct")]
        direct_rate = statistics.median(direct)
        direct_cpu = [median_of(cpu[(wname, "direct")], i) for i in (1, 2)]
        busy = direct_rate * sum(direct_cpu)  # CPUs the direct runs kept busy
        allowed = [b / (EMPTY_GOAL * direct_rate) - sum(direct_cpu) for b in (busy, cpus)]
        print(
            f"\n{wname}: direct {direct_rate:,.0f} req/s, redis-server "
            f"{direct_cpu[0] * 1e6:.1f} us CPU/request, redis-benchmark "
            f"{direct_cpu[1] * 1e6:.1f}: {busy:.2f} of {cpus} CPUs busy"
        )
        print(
            f"  CPU budget: {EMPTY_GOAL}x direct leaves a proxy {allowed[0] * 1e6:.1f} us "
            f"CPU/request with the CPUs as busy as direct kept them, {allowed[1] * 1e6:.1f} "
            "with every CPU busy (client and server costing what they did direct)"
        )
        extra = [n for n in (ANCHOR, HAPROXY, THREADS) if (wname, n) in rps]
        for name in [*CONFIGS, *extra]:
            mine = rps[(wname, name)]
            ratios = [m / d for m, d in zip(mine, direct, strict=True)]
            ratio = statistics.median(ratios)
            text, ok = verdict(ratio, EMPTY_GOAL)
            line = f"  {name:<17} {statistics.median(mine):9,.0f} req/s  {ratio:.2f}x direct"
            if name == "empty":
                line += f" (goal >= {EMPTY_GOAL}x): {text}"
                met = met and ok
            elif name == ANCHOR:
                line += " (the least a user-space proxy costs here)"
            elif name == HAPROXY:
                line += " (an industrial C proxy, for comparison)"
            elif name == THREADS:
                line += " (another design, for comparison)"
            else:
                empty = rps[(wname, "empty")]
                vs = statistics.median(m / e for m, e in zip(mine, empty, strict=True))
                text, ok = verdict(vs, IDLE_GOAL)
                line += f", {vs:.2f}x empty (goal >= {IDLE_GOAL}x): {text}"
                met = met and ok
            proxy_cpu, redis_cpu, client_cpu = (median_of(cpu[(wname, name)], i) for i in range(3))
            per_request = (proxy_cpu + redis_cpu + client_cpu) * direct_rate
            budget = [b / per_request for b in (busy, cpus)]
            print(line)
            print(
                f"              proxy {proxy_cpu * 1e6:.1f} us CPU/request, redis-server "
                f"{redis_cpu * 1e6:.1f}, redis-benchmark {client_cpu * 1e6:.1f}: "
                f"CPU allows {budget[0]:.2f}x-{budget[1]:.2f}x"
            )
            print(f"              per-round ratios {', '.join(f'{r:.2f}' for r in ratios)}")
    print(
        f"\npython {sys.version.split()[0]}, {os.cpu_count()} cpus, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

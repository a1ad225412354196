"""Benchmark TLSSocket against the standard library's SSLSocket, in one run.

    python bench/bench_tls.py            # about 30 seconds
    python bench/bench_tls.py --quick    # a smoke run

The server end is the contender -- ``TLSSocket(sock, ctx, server_side=True)`` or
``ctx.wrap_socket(sock, server_side=True)`` over one end of a
``socket.socketpair()``, in blocking mode as socketserver hands requests to
handlers -- and the client end is always a stdlib ``SSLSocket`` in a separate
process (the other end of the pair is passed to it with SCM_RIGHTS), so that
client and server do not share a GIL. (If the client fails, it closes its end:
the server sees end of file, and the run stops with the client's error.)

* handshakes/s: a new socket pair per handshake; the server completes the
  handshake and sends one byte, which the client waits for.
* round trips/s: one connection; the client sends ``ping\n``, the server
  ``recv()``s it and ``sendall()``s it back.

Contenders alternate round by round (which one goes first alternates too); each
round gives a ratio TLSSocket/SSLSocket, and the median ratio is reported with
the smallest and largest. On a shared 2-core machine the noise band is +-25%: a
median within 0.75x-1.25x is parity as far as this benchmark can tell.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from sockshock._tls import SERVER_HOSTNAME, TLSSocket, certificate_authority, server_context

NOISE = 0.25
SERVER_CTX = server_context()
WRAPPERS: dict[str, Callable[[socket.socket], Any]] = {
    "SSLSocket": lambda sock: SERVER_CTX.wrap_socket(
        sock, server_side=True, do_handshake_on_connect=False
    ),
    "TLSSocket": lambda sock: TLSSocket(sock, SERVER_CTX, server_side=True),
}


def client_process(control: socket.socket, ca_pem: str) -> None:
    """The client side: one job per message, a socket passed with each."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca_pem)
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1024, 1)
        if not message:
            return
        kind, count = json.loads(message)
        sock = socket.socket(fileno=fds[0])
        sock.settimeout(10)
        with context.wrap_socket(
            sock, server_hostname=SERVER_HOSTNAME, do_handshake_on_connect=False
        ) as client:
            client.do_handshake()
            start = time.perf_counter()
            if kind == "handshake":
                assert client.recv(1) == b"!"
            for _ in range(count):
                client.sendall(b"ping\n")
                assert client.recv(10) == b"ping\n"
            control.sendall(json.dumps(time.perf_counter() - start).encode() + b"\n")


class Client:
    """The client process and the control channel to it."""

    def __init__(self) -> None:
        self.control, theirs = socket.socketpair()
        self.control.settimeout(60)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--client", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(certificate_authority().cert_pem.bytes().decode())
        self.proc.stdin.close()
        theirs.close()
        self.replies = self.control.makefile("rb")

    def start(self, kind: str, sock: socket.socket, count: int = 0) -> None:
        socket.send_fds(self.control, [json.dumps([kind, count]).encode()], [sock.fileno()])
        sock.close()

    def result(self) -> float:
        line = self.replies.readline()
        if not line:
            raise RuntimeError("the client process failed (see above)")
        return float(json.loads(line))

    def close(self) -> None:
        self.control.sendall(b"")
        self.replies.close()
        self.control.close()
        self.proc.wait(10)


def handshakes(client: Client, wrap: Callable[[socket.socket], Any], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        ours, theirs = socket.socketpair()  # blocking, as socketserver's requests
        client.start("handshake", theirs)
        with wrap(ours) as server:
            server.do_handshake()
            server.sendall(b"!")
            client.result()
    return count / (time.perf_counter() - start)


def round_trips(client: Client, wrap: Callable[[socket.socket], Any], count: int) -> float:
    ours, theirs = socket.socketpair()  # blocking, as socketserver's requests
    client.start("round_trips", theirs, count)
    with wrap(ours) as server:
        for _ in range(count):
            server.sendall(server.recv(100))
    return count / client.result()


def compare(
    name: str,
    measure: Callable[[Client, Callable[[socket.socket], Any], int], float],
    client: Client,
    rounds: int,
    count: int,
) -> str:
    rates: dict[str, list[float]] = {"SSLSocket": [], "TLSSocket": []}
    ratios = []
    for round_number in range(rounds):
        order = list(WRAPPERS) if round_number % 2 == 0 else list(reversed(WRAPPERS))
        this_round = {contender: measure(client, WRAPPERS[contender], count) for contender in order}
        for contender, rate in this_round.items():
            rates[contender].append(rate)
        ratios.append(this_round["TLSSocket"] / this_round["SSLSocket"])
    ratio = statistics.median(ratios)
    verdict = (
        "parity (within the noise band)"
        if abs(ratio - 1) <= NOISE
        else "faster"
        if ratio > 1
        else "slower"
    )
    return (
        f"{name:<14} SSLSocket {statistics.median(rates['SSLSocket']):>9,.1f}/s   "
        f"TLSSocket {statistics.median(rates['TLSSocket']):>9,.1f}/s   "
        f"ratio {ratio:.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]  {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke run")
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        client_process(socket.socket(fileno=args.client), sys.stdin.read())
        return 0
    rounds, handshake_count, trip_count = (2, 20, 500) if args.quick else (9, 150, 5000)
    print(
        f"Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}, {os.cpu_count()} CPUs; "
        f"{rounds} rounds, contenders alternating; ratio = TLSSocket/SSLSocket, "
        f"median [min-max] of per-round ratios, noise band +-{NOISE:.0%}"
    )
    client = Client()
    try:
        compare("warm-up", handshakes, client, 1, 5)
        print(compare("handshakes", handshakes, client, rounds, handshake_count))
        print(compare("round trips", round_trips, client, rounds, trip_count))
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""TLS servers: sockshock's ``serving(..., tls=...)`` against a hand-written
standard-library TLS server, in one run.

    python bench/bench_tls_servers.py            # about a minute
    python bench/bench_tls_servers.py --quick    # a smoke run

The hand-written server is what people write with the standard library: a
``socketserver.ThreadingTCPServer`` whose ``get_request()`` wraps each accepted
socket with ``SSLContext.wrap_socket(..., server_side=True)`` (the handshake in the
serving loop). sockshock's is ``serving("ThreadingTCPServer", Echo, tls=context)``
(the handshake in the handler's thread, TLS through ``TLSSocket``), without faults
and with an empty fault plan (the fault layer underneath, deciding nothing). The
load -- stdlib ``SSLSocket`` clients -- comes from a separate process.

* handshakes/s: connect, handshake, one round trip, close.
* round trips/s: one connection, ``ping\\n`` and back.

Contenders alternate round by round; each figure is the median of per-round
ratios, judged with a +-25% noise band. Goals: sockshock's TLS server >= 1.0x the
hand-written one; with an empty plan >= 0.8x of without.
"""

from __future__ import annotations

import argparse
import os
import socketserver as stdlib
import ssl
import statistics
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sockshock
from _common import LoadClient, alternate, echo_handler, ratios, verdict
from sockshock import faults as F
from sockshock import tls as T

CONTEXT = T.server_context()
# The load process trusts the same CA: its PEM, through the public client context.
CA = "".join(ssl.DER_cert_to_PEM_cert(der) for der in T.client_context().get_ca_certs(True))


class HandWritten(stdlib.ThreadingTCPServer):
    daemon_threads = True

    def get_request(self) -> Any:
        sock, address = super().get_request()
        return CONTEXT.wrap_socket(sock, server_side=True), address


def hand_written(client: LoadClient, name: str, count: int) -> float:
    return client.rate(name, HandWritten(("127.0.0.1", 0), echo_handler(stdlib)), count, ca=CA)


def through_serving(client: LoadClient, name: str, count: int, faults: Any = None) -> float:
    with sockshock.serving(
        "ThreadingTCPServer", echo_handler(sockshock.socketserver), tls=CONTEXT, faults=faults
    ) as srv:
        return client.rate_at(name, srv.address, count, ca=CA)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, handshakes, trips = (2, 50, 500) if args.quick else (9, 200, 5000)
    client = LoadClient()
    ok = True
    for name, count in (("tls_handshakes", handshakes), ("tls_round_trips", trips)):
        contenders: dict[str, Callable[[], float]] = {
            "stdlib": lambda name=name, count=count: hand_written(client, name, count),
            "sockshock": lambda name=name, count=count: through_serving(client, name, count),
            "sockshock, empty plan": lambda name=name, count=count: through_serving(
                client, name, count, faults=F.FaultPlan(seed=0)
            ),
        }
        results = alternate(contenders, rounds)
        label = name.replace("tls_", "").replace("_", " ") + "/s"
        print(
            f"{label}: " + ", ".join(f"{k} {statistics.median(v):,.0f}" for k, v in results.items())
        )
        for a, b, goal in (
            ("sockshock", "stdlib", 1.0),
            ("sockshock, empty plan", "sockshock", 0.8),
        ):
            ratio = statistics.median(ratios(results, a, b))
            text, met = verdict(ratio, goal)
            ok &= met
            print(f"  {a} / {b}: {ratio:.2f}x (goal >= {goal}x): {text}")
    client.close()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

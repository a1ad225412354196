"""Known-bad handlers and servers: each carries the bug a shipped scenario is meant
to catch (tests/test_scenarios.py runs every scenario against one of them, and it
must fail). None of them spins: a stuck one is released when the harness stops it."""

from __future__ import annotations

import threading
from typing import Any

from sockshock import socketserver as ss

RELEASE = threading.Event()  # set by the tests: what waits on it ends


class ShutsDownOnReset(ss.StreamRequestHandler):
    """Treats one client's reset as fatal to the whole server."""

    def handle(self) -> None:
        try:
            for line in self.rfile:
                self.wfile.write(line)
        except ConnectionResetError:
            threading.Thread(target=self.server.shutdown).start()


class StrictDatagrams(ss.DatagramRequestHandler):
    """Assumes each client's request arrives once: a second one is an error (but a
    request sent again after a lost reply, or duplicated, does arrive twice)."""

    def handle(self) -> None:
        seen = self.server.__dict__.setdefault("culprit_seen", set())
        key = (self.client_address, self.packet)
        if key in seen:
            raise ValueError(f"request {self.packet!r} from {self.client_address} twice")
        seen.add(key)
        self.wfile.write(self.packet)


class HoldsOnShutdown(ss.StreamRequestHandler):
    """Takes its time: a stop must wait for it."""

    def handle(self) -> None:
        line = self.rfile.readline()
        RELEASE.wait(2.0)
        self.wfile.write(line)


class StopsOnAcceptError(ss.ThreadingTCPServer):
    """Treats a failed accept() (EMFILE) as fatal: stops serving."""

    def get_request(self) -> Any:
        try:
            return super().get_request()
        except OSError:
            threading.Thread(target=self.shutdown).start()
            raise

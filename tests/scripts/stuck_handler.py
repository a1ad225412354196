"""Run by test_never_hang: a served server whose handler never returns.

Usage: python stuck_handler.py SERVER_CLASS sleep|swallow [daemon]
Prints one JSON line {"stop": seconds, "error": message} and exits normally: the
stuck handler (and everything the harness abandoned) must not keep it alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time

import sockshock
from sockshock import socketserver as ss

server_class, how = sys.argv[1], sys.argv[2]
entered_r, entered_w = os.pipe()


class Stuck(ss.BaseRequestHandler):
    def handle(self) -> None:
        os.write(entered_w, b"!")
        if how == "sleep":
            time.sleep(10**6)
        while True:  # "swallow": ignore every error and end of file, forever
            with contextlib.suppress(BaseException):
                self.request.recv(10)


attrs = {"daemon_threads": True} if "daemon" in sys.argv[3:] else {}
started = time.monotonic()
try:
    with sockshock.serving(server_class, Stuck, shutdown_timeout=0.1, **attrs) as srv:
        srv.connect().sendall(b"x")
        # The handler (in a thread, or in a forked child) says it has begun.
        assert select.select([entered_r], [], [], 5)[0], "the handler never ran"
        started = time.monotonic()
except sockshock.errors.ShutdownTimeout as exc:
    print(json.dumps({"stop": time.monotonic() - started, "error": str(exc)}), flush=True)
else:
    print(json.dumps({"stop": time.monotonic() - started, "error": None}), flush=True)

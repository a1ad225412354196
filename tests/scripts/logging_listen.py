"""Run by test_real_servers: logging.config.listen() when the peer goes away mid-config.

Usage: python logging_listen.py eof|reset. Prints what sockshock.inject() raised (or
"no error") and exits on its own even though the listener's handler may spin forever.
"""

from __future__ import annotations

import json
import logging.config
import socket
import struct
import sys

import sockshock
from sockshock import faults as F

CONFIG = json.dumps(
    {"version": 1, "incremental": True, "loggers": {"sockshock.demo": {"level": "DEBUG"}}}
).encode()
fault = F.EOFAfter(4 + 10) if sys.argv[1] == "eof" else F.ResetAfter(4 + 10)
try:
    with sockshock.inject([fault], seed=1, shutdown_timeout=0.3) as servers:
        listener = logging.config.listen(0)
        listener.start()
        (server,) = servers.wait(1)
        with socket.create_connection(server.address[:2], timeout=5) as client:
            client.sendall(struct.pack(">L", len(CONFIG)) + CONFIG)
        logging.config.stopListening()
        listener.join(5)
        assert not listener.is_alive(), "server_close() never returned"
except Exception as exc:  # what the test looks at
    print(f"{type(exc).__name__}: {exc}")
else:
    print("no error")

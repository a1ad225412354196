"""Run by test_stdlib_defects: a server whose process really runs out of descriptors.

Usage: python _emfile_probe.py stdlib|sockshock  -> prints JSON {attempts, cpu, served}:
the accept() attempts (each a real accept() failing with EMFILE) and the CPU seconds
spent in a 0.3 s window, and what the waiting client got once descriptors were free.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import threading
import time

if sys.argv[1] == "sockshock":
    import sockshock.socketserver as module
else:
    import socketserver as module  # type: ignore[no-redef]


class Echo(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


class Counting(module.TCPServer):  # type: ignore[name-defined,misc]
    attempts = 0

    def get_request(self) -> tuple[socket.socket, object]:
        Counting.attempts += 1
        return super().get_request()  # type: ignore[no-any-return]


server = Counting(("127.0.0.1", 0), Echo)
thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                          daemon=True)
thread.start()
# One request first: the loop runs (and holds its wake-up descriptors) before the
# process runs out of them.
with socket.create_connection(server.server_address, timeout=5) as first:
    first.sendall(b"first\n")
    assert first.recv(100) == b"first\n"
client = socket.socket()
client.settimeout(2)

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 64), hard))
hogs = []
try:
    while True:
        hogs.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass  # EMFILE: not one descriptor left for accept()

client.connect(server.server_address)  # waits in the backlog: accept() fails
client.sendall(b"served\n")
usage = resource.getrusage(resource.RUSAGE_SELF)
before, attempts_before = usage.ru_utime + usage.ru_stime, Counting.attempts
time.sleep(0.3)  # the window in which the loop's work is measured
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - before
attempts = Counting.attempts - attempts_before

for fd in hogs:  # descriptors are free again
    os.close(fd)
try:
    served = client.recv(100).decode()
except OSError as exc:
    served = repr(exc)
print(json.dumps({"attempts": attempts, "cpu": cpu, "served": served}))
os._exit(0)  # the stdlib's loop may still be spinning

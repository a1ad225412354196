"""Run by test_stdlib_defects: a server whose process really runs out of descriptors.

Usage: python _emfile_probe.py stdlib|sockshock  -> prints JSON {emfile, attempts,
cpu, served}: how many accept() calls failed with EMFILE (the precondition: at
least one), the accept() attempts and the CPU seconds spent in a 0.3 s window,
and what the waiting client got once descriptors were free.

Deterministic: the loop is seen running (holding its wake-up descriptors, for
sockshock) before the process runs out of descriptors, no descriptor is released
meanwhile (no earlier connection whose close could free one), and the exhaustion
is checked before the client connects.
"""

from __future__ import annotations

import errno
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
    emfile = 0
    looping = threading.Event()

    def get_request(self) -> tuple[socket.socket, object]:
        Counting.attempts += 1
        try:
            return super().get_request()  # type: ignore[no-any-return]
        except OSError as exc:
            if exc.errno == errno.EMFILE:
                Counting.emfile += 1
            raise

    def service_actions(self) -> None:
        Counting.looping.set()  # serve_forever() is running


server = Counting(("127.0.0.1", 0), Echo)
client = socket.socket()  # made now: it needs a descriptor
client.settimeout(2)
thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
thread.start()
assert Counting.looping.wait(5), "serve_forever() never ran"

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 64), hard))
hogs = []
try:
    while True:
        hogs.append(os.open(os.devnull, os.O_RDONLY))
except OSError as exc:  # not one descriptor left for accept()
    if exc.errno != errno.EMFILE:
        raise

client.connect(server.server_address)  # waits in the backlog: accept() fails
client.sendall(b"served\n")
usage = resource.getrusage(resource.RUSAGE_SELF)
before, attempts_before = usage.ru_utime + usage.ru_stime, Counting.attempts
time.sleep(0.3)  # the window in which the loop's work is measured
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - before
attempts = Counting.attempts - attempts_before
emfile = Counting.emfile

for fd in hogs:  # descriptors are free again
    os.close(fd)
try:
    served = client.recv(100).decode()
except OSError as exc:
    served = repr(exc)
print(json.dumps({"emfile": emfile, "attempts": attempts, "cpu": cpu, "served": served}))
os._exit(0)  # the stdlib's loop may still be spinning

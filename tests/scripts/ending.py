"""Run by test_reliability: a process that ends abruptly (or would never end) while
sockshock serves.

Usage: python ending.py forking|stray-thread|handler-fork

* ``forking``: a ForkingTCPServer whose handler (in a forked child) sleeps for
  ever, served with a forked child's report directory and a Unix socket directory
  of its own; prints one JSON line ``{"child": pid, "directories": [...]}`` once
  the child runs, then waits for the signal the test sends.
* ``stray-thread``: a handler starts a non-daemon thread that never ends; the leak
  audit reports it (LeakError, uncaught): the process must still end, within
  ``EXIT_GRACE`` (set to 0.5 s here).
* ``handler-fork``: a handler of a ThreadingTCPServer forks a child that sleeps
  for ever, then the script prints the child's pid and waits for the signal.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import time

import sockshock
from sockshock import socketserver as ss

try:
    import sockshock._util._ending as ending
except ImportError:  # (an older sockshock, to show what failed before)
    pass
else:
    ending.EXIT_GRACE = 0.5

# The signals the tests send get their usual actions, whatever this process
# inherited: a test run started with nohup, or as a background job of a script
# (``pytest ... &``), hands its children SIGHUP and SIGINT ignored, and sockshock
# rightly leaves an ignored signal alone -- the script would then wait out its 60 s
# and exit 3 instead of ending by the signal.
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.default_int_handler)

how = sys.argv[1]
pid_r, pid_w = os.pipe()


class SleepsInChild(ss.BaseRequestHandler):
    def handle(self) -> None:
        os.write(pid_w, f"{os.getpid()}\n".encode())
        time.sleep(10**6)


class StartsAThread(ss.BaseRequestHandler):
    def handle(self) -> None:
        threading.Thread(
            target=time.sleep, args=(10**6,), name="stray worker", daemon=False
        ).start()
        os.write(pid_w, b"0\n")


class ForksAChild(ss.BaseRequestHandler):
    def handle(self) -> None:
        pid = os.fork()
        if pid == 0:
            time.sleep(10**6)
            os._exit(0)
        os.write(pid_w, f"{pid}\n".encode())


def read_pid() -> int:
    assert select.select([pid_r], [], [], 10)[0], "the handler never ran"
    return int(os.read(pid_r, 100).split()[0])


def wait_for_signal() -> None:
    time.sleep(60)
    print("no signal came", file=sys.stderr)
    sys.exit(3)


if how == "forking":
    with sockshock.serving("ForkingTCPServer", SleepsInChild) as srv:
        unix = sockshock.serving("ThreadingUnixStreamServer", SleepsInChild)
        with unix as other:
            srv.connect().sendall(b"x")
            child = read_pid()
            directories = [srv._run.reporter.directory, os.path.dirname(other.address)]
            print(json.dumps({"child": child, "directories": directories}), flush=True)
            wait_for_signal()
elif how == "stray-thread":
    with sockshock.audit(), sockshock.serving("ThreadingTCPServer", StartsAThread) as srv:
        srv.connect().sendall(b"x")
        read_pid()
elif how == "handler-fork":
    with sockshock.serving("ThreadingTCPServer", ForksAChild) as srv:
        srv.connect().sendall(b"x")
        print(json.dumps({"child": read_pid(), "directories": []}), flush=True)
        wait_for_signal()

"""Request handlers with real races over shared server state, and correct variants,
for the scheduler's tests, its benchmark (bench/bench_sched.py) and its docs.

Each race comes with its clients, fresh shared state (``attrs()``) and a ``broken``
test of the state and transcripts after a run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sockshock import socketserver
from sockshock.scripts import Read, Send

# -- plain handlers, for the scheduler's other tests ---------------------------------------


class Upper(socketserver.StreamRequestHandler):
    """A line, upper-cased."""

    def handle(self) -> None:
        self.wfile.write(self.rfile.readline().upper())


class DatagramUpper(socketserver.DatagramRequestHandler):
    """A datagram, upper-cased."""

    def handle(self) -> None:
        self.wfile.write(self.rfile.read().upper())


# -- 1. check-then-act across I/O: two buyers, one book ----------------------------------


class Checkout(socketserver.StreamRequestHandler):
    """Checks the stock, asks the client to confirm, then takes the item: between
    the check and the act another handler can sell the last one (oversold)."""

    def handle(self) -> None:
        item = self.rfile.readline().strip().decode()
        stock = self.server.stock  # type: ignore[attr-defined]
        if stock.get(item, 0) <= 0:
            self.wfile.write(b"sold out\n")
            return
        self.wfile.write(b"confirm?\n")
        if self.rfile.readline().strip() != b"yes":
            return
        stock[item] -= 1
        self.wfile.write(b"bought\n")


class LockedCheckout(socketserver.StreamRequestHandler):
    """The correct variant: the lock is held across the I/O, check to act."""

    def handle(self) -> None:
        item = self.rfile.readline().strip().decode()
        with self.server.lock:  # type: ignore[attr-defined]
            stock = self.server.stock  # type: ignore[attr-defined]
            if stock.get(item, 0) <= 0:
                self.wfile.write(b"sold out\n")
                return
            self.wfile.write(b"confirm?\n")
            if self.rfile.readline().strip() != b"yes":
                return
            stock[item] -= 1
            self.wfile.write(b"bought\n")


BUYER = [Send(b"book\n"), Read(until=b"\n"), Send(b"yes\n"), Read(until=b"\n")]


# -- 2. a lost update: each access locked, the update not ---------------------------------


class Deposit(socketserver.StreamRequestHandler):
    """Reads the balance and writes it back plus the deposit, each under the lock,
    but not both under one hold: two deposits can read the same balance."""

    def handle(self) -> None:
        amount = int(self.rfile.readline())
        server: Any = self.server
        with server.lock:
            balance = server.balance
        with server.lock:
            server.balance = balance + amount
        self.wfile.write(b"ok\n")


class AtomicDeposit(socketserver.StreamRequestHandler):
    """The correct variant: read, add and write under one hold."""

    def handle(self) -> None:
        amount = int(self.rfile.readline())
        server: Any = self.server
        with server.lock:
            server.balance += amount
        self.wfile.write(b"ok\n")


DEPOSITOR = [Send(b"10\n"), Read(until=b"\n")]


# -- 3. an ordering bug that needs two preemptions: the last one out closes ----------------


class Journal:
    """A shared resource: open until closed."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True


class SharedJournal(socketserver.StreamRequestHandler):
    """The first connection in opens the shared journal; the last one out closes it
    -- with the handle it kept from opening it, which only the opener has. Each
    step is under the lock and none waits (the request is read before, the reply
    sent after), so only preemptions interleave them, and only "A in, B in, A out,
    B out" (two preemptions: A stopped while it could go on, then B) makes B the
    last one out without being the opener: ``None.close()``."""

    def handle(self) -> None:
        entry = self.rfile.readline()
        server: Any = self.server
        with server.lock:  # in: the first opens
            server.active += 1
            mine = None
            if server.active == 1:
                mine = server.journal = Journal()
        with server.lock:
            server.journal.entries.append(entry)
        with server.lock:  # out: the last closes
            server.active -= 1
            if server.active == 0:
                mine.close()  # type: ignore[union-attr]
        self.wfile.write(b"noted\n")


class ClosingJournal(socketserver.StreamRequestHandler):
    """The correct variant: the last one out closes the shared journal."""

    def handle(self) -> None:
        entry = self.rfile.readline()
        server: Any = self.server
        with server.lock:
            server.active += 1
            if server.active == 1:
                server.journal = Journal()
        with server.lock:
            server.journal.entries.append(entry)
        with server.lock:
            server.active -= 1
            if server.active == 0:
                server.journal.close()
        self.wfile.write(b"noted\n")


WRITER = [Send(b"entry\n"), Read(until=b"\n")]


@dataclass(frozen=True)
class Race:
    """A race, its correct variant, its clients and how to tell it happened."""

    name: str
    handler: type[Any]
    correct: type[Any]
    clients: list[Any]
    attrs: Callable[[], dict[str, Any]]
    broken: Callable[[dict[str, Any], list[Any]], bool]


RACES = [
    Race(
        "check-then-act",
        Checkout,
        LockedCheckout,
        [BUYER, BUYER],
        lambda: {"stock": {"book": 1}, "lock": threading.Lock()},
        lambda attrs, ts: attrs["stock"]["book"] < 0,
    ),
    Race(
        "lost update",
        Deposit,
        AtomicDeposit,
        [DEPOSITOR, DEPOSITOR],
        lambda: {"balance": 0, "lock": threading.Lock()},
        lambda attrs, ts: attrs["balance"] != 20,
    ),
    Race(
        "ordering (two preemptions)",
        SharedJournal,
        ClosingJournal,
        [WRITER, WRITER],
        lambda: {"active": 0, "journal": None, "lock": threading.Lock()},
        lambda attrs, ts: any(t.error is not None for t in ts) or not attrs["journal"].closed,
    ),
]

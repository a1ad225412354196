"""Users' code, type-checked by CI's ``mypy`` (pyproject's ``[tool.mypy] files``):
the public API's signatures must let typical calls pass ``mypy --strict``.

Not a test module (pytest does not collect it); nothing here runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sockshock
from sockshock import socketserver
from sockshock.scripts import ClientScript, Close, HalfClose, Pause, Read, Send


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


def one_client() -> bytes:
    transcript: sockshock.Transcript = sockshock.drive(Echo, b"ping\n")
    return transcript.output


def many_clients() -> list[sockshock.Transcript]:
    script = [Send(b"ping\n"), Read(until=b"\n")]
    return sockshock.drive(Echo, [script, script], server="ThreadingTCPServer", schedule=7)


def explored() -> int:
    def check(schedule: object) -> None:
        sockshock.drive(Echo, [b"a\n", b"b\n"], server="ThreadingTCPServer", schedule=7)

    return len(sockshock.drive.explore(check, runs=3))


def served() -> None:
    with sockshock.serving("ThreadingTCPServer", Echo) as srv, srv.connect() as sock:
        sock.sendall(b"ping\n")


def made_steps() -> Sequence[Send | Read]:
    return [Send(b"ping\n"), Read(until=b"\n")]


def scripts() -> list[ClientScript]:
    """Steps in every form a user writes them."""
    mixed = [Send(b"ping\n"), Pause(0.1), Read(until=b"\n")]  # list[ScriptStep], to mypy
    sends = [Send(b"a"), Send(b"b")]  # list[Send]
    return [
        ClientScript([Send(b"ping\n"), HalfClose(), Read()]),
        ClientScript(mixed),
        ClientScript(sends, timeout=1.0),
        ClientScript((Send(b"x"), Close())),
        ClientScript(Send(bytes([byte])) for byte in b"abc"),
        ClientScript(made_steps()),
        ClientScript([*made_steps(), Close()]),
    ]


def driven_steps() -> list[sockshock.Transcript]:
    steps = [Send(b"ping\n"), Read(until=b"\n")]
    alone = sockshock.drive(Echo, steps)
    script = ClientScript(steps)
    return [
        alone,
        *sockshock.drive(Echo, [script, script], server="ThreadingTCPServer", schedule=7),
    ]


def not_steps() -> None:
    """Expected type errors: ``--strict`` warns of an unused ``type: ignore``, so CI
    fails if one of these ever type-checks."""
    ClientScript(b"ping\n")  # type: ignore[arg-type]
    ClientScript([Send(b"x"), b"y"])  # type: ignore[list-item]
    ClientScript(Send(b"x"))  # type: ignore[arg-type]

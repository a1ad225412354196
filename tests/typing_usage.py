"""Users' code, type-checked by CI's ``mypy`` (pyproject's ``[tool.mypy] files``):
the public API's signatures must let typical calls pass ``mypy --strict``.

Not a test module (pytest does not collect it); nothing here runs.
"""

from __future__ import annotations

import sockshock
from sockshock import socketserver
from sockshock.scripts import Read, Send


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

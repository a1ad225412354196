"""Small request handlers for demonstrations, checks and tests.

``LineEcho`` and ``DatagramEcho`` are correct; the ``Naive*`` handlers carry the
classic bugs that sockshock's faults expose (one ``recv`` is not one message; one
``send`` is not the whole buffer).
"""

from __future__ import annotations

from sockshock import socketserver
from sockshock._util import exported_by

__all__ = ["DatagramEcho", "LineEcho", "NaiveRecvEcho", "NaiveSendEcho"]


@exported_by("sockshock.handlers")
class LineEcho(socketserver.StreamRequestHandler):
    """Echo every line back until the client closes its side."""

    def handle(self) -> None:
        """Write every line back until the client closes its side."""
        for line in self.rfile:
            self.wfile.write(line)


@exported_by("sockshock.handlers")
class DatagramEcho(socketserver.DatagramRequestHandler):
    """Answer every datagram with the same bytes."""

    def handle(self) -> None:
        """Write the datagram back to its sender."""
        self.wfile.write(self.rfile.read())


@exported_by("sockshock.handlers")
class NaiveRecvEcho(socketserver.BaseRequestHandler):
    """Assumes that one ``recv`` returns one whole line: wrong under partial reads."""

    def handle(self) -> None:
        """Read once, fail unless that one read was a whole line, and echo it."""
        data = self.request.recv(65536)
        if not data.endswith(b"\n"):
            raise ValueError(f"incomplete message {data!r}: expected a whole line")
        self.request.sendall(data)


@exported_by("sockshock.handlers")
class NaiveSendEcho(socketserver.BaseRequestHandler):
    """Uses ``send`` where ``sendall`` is needed: loses data under partial writes."""

    def handle(self) -> None:
        """Read a line and write it back with one ``send()`` (wrong under partial writes)."""
        with self.request.makefile("rb") as rfile:
            line = rfile.readline()
        self.request.send(line)

"""In-memory fidelity: what drive() shows against what real sockets show -- the
peer's address after its RST, a reset before setup(), bounded send buffers (short
sends, EAGAIN, blocking writes), a handler that writes forever -- and drive() on
a real socket pair giving the same transcripts as in memory."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from sockshock.errors import HandlerHangs, InvalidArgument
from sockshock.scripts import ClientScript, Close, HalfClose, Pause, Read, Reset, ScriptRun, Send
from tests.test_drive import CONFORMANCE

MEGABYTE = b"w" * 1_000_000


def outcome(errors: list[BaseException], seen: list[Any], results: list[Any]) -> dict[str, Any]:
    return {
        "errors": [(type(e), getattr(e, "errno", None)) for e in errors],
        "seen": seen,
        "reads": [(r.outcome, len(r.data)) for r in results if isinstance(r.step, Read)],
    }


def on_real_sockets(handler: Any, script: ClientScript, **attrs: Any) -> dict[str, Any]:
    """The handler on a real server, the script on a real client; ``go`` is set
    once the client's steps have run."""
    seen: list[Any] = []
    go = threading.Event()
    with sockshock.serving(
        "TCPServer", handler, expect_errors=(Exception,), seen=seen, go=go, **attrs
    ) as srv:
        client = srv.connect(timeout=script.timeout)
        run = ScriptRun(script, client)
        run.run()
        go.set()
    return outcome([f.exception for f in srv.errors], seen, run.results)


def in_memory(handler: Any, script: ClientScript, **attrs: Any) -> dict[str, Any]:
    seen: list[Any] = []
    go = threading.Event()
    go.set()  # in memory the client's first steps come before the handler starts
    transcript = sockshock.drive(
        handler, script, server_attrs={"seen": seen, "go": go, **attrs}, sockets="memory"
    )
    return outcome(transcript.errors, seen, transcript.steps)


class PeerAfterReset(ss.BaseRequestHandler):
    """Reads to the end (an RST: ECONNRESET), then asks for its peer's address."""

    def handle(self) -> None:
        try:
            while self.request.recv(100):
                pass
        except ConnectionResetError:
            self.server.seen.append("reset")
        self.request.getpeername()  # Linux: ENOTCONN once the connection is reset


class PeerInSetup(ss.BaseRequestHandler):
    """Asks for its peer's address in setup(), once the client has acted."""

    def setup(self) -> None:
        self.server.go.wait(2.0)
        self.server.seen.append(self.request.recv(10, socket.MSG_PEEK | socket.MSG_DONTWAIT))

    def handle(self) -> None:
        self.request.getpeername()


class NonBlockingWriter(ss.BaseRequestHandler):
    """Writes a megabyte without blocking: a short send, then EAGAIN."""

    def handle(self) -> None:
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.request.setblocking(False)
        counts = []
        try:
            while True:
                counts.append(self.request.send(MEGABYTE))
        except BlockingIOError as exc:
            self.server.seen.append(("short", any(n < len(MEGABYTE) for n in counts)))
            self.server.seen.append(("EAGAIN", exc.errno))


class BlockingWriter(ss.BaseRequestHandler):
    """Writes a megabyte with sendall(), under ``server.write_timeout``."""

    def handle(self) -> None:
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.request.settimeout(self.server.write_timeout)
        self.request.sendall(MEGABYTE)
        self.server.seen.append("all sent")


FIDELITY = [
    # After the client's RST, getpeername() raises ENOTCONN (in memory it answered).
    (PeerAfterReset, ClientScript([Send(b"x"), Reset()]), {}),
    # A reset right after connect, before setup(): the handler's first look sees it.
    (PeerInSetup, ClientScript([Reset()]), {}),
    (PeerInSetup, ClientScript([Send(b"hi"), Pause(0.05), Close()]), {}),
    # A full send buffer: a short send then EAGAIN on a non-blocking socket ...
    (NonBlockingWriter, ClientScript([Pause(0.2), Close()]), {}),
    # ... a blocking write that times out while the client reads nothing ...
    (BlockingWriter, ClientScript([Pause(0.2), Close()]), {"write_timeout": 0.05}),
    # ... and one that waits for the client to read it all.
    (BlockingWriter, ClientScript([HalfClose(), Read()]), {"write_timeout": None}),
]


@pytest.mark.parametrize(
    ("handler", "script", "attrs"),
    FIDELITY,
    ids=[f"{h.__name__}-{s!r}" for h, s, _ in FIDELITY],
)
def test_drive_shows_what_real_sockets_show(
    handler: Any, script: ClientScript, attrs: dict[str, Any]
) -> None:
    real = on_real_sockets(handler, script, **attrs)
    assert in_memory(handler, script, **attrs) == real


def test_the_send_buffer_is_the_kernel_s_default_and_can_be_set() -> None:
    class Counter(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.setblocking(False)
            total = 0
            try:
                while True:
                    total += self.request.send(MEGABYTE)
            except BlockingIOError:
                self.server.seen.append(total)

    seen: list[int] = []
    sockshock.drive(Counter, [Pause(0), Close()], server_attrs={"seen": seen})
    sockshock.drive(Counter, [Pause(0), Close()], server_attrs={"seen": seen}, send_buffer=10)
    assert seen == [16384 + 131072, 10]


def test_a_handler_that_writes_forever_gets_one_clear_error_not_memory_error() -> None:
    class Forever(ss.BaseRequestHandler):
        def handle(self) -> None:
            while True:
                self.request.sendall(b"z" * 65536)

    started = time.monotonic()
    transcript = sockshock.drive(Forever, [HalfClose(), Read()], max_output=2_000_000)
    assert time.monotonic() - started < 2.0
    assert isinstance(transcript.error, HandlerHangs)
    assert "past max_output=2000000 (drive(max_output=...))" in str(transcript.error)
    assert len(transcript.output) <= 2_000_000
    # A client that stops reading: the handler's writes wait, then its peer's RST.
    transcript = sockshock.drive(Forever, [Read(size=10), Close()])
    assert isinstance(transcript.error, ConnectionResetError)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sockets": "fd"}, "sockets='fd' must be one of 'auto', 'memory', 'real'"),
        ({"send_buffer": 0}, "send_buffer=0 must be in [1,"),
        ({"max_output": 1.5}, "max_output=1.5"),
        ({"sockets": "real", "transport": "datagram"}, "real socket pairs are for stream handlers"),
    ],
)
def test_bad_drive_arguments(arguments: dict[str, Any], message: str) -> None:
    from sockshock.handlers import DatagramEcho, LineEcho

    handler = DatagramEcho if arguments.get("transport") == "datagram" else LineEcho
    with pytest.raises(InvalidArgument) as error:
        sockshock.drive(handler, b"x\n", **arguments)
    assert message in str(error.value)


# -- drive() on a real socket pair ------------------------------------------------------


def summary(transcript: sockshock.Transcript) -> dict[str, Any]:
    return {
        "errors": [type(e) for e in transcript.errors],
        "steps": [(r.step, r.outcome, r.data) for r in transcript.steps],
        "output": transcript.output,
        "input": transcript.input,
        "log": [(e.kind, e.index, e.offset, e.decision) for e in transcript.log],
    }


STREAM_CASES = [case for case in CONFORMANCE if case[0].__name__ != "DatagramEcho"]


@pytest.mark.parametrize(
    ("handler", "script", "models", "seed"),
    STREAM_CASES,
    ids=[f"{h.__name__}-{m}" for h, _, m, _ in STREAM_CASES],
)
def test_a_real_socket_pair_gives_the_transcript_memory_gives(
    handler: Any, script: ClientScript, models: list[Any], seed: int
) -> None:
    memory = sockshock.drive(handler, script, faults=F.FaultPlan(*models, seed=seed))
    real = sockshock.drive(handler, script, faults=F.FaultPlan(*models, seed=seed), sockets="real")
    assert (memory.sockets, real.sockets) == ("memory", "real")
    assert summary(real) == summary(memory)

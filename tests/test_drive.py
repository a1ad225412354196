"""drive(): handlers against scripted clients in memory, and the same plans on real sockets."""

from __future__ import annotations

import errno
import math
import re
import socket
import struct
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sockshock
import sockshock.socketserver as ss
from sockshock import _util
from sockshock import faults as F
from sockshock.handlers import DatagramEcho, LineEcho, NaiveRecvEcho
from sockshock.scripts import ClientScript, Close, HalfClose, Pause, Read, Reset, ScriptRun, Send
from tests._support import HelloHTTP


class Recorder(ss.BaseRequestHandler):
    """Reads until end of file, recording each read's bytes (or error), then
    writes ``server.reply`` (if any) twice."""

    timeout: float | None = None

    def handle(self) -> None:
        self.request.settimeout(self.timeout)
        seen = self.server.seen
        try:
            while chunk := self.request.recv(4096):
                seen.append(chunk)
            seen.append("eof")
        except OSError as exc:
            seen.append(exc)
        for _ in range(2 if getattr(self.server, "reply", None) else 0):
            try:
                self.request.sendall(self.server.reply)
                seen.append("sent")
            except OSError as exc:
                seen.append(exc)


def record(client: Any, **options: Any) -> tuple[list[Any], sockshock.Transcript]:
    seen: list[Any] = []
    attrs = {"seen": seen, **options.pop("server_attrs", {})}
    return seen, sockshock.drive(Recorder, client, server_attrs=attrs, **options)


# -- the basics ----------------------------------------------------------------------------


def test_bytes_are_sent_then_half_closed_and_the_reply_read_to_the_end() -> None:
    transcript = sockshock.drive(LineEcho, b"hello\nworld\n")
    assert transcript.output == transcript.received == b"hello\nworld\n"
    assert [(r.step, r.outcome) for r in transcript.steps] == [
        (Send(b"hello\nworld\n"), "ok"),
        (HalfClose(), "ok"),
        (Read(), "eof"),
    ]
    assert transcript.error is None
    assert transcript.errors == []
    assert transcript.requests == 1
    assert transcript.log == []
    assert not transcript.closed
    assert not transcript.half_closed
    assert "client received b'hello\\nworld\\n'" in str(transcript)
    assert repr(transcript).startswith("<Transcript stream: output=b'hello")


def test_each_send_arrives_as_reads_of_its_own() -> None:
    seen, _ = record([b"ab", b"cde", b"f"])
    assert seen == [b"ab", b"cde", b"f", "eof"]


def test_partial_reads_split_a_send_further_and_are_logged() -> None:
    seen, transcript = record([b"abcdef"], faults=[F.PartialReads(2)], seed=7)
    assert b"".join(seen[:-1]) == b"abcdef"
    assert seen[-1] == "eof"
    assert all(len(chunk) <= 2 for chunk in seen[:-1])
    limits = [e.decision.limit for e in transcript.log]  # the last one: for end of file
    assert len(limits) == len(seen)
    assert all(
        len(chunk) == min(limit, 6 - offset)
        for chunk, limit, offset in zip(
            seen[:-1], limits, [e.offset for e in transcript.log], strict=False
        )
    )
    assert transcript.plan.seed == 7


def test_the_handler_s_exception_is_in_the_transcript() -> None:
    transcript = sockshock.drive(NaiveRecvEcho, [b"hel", b"lo\n"])
    assert isinstance(transcript.error, ValueError)
    assert "incomplete message b'hel'" in str(transcript.error)
    assert transcript.output == b""


def test_makefile_setsockopt_getpeername_and_buffered_writes_work() -> None:
    class Buffered(ss.StreamRequestHandler):
        wbufsize = 1024
        disable_nagle_algorithm = True

        def handle(self) -> None:
            self.wfile.write(repr(self.connection.getpeername()).encode() + b" ")
            self.wfile.write(self.rfile.read())

    transcript = sockshock.drive(Buffered, b"all of it")
    assert transcript.received == b"('127.0.0.1', 50000) all of it"


def test_server_attrs_shutdown_and_the_handler_closing_its_socket() -> None:
    class Closer(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(self.server.greeting)
            self.request.shutdown(socket.SHUT_WR)
            self.server.shutdown()

    transcript = sockshock.drive(Closer, b"", server_attrs={"greeting": b"hi"})
    assert transcript.received == b"hi"
    assert transcript.half_closed
    assert not transcript.closed
    assert transcript.shutdown_requested


def test_an_http_server_handler_runs_in_memory() -> None:
    transcript = sockshock.drive(
        HelloHTTP, b"GET / HTTP/1.0\r\n\r\n", faults=[F.PartialReads(3)], seed=1
    )
    assert transcript.received.startswith(b"HTTP/1.0 200 OK\r\n")
    assert transcript.received.endswith(b"\r\n\r\nhi")
    assert len(transcript.log) > 5


# -- what the kernel would do ---------------------------------------------------------------


def test_a_reset_is_reported_once_then_end_of_file() -> None:
    seen, _ = record([Send(b"data"), Reset()])
    assert seen[0] == b"data"
    assert isinstance(seen[1], ConnectionResetError)
    assert seen[1].errno == errno.ECONNRESET


def test_closing_with_unread_data_resets_the_peer() -> None:
    class Greeter(ss.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"hello")
            self.server.seen.append(self.request.recv(10))
            self.server.seen.append(self.request.recv(10))

    seen: list[Any] = []
    # Pause(0) first: the client waits for the handler (it greets) before it acts.
    script = [Pause(0), Send(b"x"), Close()]
    transcript = sockshock.drive(Greeter, script, server_attrs={"seen": seen})
    assert seen == [b"x"]  # closed with "hello" unread: an RST, not a FIN
    assert isinstance(transcript.error, ConnectionResetError)


def test_writing_to_a_closed_peer_succeeds_once_then_breaks_the_pipe() -> None:
    seen, _ = record([Send(b"x"), Close()], server_attrs={"reply": b"late"})
    assert seen[:2] == [b"x", "eof"]
    assert seen[2] == "sent"
    assert isinstance(seen[3], BrokenPipeError)


def test_a_reset_after_a_half_close_reads_as_end_of_file_and_breaks_the_pipe() -> None:
    seen, _ = record([Send(b"x"), HalfClose(), Reset()], server_attrs={"reply": b"r"})
    assert seen[:2] == [b"x", "eof"]
    assert isinstance(seen[2], BrokenPipeError)
    assert seen[2].errno == errno.EPIPE


def test_timeouts_are_virtual() -> None:
    started = time.monotonic()
    seen, transcript = record(
        [Send(b"a"), Pause(60.0), Send(b"b")], server_attrs={}, transport="stream"
    )
    assert seen == [b"a", b"b", "eof"]
    assert transcript.elapsed == 60.0

    class Impatient(Recorder):
        timeout = 5.0

    seen = []
    transcript = sockshock.drive(
        Impatient, [Send(b"a"), Pause(60.0), Send(b"b")], server_attrs={"seen": seen}
    )
    assert seen[0] == b"a"
    assert isinstance(seen[1], TimeoutError)
    assert str(seen[1]) == "timed out"
    assert transcript.elapsed == 60.0  # the client's pause still ran out
    assert time.monotonic() - started < 1.0


def test_a_read_with_nothing_to_come_times_out_at_the_client_s_bound() -> None:
    transcript = sockshock.drive(
        LineEcho, ClientScript([Send(b"no end"), Read(size=1)], timeout=2.5)
    )
    assert transcript.steps[1].outcome == "timeout"
    assert transcript.elapsed == 2.5
    assert transcript.received == b""


def test_stalls_end_at_the_timeout_or_when_the_client_hangs_up() -> None:
    seen, transcript = record(b"abcdef", faults=[F.Stall(2)], seed=0)
    assert seen == [b"ab", "eof"]

    class Impatient(Recorder):
        timeout = 3.0

    seen = []
    transcript = sockshock.drive(
        Impatient, b"abcdef", faults=[F.Stall(2)], seed=0, server_attrs={"seen": seen}
    )
    assert seen[0] == b"ab"
    assert isinstance(seen[1], TimeoutError)
    assert transcript.elapsed == 3.0


def test_a_handler_that_spins_on_end_of_file_is_stopped() -> None:
    class Spinner(ss.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            while not data.endswith(b"\n"):  # never ends once the client has gone
                data += self.request.recv(100)

    transcript = sockshock.drive(Spinner, b"no newline")
    assert isinstance(transcript.error, sockshock.errors.HandlerHangs)
    assert "spin forever" in str(transcript.error)


# -- datagrams -------------------------------------------------------------------------------


def test_datagrams_each_get_a_handler_and_a_reply() -> None:
    transcript = sockshock.drive(DatagramEcho, [b"a", b"bb", b"ccc"], transport="datagram")
    assert transcript.requests == 3
    assert transcript.replies == [b"a", b"bb", b"ccc"]
    assert [r.data for r in transcript.steps if isinstance(r.step, Read)] == [b"a", b"bb", b"ccc"]


def test_datagram_faults_in_memory() -> None:
    lost = sockshock.drive(
        DatagramEcho, [b"a", b"b"], transport="datagram", faults=[F.DropDatagrams()], seed=0
    )
    assert lost.requests == 0
    assert lost.received == b""
    assert [r.outcome for r in lost.steps] == ["ok", "ok", "timeout", "timeout"]
    twice = sockshock.drive(
        DatagramEcho, [b"a"], transport="datagram", faults=[F.DuplicateDatagrams(copies=2)], seed=0
    )
    assert twice.replies == [b"a", b"a", b"a"]
    cut = sockshock.drive(
        DatagramEcho,
        [b"abcdef"],
        transport="datagram",
        faults=[F.TruncateDatagrams(2, direction="out")],
        seed=0,
    )
    assert cut.replies == [b"abcdef"]
    assert cut.received == b"ab"


def test_datagrams_are_reordered_within_bursts_only() -> None:
    burst = [b"0", b"1", b"2", b"3"]
    orders = set()
    for seed in range(30):
        transcript = sockshock.drive(
            DatagramEcho,
            burst,
            transport="datagram",
            seed=seed,
            faults=[F.ReorderDatagrams(probability=0.5, window=2)],
        )
        assert sorted(transcript.replies) == burst
        orders.add(tuple(transcript.replies))
    assert len(orders) > 1
    apart = [Send(b"0"), Pause(1.0), Send(b"1"), Pause(1.0), Send(b"2")]
    for seed in range(10):
        transcript = sockshock.drive(
            DatagramEcho,
            apart,
            transport="datagram",
            seed=seed,
            faults=[F.ReorderDatagrams(probability=0.5, window=2)],
        )
        assert transcript.replies == [b"0", b"1", b"2"]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"transport": "streem"},
            sockshock.errors.InvalidArgument,
            "transport='streem' must be one of",
        ),
        (
            {"handler_class": None},
            sockshock.errors.InvalidArgument,
            "drive(handler_class=...)=None",
        ),
        (
            {"handler_class": DatagramEcho},
            sockshock.errors.InvalidArgument,
            "DatagramEcho is a DatagramRequestHandler, but TCPServer is a stream server",
        ),
        (
            {"faults": [F.PartialReads(3)], "transport": "datagram", "handler_class": DatagramEcho},
            sockshock.errors.InvalidArgument,
            "PartialReads(max_chunk=3) cannot fire on drive() of a UDPServer handler",
        ),
        (
            {"faults": sockshock.layer.FaultLayer()},
            sockshock.errors.InvalidArgument,
            "not a FaultLayer",
        ),
        ({"seed": 3}, sockshock.errors.InvalidArgument, "seed= only applies with faults="),
        ({"faults": [], "seed": -1}, sockshock.errors.InvalidArgument, "seed=-1 must be in"),
        ({"server_attrs": [1]}, sockshock.errors.InvalidArgument, "server_attrs=[1]"),
        (
            {"server_attrs": {1: 2}},
            sockshock.errors.InvalidArgument,
            "expected attribute names (str) as the keys of server_attrs but got 1 (type=int) "
            "(from drive())",
        ),
        (
            {"faults": [F.AcceptErrors()]},
            sockshock.errors.InvalidArgument,
            "AcceptErrors() cannot fire on drive() of a TCPServer handler (a connection already "
            "accepted, no TLS): it fails accept() calls, and none happen here",
        ),
        (
            {"faults": [F.PartialReads(3, layer="plaintext")]},
            sockshock.errors.InvalidArgument,
            "PartialReads(layer='plaintext', max_chunk=3) cannot fire on drive() of a TCPServer "
            "handler (a connection already accepted, no TLS): layer='plaintext' faults act above "
            "TLS, and this runs without TLS",
        ),
        (
            {"server_attrs": {"request_queue": 1}},
            sockshock.errors.InvalidArgument,
            "did you mean 'request_queue_size'",
        ),
        ({"client": 42}, sockshock.errors.InvalidArgument, "client=...)=42"),
        ({"client": [Send(b"x"), "read"]}, sockshock.errors.InvalidArgument, "expected a step"),
        (
            {"client": [HalfClose()], "transport": "datagram", "handler_class": DatagramEcho},
            sockshock.errors.InvalidArgument,
            "HalfClose() (from drive(client=...)) is a stream step",
        ),
    ],
)
def test_bad_arguments_get_one_clear_error(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    call = {"handler_class": LineEcho, "client": b"x", **arguments}
    with pytest.raises(error, match=re.escape(message)):
        sockshock.drive(call.pop("handler_class"), call.pop("client"), **call)


@pytest.mark.parametrize("seconds", ["x", math.inf, math.nan, -1, None])
def test_a_clock_refuses_a_bad_sleep_and_keeps_its_time(seconds: Any) -> None:
    clock = sockshock.layer.VirtualClock(5)
    with pytest.raises(sockshock.errors.InvalidArgument, match=r"seconds=.* \(from VirtualClock"):
        clock.sleep(seconds)
    assert clock.now() == 5
    assert clock.sleep(2.5) is False
    assert clock.now() == 7.5
    with pytest.raises(sockshock.errors.InvalidArgument, match=r"\(from RealClock.sleep\(\)\)"):
        _util.RealClock().sleep(seconds)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Send("text"), "expected bytes but got data='text'"),
        (lambda: Pause(-1), "seconds=-1 must be in [0, 3600]"),
        (lambda: Read(size=0), "size=0 must be in [1, inf]"),
        (lambda: Read(until=b""), "until=b'' (from Read()) would end the read at once"),
        (lambda: ClientScript([Send(b"x")], timeout=0), "timeout=0 must be in (0, 3600]"),
        (lambda: ClientScript("steps"), "expected a list of steps"),
    ],
)
def test_bad_steps_get_one_clear_error(make: Any, message: str) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            (ClientScript([Send(b"x")]), None),
            "expected a connected socket (srv.connect(), say) but got sock=None (type=NoneType), "
            "which has no type, settimeout, recv, sendall, close (from ScriptRun())",
        ),
        (
            (b"x\n", "sock"),
            "expected a ClientScript (e.g. ClientScript((Send(b'hi\\n'), Read()))) "
            "but got script=b'x\\n' (type=bytes) (from ScriptRun())",
        ),
    ],
)
def test_script_run_checks_its_arguments(arguments: tuple[Any, Any], message: str) -> None:
    with pytest.raises(sockshock.errors.InvalidArgument, match=re.escape(message)):
        ScriptRun(*arguments)
    a, b = socket.socketpair()
    with a, b, pytest.raises(sockshock.errors.InvalidArgument, match="sleep=1"):
        ScriptRun(ClientScript([Send(b"x")]), a, sleep=1)  # type: ignore[arg-type]


# -- the same plans on real sockets ------------------------------------------------------------


class Impatient(LineEcho):
    timeout = 0.05


def on_real_sockets(
    handler: Any, script: ClientScript, plan: F.FaultPlan, kind: str
) -> dict[str, Any]:
    server = "TCPServer" if kind == "stream" else "UDPServer"
    with sockshock.serving(
        server, handler, faults=plan, clock="virtual", expect_errors=(Exception,)
    ) as srv:
        run = ScriptRun(script, srv.connect(timeout=script.timeout))
        run.run()
    return {
        "errors": [type(f.exception) for f in srv.errors],
        "reads": [(r.outcome, r.data) for r in run.results if isinstance(r.step, Read)],
        "log": plan.log_by_connection().get(0, []),
    }


def in_memory(handler: Any, script: ClientScript, plan: F.FaultPlan, kind: str) -> dict[str, Any]:
    transcript = sockshock.drive(handler, script, faults=plan, transport=kind)
    return {
        "errors": [type(e) for e in transcript.errors],
        "reads": [(r.outcome, r.data) for r in transcript.steps if isinstance(r.step, Read)],
        "log": transcript.plan.log_by_connection().get(0, []),
    }


TWO_LINES = ClientScript([Send(b"hello\nworld\n"), HalfClose(), Read()])
CONFORMANCE = [
    (LineEcho, TWO_LINES, [F.PartialReads(3)], 1),
    (LineEcho, TWO_LINES, [F.PartialWrites(2)], 1),
    (LineEcho, TWO_LINES, [F.ResetAfter(4)], 1),
    (LineEcho, TWO_LINES, [F.ResetAfter(5, direction="out")], 1),
    (LineEcho, TWO_LINES, [F.EOFAfter(7)], 1),
    (LineEcho, TWO_LINES, [F.Stall(7)], 1),
    (Impatient, ClientScript([Send(b"hello\nworld\n"), Read()]), [F.Latency(1.0)], 1),
    (Impatient, ClientScript([Send(b"hel"), Pause(0.2), Send(b"lo\n"), Read()]), [], 1),
    (NaiveRecvEcho, ClientScript([Send(b"hello\n"), Read(until=b"\n")]), [F.PartialReads(3)], 2),
    (LineEcho, ClientScript([Send(b"hello\n"), Read(until=b"\n"), Reset()]), [], 0),
    (LineEcho, ClientScript([Send(b"hello\n"), Read(until=b"\n"), HalfClose(), Reset()]), [], 0),
    (
        DatagramEcho,
        ClientScript([Send(b"a"), Read(), Send(b"bb"), Read(), Send(b"ccc"), Read()], timeout=0.1),
        [F.DropDatagrams(0.5), F.CorruptDatagrams(0.5, direction="out")],
        5,
    ),
    (
        DatagramEcho,
        ClientScript([Send(b"a"), Read(), Send(b"bb"), Read()], timeout=0.1),
        [F.DuplicateDatagrams(0.5), F.TruncateDatagrams(1)],
        5,
    ),
]


@pytest.mark.parametrize(
    ("handler", "script", "models", "seed"),
    CONFORMANCE,
    ids=[f"{h.__name__}-{m}" for h, _, m, _ in CONFORMANCE],
)
def test_drive_conforms_to_the_fault_layer_on_real_sockets(
    handler: Any, script: ClientScript, models: list[Any], seed: int
) -> None:
    kind = "datagram" if handler is DatagramEcho else "stream"
    real = on_real_sockets(handler, script, F.FaultPlan(*models, seed=seed), kind)
    memory = in_memory(handler, script, F.FaultPlan(*models, seed=seed), kind)
    assert memory == real


lines = st.lists(
    st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"") + b"\n"), min_size=1, max_size=3
).map(b"".join)
stream_models = st.lists(
    st.sampled_from(
        [
            F.PartialReads(2),
            F.PartialWrites(3),
            F.ResetAfter(5),
            F.ResetAfter(3, direction="out"),
            F.EOFAfter(4),
            F.Latency(0.5, jitter=0.5),
        ]
    ),
    max_size=2,
)


@pytest.mark.filterwarnings("ignore::sockshock.errors.FaultNeverFired")
@settings(max_examples=15)
@given(payload=lines, models=stream_models, seed=st.integers(0, 2**32 - 1))
def test_drawn_plans_conform_on_real_sockets(payload: bytes, models: list[Any], seed: int) -> None:
    script = ClientScript([Send(payload), HalfClose(), Read()])
    real = on_real_sockets(LineEcho, script, F.FaultPlan(*models, seed=seed), "stream")
    memory = in_memory(LineEcho, script, F.FaultPlan(*models, seed=seed), "stream")
    assert memory == real


def test_a_length_prefixed_handler_is_broken_the_same_way_in_memory_and_for_real() -> None:
    class Reverse(ss.BaseRequestHandler):
        def handle(self) -> None:
            (size,) = struct.unpack("!I", self.request.recv(4))
            self.request.sendall(self.request.recv(size)[::-1])

    script = ClientScript([Send(struct.pack("!I", 3) + b"abc"), HalfClose(), Read()])
    plan = [F.PartialReads(3)]
    real = on_real_sockets(Reverse, script, F.FaultPlan(*plan, seed=4), "stream")
    memory = in_memory(Reverse, script, F.FaultPlan(*plan, seed=4), "stream")
    assert memory == real
    assert real["errors"] == [struct.error]

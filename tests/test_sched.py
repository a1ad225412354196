"""drive(handler, [clients], server=..., schedule=...): the controlled scheduler in
memory -- determinism, replay, the readable interleaving, every threading, pool and
synchronous server class (stream and datagram), virtual time, deadlocks, the
controlled primitives, and bad input."""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Any

import pytest

import sockshock
from sockshock import socketserver
from sockshock._sched import Schedule
from sockshock.errors import HandlerHangs, InvalidArgument
from sockshock.faults import Latency, PartialReads
from sockshock.scripts import ClientScript, Close, HalfClose, Pause, Read, Send
from tests._races import BUYER, Checkout, DatagramUpper, Upper
from tests._support import HelloHTTP

STREAM_SERVERS = ["ThreadingTCPServer", "ThreadPoolTCPServer", "TCPServer"]
DATAGRAM_SERVERS = ["ThreadingUDPServer", "ThreadPoolUDPServer", "UDPServer"]
UNIX_SERVERS = [
    name
    for name in (
        "ThreadingUnixStreamServer",
        "ThreadPoolUnixStreamServer",
        "UnixStreamServer",
        "ThreadingUnixDatagramServer",
        "UnixDatagramServer",
    )
    if hasattr(socket, "AF_UNIX")
]


ASKER = [Send(b"hi\n"), Read(until=b"\n")]


def run_checkout(schedule: Any, server: str = "ThreadingTCPServer") -> tuple[list[Any], Any]:
    attrs: dict[str, Any] = {"stock": {"book": 1}}
    ts = sockshock.drive(
        Checkout, [BUYER, BUYER], server=server, schedule=schedule, server_attrs=attrs
    )
    return ts, attrs


def outcome(ts: list[Any]) -> list[tuple[bytes, bytes, list[str]]]:
    return [(t.output, t.received, [r.outcome for r in t.steps]) for t in ts]


# -- the contract -------------------------------------------------------------------------


def test_one_transcript_per_client_in_order_each_with_the_schedule() -> None:
    ts = sockshock.drive(
        Upper,
        [[Send(b"a\n"), Read(until=b"\n")], [Send(b"b\n"), Read(until=b"\n")]],
        server="ThreadingTCPServer",
        schedule=3,
    )
    assert [t.received for t in ts] == [b"A\n", b"B\n"]
    assert [t.output for t in ts] == [b"A\n", b"B\n"]
    assert [t.requests for t in ts] == [1, 1]
    assert ts[0].schedule is ts[1].schedule
    assert isinstance(ts[0].schedule, Schedule)
    assert ts[0].schedule.exact
    assert all(t.error is None for t in ts)


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_equal_seeds_give_equal_schedules_and_transcripts(seed: int) -> None:
    first, state1 = run_checkout(seed)
    second, state2 = run_checkout(seed)
    assert first[0].schedule == second[0].schedule
    assert first[0].schedule.choices == second[0].schedule.choices
    assert str(first[0].schedule) == str(second[0].schedule)
    assert outcome(first) == outcome(second)
    assert state1 == state2


def test_different_seeds_explore_different_interleavings() -> None:
    schedules = {run_checkout(seed)[0][0].schedule.choices for seed in range(20)}
    assert len(schedules) > 5


def test_a_recorded_schedule_replays_the_run_exactly() -> None:
    oversold = next(seed for seed in range(200) if run_checkout(seed)[1]["stock"]["book"] < 0)
    ts, state = run_checkout(oversold)
    for _ in range(20):
        again, again_state = run_checkout(ts[0].schedule)
        assert again_state == state == {"stock": {"book": -1}}
        assert outcome(again) == outcome(ts)
        assert again[0].schedule == ts[0].schedule
        assert again[0].schedule.exact


def test_the_replay_line_and_the_seed_line_make_the_same_run() -> None:
    ts, _ = run_checkout(5)
    recorded = ts[0].schedule
    line = recorded.replay_line()
    assert line.startswith("schedule='replay:")
    replayed = eval(line.split("=", 1)[1])  # the string, as a user pastes it
    assert isinstance(replayed, str)
    assert run_checkout(replayed)[0][0].schedule == recorded
    assert recorded.spec() == "pct:5:depth=3:length=100"
    assert run_checkout(recorded.spec())[0][0].schedule == recorded


def test_print_shows_who_did_what_with_which_bytes() -> None:
    ts, _ = run_checkout(2)
    text = str(ts[0].schedule)
    lines = text.splitlines()
    assert lines[0].startswith("schedule 'pct:2:depth=3:length=100': ")
    for expected in (
        "client 1   connect",
        "client 2   send b'book\\n'",
        "server     accept client",
        "handler 1  recv from client",
        "send to client",
        "b'confirm?\\n'",
        "replay: schedule='replay:",
    ):
        assert expected in text, expected
    assert repr(ts[0].schedule).startswith("<Schedule 'pct:2:depth=3:length=100': ")


def test_the_schedule_records_preemptions_and_a_replay_keeps_the_count() -> None:
    ts, _ = run_checkout(11)
    recorded = ts[0].schedule
    assert recorded.preemptions <= len(recorded.choices or ())
    assert run_checkout(recorded)[0][0].schedule.preemptions == recorded.preemptions


def test_a_replay_of_other_code_says_it_diverged() -> None:
    recorded = run_checkout(3)[0][0].schedule
    ts = sockshock.drive(
        Upper, [ASKER, ASKER, ASKER], server="ThreadingTCPServer", schedule=recorded
    )
    assert not ts[0].schedule.exact
    assert "diverged" in ts[0].schedule.notes[-1]
    assert "not exact: the replay diverged" in str(ts[0].schedule)


def test_single_client_drive_is_unchanged() -> None:
    transcript = sockshock.drive(Upper, b"hi\n")
    assert transcript.output == b"HI\n"
    assert transcript.schedule is None


# -- the server classes --------------------------------------------------------------------


@pytest.mark.parametrize("server", STREAM_SERVERS)
def test_every_stream_server_class(server: str) -> None:
    clients = [[Send(b"%d\n" % i), Read(until=b"\n")] for i in range(3)]
    ts = sockshock.drive(Upper, clients, server=server, schedule=4)
    assert [t.received for t in ts] == [b"0\n", b"1\n", b"2\n"]
    again = sockshock.drive(Upper, clients, server=server, schedule=ts[0].schedule)
    assert again[0].schedule == ts[0].schedule


@pytest.mark.parametrize("server", DATAGRAM_SERVERS)
def test_every_datagram_server_class(server: str) -> None:
    ts = sockshock.drive(DatagramUpper, [[b"a", b"b"], [b"c"]], server=server, schedule=5)
    assert [sorted(t.replies) for t in ts] == [[b"A", b"B"], [b"C"]]
    assert [t.requests for t in ts] == [2, 1]
    assert [t.transport for t in ts] == ["datagram", "datagram"]
    again = sockshock.drive(
        DatagramUpper, [[b"a", b"b"], [b"c"]], server=server, schedule=ts[0].schedule
    )
    assert [t.replies for t in again] == [t.replies for t in ts]


@pytest.mark.parametrize("server", UNIX_SERVERS)
def test_unix_servers_run_in_memory_too(server: str) -> None:
    datagram = "Datagram" in server
    handler: Any = DatagramUpper if datagram else Upper
    clients: list[Any] = [[b"x"], [b"y"]] if datagram else [[Send(b"x\n"), Read(until=b"\n")]] * 2
    ts = sockshock.drive(handler, clients, server=server, schedule=1)
    assert [t.received for t in ts] == ([b"X", b"Y"] if datagram else [b"X\n", b"X\n"])


def test_a_synchronous_server_serves_one_client_at_a_time() -> None:
    # The first client's handler waits for its second line; the second client is
    # only accepted once it is done.
    talker = [Send(b"one\n"), Pause(1), Send(b"two\n"), Read(until=b"\n")]

    class Two(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()
            self.wfile.write(self.rfile.readline())

    ts = sockshock.drive(Two, [talker, talker], server="TCPServer", schedule=2)
    assert [t.received for t in ts] == [b"two\n", b"two\n"]
    events = [(e.task, e.op) for e in ts[0].schedule.events]
    accepts = [i for i, (task, op) in enumerate(events) if op == "accept"]
    assert not any(task.startswith("handler") for task, _ in events)  # no thread of its own
    assert len(accepts) == 2


def test_the_kind_of_server_decides_the_transport() -> None:
    ts = sockshock.drive(DatagramUpper, [[b"q"]], server="UDPServer", schedule=0)
    assert ts[0].received == b"Q"


def test_without_server_the_threading_class_of_the_kind() -> None:
    ts = sockshock.drive(DatagramUpper, [[b"q"]], transport="datagram", schedule=0)
    assert ts[0].replies == [b"Q"]
    ts = sockshock.drive(Upper, [ASKER], schedule=0)
    assert ts[0].received == b"HI\n"
    assert any(e.task == "handler 1" for e in ts[0].schedule.events)


def test_a_server_subclass_keeps_its_own_init_and_handle_error() -> None:
    seen: list[str] = []

    class Counting(socketserver.ThreadingTCPServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.count_lock = threading.Lock()  # made in the run: a controlled one

        def handle_error(self, request: Any, client_address: Any) -> None:
            seen.append("handle_error")

    class Fails(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            with self.server.count_lock:  # type: ignore[attr-defined]
                self.rfile.readline()
            raise ValueError("boom")

    ts = sockshock.drive(Fails, [ASKER, ASKER], server=Counting, schedule=3)
    assert [type(t.error) for t in ts] == [ValueError, ValueError]
    assert seen == ["handle_error", "handle_error"]
    assert "acquire" in {e.op for e in ts[0].schedule.events}


def test_server_attrs_hold_the_final_state() -> None:
    class Count(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()
            with self.server.lock:  # type: ignore[attr-defined]
                self.server.hits += 1  # type: ignore[attr-defined]
            self.wfile.write(b"ok\n")

    lock = threading.Lock()
    attrs: dict[str, Any] = {"hits": 0, "lock": lock}
    sockshock.drive(Count, [ASKER] * 3, server="ThreadingTCPServer", schedule=9, server_attrs=attrs)
    assert attrs["hits"] == 3
    assert attrs["lock"] is lock  # a controlled one stood in for it
    assert not lock.locked()


def test_handler_shutdown_stops_accepting() -> None:
    class Stop(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.server.shutdown()
            self.wfile.write(b"bye\n")

    ts = sockshock.drive(Stop, [[Read(until=b"\n")]], server="TCPServer", schedule=0)
    assert ts[0].shutdown_requested
    assert ts[0].received == b"bye\n"


# -- time, faults, deadlocks -----------------------------------------------------------------


def test_virtual_time_jumps_to_the_next_deadline() -> None:
    class Patient(socketserver.StreamRequestHandler):
        timeout = 30

        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    slow = [Pause(20), Send(b"late\n"), Read(until=b"\n")]
    too_slow = [Pause(40), Send(b"later\n"), Read(until=b"\n")]
    ts = sockshock.drive(Patient, [slow, too_slow], server="ThreadingTCPServer", schedule=1)
    assert ts[0].received == b"late\n"
    assert isinstance(ts[1].error, TimeoutError)
    assert ts[0].elapsed == 40.0


def test_a_client_read_times_out_in_virtual_time() -> None:
    class Silent(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()

    script = ClientScript((Send(b"x\n"), Read(size=1)), timeout=2.5)
    ts = sockshock.drive(Silent, [script], server="ThreadingTCPServer", schedule=0)
    assert [r.outcome for r in ts[0].steps] == ["ok", "eof"]
    waiting = ClientScript((Read(size=1), Send(b"x\n")), timeout=2.5)
    ts = sockshock.drive(Silent, [waiting], server="ThreadingTCPServer", schedule=0)
    assert [r.outcome for r in ts[0].steps] == ["timeout", "ok"]
    assert ts[0].elapsed == 2.5


def test_faults_and_schedule_from_one_seed() -> None:
    def run() -> list[Any]:
        return sockshock.drive(
            Upper,
            [ASKER, ASKER],
            server="ThreadingTCPServer",
            schedule=21,
            faults=[PartialReads(max_chunk=1), Latency(0.5)],
        )

    first, second = run(), run()
    assert first[0].plan.seed == 21
    assert [e.decision for e in first[0].log] == [e.decision for e in second[0].log]
    assert first[0].schedule == second[0].schedule
    assert [t.received for t in first] == [b"HI\n", b"HI\n"]
    assert first[0].elapsed > 0  # the latency is virtual sleeping


def test_a_deadlock_wakes_the_waiters_with_handler_hangs() -> None:
    class Transfer(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            first = self.rfile.readline().strip()
            server: Any = self.server
            a, b = (server.x, server.y) if first == b"x" else (server.y, server.x)
            with a:
                self.wfile.write(b"got one\n")
                with b:
                    self.wfile.write(b"got both\n")

    def run(seed: int) -> list[Any]:
        attrs = {"x": threading.Lock(), "y": threading.Lock()}
        clients = [[Send(b"x\n"), Read(until=b"both\n")], [Send(b"y\n"), Read(until=b"both\n")]]
        return sockshock.drive(
            Transfer, clients, server="ThreadingTCPServer", schedule=seed, server_attrs=attrs
        )

    deadlocked = next(ts for ts in map(run, range(100)) if any(t.error for t in ts))
    errors = [t.error for t in deadlocked]
    assert all(isinstance(e, HandlerHangs) for e in errors)
    assert "deadlock" in str(errors[0])
    assert "acquire lock" in str(errors[0])


def test_a_spinning_handler_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    from sockshock._sched import _core

    monkeypatch.setattr(_core, "MAX_STEPS", 5000)  # 200,000 by default: seconds

    class Spin(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            lock: Any = self.server.lock  # type: ignore[attr-defined]
            while True:
                with lock:
                    pass

    with pytest.raises(HandlerHangs, match="5000 switch points without the run ending"):
        sockshock.drive(
            Spin,
            [ASKER],
            server="ThreadingTCPServer",
            schedule=0,
            server_attrs={"lock": threading.Lock()},
        )


# -- controlled primitives ------------------------------------------------------------------


class ViaWorker(socketserver.StreamRequestHandler):
    """Hands each line to a worker thread through a queue, waits on an Event and
    a Condition, counts with a Semaphore."""

    def handle(self) -> None:
        line = self.rfile.readline()
        done = threading.Event()
        results: queue.Queue[bytes] = queue.Queue()
        ready = threading.Condition()
        slots = threading.Semaphore(1)
        state = {"ready": False}

        def work() -> None:
            with slots:
                results.put(line.upper())
            with ready:
                state["ready"] = True
                ready.notify_all()
            done.set()

        worker = threading.Thread(target=work)
        worker.start()
        with ready:
            ready.wait_for(lambda: state["ready"])
        assert done.wait(5)
        worker.join()
        assert not worker.is_alive()
        self.wfile.write(results.get(timeout=1))


def test_events_queues_conditions_semaphores_and_threads_are_controlled() -> None:
    ts = sockshock.drive(ViaWorker, [ASKER, ASKER], server="ThreadingTCPServer", schedule=6)
    assert [t.received for t in ts] == [b"HI\n", b"HI\n"]
    assert [t.error for t in ts] == [None, None]
    tasks = {e.task for e in ts[0].schedule.events}
    assert {"thread 1", "thread 2"} <= tasks
    ops = {e.op.split(" ")[0] for e in ts[0].schedule.events}
    assert {"acquire", "release", "start"} <= ops
    again = sockshock.drive(
        ViaWorker, [ASKER, ASKER], server="ThreadingTCPServer", schedule=ts[0].schedule
    )
    assert again[0].schedule == ts[0].schedule


def test_waits_with_timeouts_are_virtual() -> None:
    waited: list[bool] = []

    class Waits(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            waited.append(threading.Event().wait(30))  # 30 virtual seconds, no real ones
            self.wfile.write(b"ok\n")

    patient = ClientScript((Read(until=b"\n"),), timeout=60)
    ts = sockshock.drive(Waits, [patient], server="ThreadingTCPServer", schedule=0)
    assert waited == [False]
    assert ts[0].elapsed == 30.0
    assert ts[0].received == b"ok\n"


def test_primitives_made_in_a_run_work_normally_afterwards() -> None:
    made: dict[str, Any] = {}

    class Makes(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            made["lock"] = threading.Lock()
            made["rlock"] = threading.RLock()
            made["event"] = threading.Event()
            made["queue"] = queue.Queue()
            self.wfile.write(b"ok\n")

    sockshock.drive(Makes, [[Read(until=b"\n")]], server="ThreadingTCPServer", schedule=0)
    assert threading.Lock is not type(made["lock"])  # the real one is back
    with made["lock"], made["rlock"], made["rlock"]:
        pass
    threading.Thread(target=made["event"].set).start()
    assert made["event"].wait(5)
    made["queue"].put(1)
    assert made["queue"].get(timeout=5) == 1


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"schedule": "7"},
            r"schedule='7' \(from drive\(\)\) is not a schedule",
        ),
        ({"schedule": True}, "schedule=True"),
        ({"schedule": -1}, r"schedule=-1 must be in \[0, "),
        ({"server": "ThreadingTCPServer"}, r"give schedule=SEED"),
        ({"server": "ForkingTCPServer", "schedule": 1}, r"forks a process per request"),
        ({"server": "ThredingTCPServer", "schedule": 1}, r"did you mean 'ThreadingTCPServer'"),
        ({"schedule": 1, "uncontrolled": "ignore"}, r"uncontrolled"),
        ({"schedule": 1, "uncontrolled_after": 0}, r"uncontrolled_after"),
        (
            {"schedule": 1, "server_attrs": {"max_worker": 2}, "server": "ThreadPoolTCPServer"},
            r"did you mean .max_workers.",
        ),
        ({"schedule": 1, "seed": 3}, r"seed= only applies with faults="),
    ],
)
def test_bad_input_is_one_clear_error(kwargs: dict[str, Any], message: str) -> None:
    if kwargs.get("server") == "ForkingTCPServer" and not hasattr(socketserver, "ForkingTCPServer"):
        pytest.skip("no fork here")
    with pytest.raises(InvalidArgument, match=message):
        sockshock.drive(Upper, [ASKER], **kwargs)


def test_a_standard_library_class_is_refused_with_the_reason() -> None:
    import socketserver as stdlib

    with pytest.raises(InvalidArgument, match=r"not a sockshock\.socketserver class"):
        sockshock.drive(Upper, [ASKER], server=stdlib.ThreadingTCPServer, schedule=1)


@pytest.mark.parametrize("clients", [[], "x", 3])
def test_clients_must_be_a_list(clients: Any) -> None:
    with pytest.raises(InvalidArgument, match="clients"):
        sockshock.drive(Upper, clients, schedule=1)


def test_a_stream_handler_on_a_datagram_server_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="StreamRequestHandler"):
        sockshock.drive(Upper, [[b"x"]], server="UDPServer", schedule=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pct:-1", "the seed '-1' is not a whole number"),
        ("pct:1:depth=0", "depth"),
        ("pct:1:length=0", "length"),
        ("pct:1:width=3", "'width=3' is not one of depth=N, length=N that 'pct' takes"),
        ("random:1.5", "the seed '1.5'"),
        ("replay:01x", "the digits of a recorded schedule"),
        ("replay:01:depth=2", "not one of seed=N"),
        ("pcy:3", "did you mean 'pct'"),
        ("pct:", "is not a schedule"),
    ],
)
def test_bad_schedule_strings_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        sockshock.drive(Upper, [ASKER], schedule=text)


def test_schedule_strings_round_trip() -> None:
    assert Schedule.replay("0120").choices == (0, 1, 2, 0)
    assert Schedule.replay("0,12,3").choices == (0, 12, 3)
    assert Schedule.replay([3, 0]).choices == (3, 0)
    assert Schedule.replay([12, 3]).spec() == "replay:12,3"
    assert str(Schedule.pct(4)) == "schedule 'pct:4:depth=3:length=100' (not run yet)"
    assert repr(Schedule.replay("01", seed=9)) == "<Schedule 'replay:01:seed=9'>"
    assert repr(Schedule.random(4)) == "<Schedule 'random:4'>"
    _ = Close, HalfClose  # steps any client may use


def test_an_http_handler_under_a_schedule() -> None:
    request = [Send(b"GET / HTTP/1.0\r\n\r\n"), Read()]
    ts = sockshock.drive(HelloHTTP, [request, request], server="ThreadingTCPServer", schedule=3)
    assert all(t.received.startswith(b"HTTP/1.0 200 OK") for t in ts)
    assert all(t.received.endswith(b"\r\n\r\nhi") for t in ts)


def test_a_full_pool_queue_stops_accepting_until_a_worker_takes_one() -> None:
    clients = [[Send(b"%d\n" % i), Read(until=b"\n")] for i in range(4)]
    waited = False
    for seed in range(10):
        ts = sockshock.drive(
            Upper,
            clients,
            server="ThreadPoolTCPServer",
            schedule=seed,
            server_attrs={"max_workers": 1, "max_queued_requests": 1},
        )
        assert [t.received for t in ts] == [b"0\n", b"1\n", b"2\n", b"3\n"]
        tasks = {e.task for e in ts[0].schedule.events}
        assert "worker 2" not in tasks  # one worker, as set
        waited = waited or any(e.op.startswith("wait for room") for e in ts[0].schedule.events)
    assert waited


def test_standard_library_timeouts_are_measured_in_virtual_time() -> None:
    seen: dict[str, Any] = {}

    class Times(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            inbox: queue.Queue[int] = queue.Queue()
            try:
                inbox.get(timeout=2)
            except queue.Empty:
                seen["queue"] = "empty"
            seen["semaphore"] = threading.Semaphore(0).acquire(timeout=3)
            condition = threading.Condition()
            with condition:
                seen["wait_for"] = condition.wait_for(lambda: False, timeout=4)
            self.wfile.write(b"done\n")

    patient = ClientScript((Read(until=b"\n"),), timeout=60)
    started = time.monotonic()
    ts = sockshock.drive(Times, [patient], server="ThreadingTCPServer", schedule=0)
    assert seen == {"queue": "empty", "semaphore": False, "wait_for": False}
    assert ts[0].elapsed == 9.0  # 2 + 3 + 4 virtual seconds
    assert ts[0].received == b"done\n"
    assert time.monotonic() - started < 2  # and nothing like 9 real ones


def test_a_fault_plan_keeps_its_own_seed_and_a_replay_line_carries_the_run_seed() -> None:
    from sockshock.faults import FaultPlan

    ts = sockshock.drive(
        Upper, [ASKER, ASKER], schedule=5, faults=FaultPlan(PartialReads(max_chunk=1), seed=3)
    )
    assert ts[0].plan.seed == 3
    line = ts[0].schedule.replay_line()
    assert line.endswith(":seed=5'")
    replayed = eval(line.split("=", 1)[1])
    again = sockshock.drive(
        Upper, [ASKER, ASKER], schedule=replayed, faults=[PartialReads(max_chunk=1)]
    )
    assert again[0].plan.seed == 5  # a list of models takes the run's seed


def test_a_datagram_handler_without_a_server_gets_the_threading_udp_server() -> None:
    ts = sockshock.drive(DatagramUpper, [[b"x"]], schedule=0)
    assert ts[0].transport == "datagram"
    assert ts[0].replies == [b"X"]


def test_runs_in_two_threads_at_once_stay_deterministic() -> None:
    expected = [outcome(run_checkout(seed)[0]) for seed in range(10)]
    got: dict[int, list[Any]] = {}

    def worker(k: int) -> None:
        got[k] = [outcome(run_checkout(seed)[0]) for seed in range(10)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert got == {0: expected, 1: expected}


def test_a_run_leaves_nothing_alive_behind_it() -> None:
    import gc

    from sockshock._sched import Scheduler, Task

    for seed in range(5):
        run_checkout(seed)
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, (Scheduler, Task))]
    assert alive == []  # not kept by the threads they ran (a WeakKeyDictionary did once)


def test_the_handlers_writes_wait_for_the_client_to_read() -> None:
    class Big(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()
            self.wfile.write(b"x" * 100_000)

    reader = [Send(b"go\n"), Pause(1), Read(size=100_000)]
    ts = sockshock.drive(Big, [reader], schedule=0, send_buffer=10_000)
    assert ts[0].received == b"x" * 100_000
    waits = [
        e
        for e in ts[0].schedule.events
        if e.op.startswith("recv client") is False and "(woke)" in e.op
    ]
    assert any(e.task == "handler 1" for e in waits)  # it waited for room, in the scheduler


def test_a_handler_that_never_stops_writing_is_stopped() -> None:
    class Endless(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                self.wfile.write(b"y" * 1000)

    ts = sockshock.drive(Endless, [[Read()]], schedule=0, max_output=50_000)
    assert isinstance(ts[0].error, HandlerHangs)
    assert "max_output=50000" in str(ts[0].error)

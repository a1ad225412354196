"""Telling what happened, replays that do not lie, reports a person can read,
strategies sized to the request (issue 24, items 4-7)."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import sockshock
import sockshock.socketserver as ss
from sockshock import faults as F
from sockshock.errors import FaultNeverFired, InvalidArgument
from sockshock.handlers import LineEcho
from sockshock.scripts import ClientScript, Close, HalfClose, Read, Reset, Send
from sockshock.strategies import client_scripts, fault_plans

# -- strategies sized to the request -------------------------------------------------------

CALL = json.dumps({"method": "transfer", "params": ["x" * 120]}).encode() + b"\n"


class RunsCutCalls(ss.BaseRequestHandler):
    """jsonrpclib's bug: a body that parses is run, though its final newline (the
    end of the request) never came."""

    def handle(self) -> None:
        body = b""
        while chunk := self.request.recv(4096):
            body += chunk
        try:
            json.loads(body)
        except ValueError:
            self.request.sendall(b"error\n")
            return
        self.server.ran.append(body)
        self.request.sendall(b"ok\n")


def runs_only_complete_calls(plan: F.FaultPlan) -> None:
    ran: list[bytes] = []
    transcript = sockshock.drive(RunsCutCalls, CALL, faults=plan, server_attrs={"ran": ran})
    assert transcript.request_complete or not ran, "a cut call was run"


def test_plans_sized_to_the_request_cut_a_long_body_anywhere() -> None:
    # Before: fault_plans() drew nbytes <= 64 only (no request=), so the cut that
    # loses only the final newline of a 140-byte call was never drawn.
    assert len(CALL) > 64
    check = settings(max_examples=300, database=None, deadline=None, derandomize=True)(
        given(plan=fault_plans(models=[F.EOFAfter], min_models=1, request=CALL))(
            runs_only_complete_calls
        )
    )
    with pytest.raises(AssertionError) as failure:
        check()
    notes = "\n".join(failure.value.__notes__)
    assert f"EOFAfter(nbytes={len(CALL) - 1})" in notes


@settings(max_examples=50)
@given(plan=fault_plans(models=[F.EOFAfter, F.ResetAfter, F.Stall], min_models=1))
def test_without_the_request_byte_counts_stay_within_64(plan: F.FaultPlan) -> None:
    assert all(model.nbytes <= 64 for model in plan.models)  # type: ignore[attr-defined]


def test_max_bytes_request_takes_the_request_s_length() -> None:
    plan = find(
        fault_plans(models=[F.EOFAfter], min_models=1, request=300, max_bytes="request"),
        lambda p: p.models[0].nbytes > 250,  # type: ignore[attr-defined]
    )
    assert plan.models[0].nbytes == 251  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match=r"max_bytes='request' .* needs the request"):
        fault_plans(max_bytes="request")
    with pytest.raises(InvalidArgument, match=r"request='x' \(type=str\)"):
        fault_plans(request="x")  # type: ignore[arg-type]


@settings(max_examples=60)
@given(script=client_scripts(st.binary(min_size=2, max_size=20), max_chunks=3))
def test_client_scripts_say_their_request_and_how_they_end(script: ClientScript) -> None:
    assert script.intended is not None
    assert script.intended.startswith(script.request)
    assert script.complete == (script.request == script.intended)
    last = script.steps[-1]
    expected = {Reset: "reset", Read: "half_close"}.get(type(last), "close")
    if expected == "close" and not script.complete:
        expected = "stop_midway"
    assert script.ending == expected


def test_a_stop_midway_script_tells_its_cut_request() -> None:
    script = find(
        client_scripts(b"abcdef", endings=["stop_midway"], max_chunks=3),
        lambda s: bool(s.request) and not s.complete,
    )
    assert script.ending == "stop_midway"
    assert script.request == b"a"
    assert repr(script) == "ClientScript([Send(b'a'), Close()], intended=b'abcdef')"
    assert ClientScript([Send(b"x"), Close()]).ending == "close"
    assert ClientScript([Send(b"x"), HalfClose(), Read()]).complete


# -- telling what happened -------------------------------------------------------------------


def test_fault_events_carry_their_model() -> None:
    transcript = sockshock.drive(
        LineEcho, b"hello\n", faults=[F.PartialReads(2), F.PartialWrites(3)], seed=1
    )
    reads = [e for e in transcript.log if isinstance(e.model, F.PartialReads)]
    # Before: event.model was the string "PartialReads(max_chunk=2)": this found nothing.
    assert reads
    assert {e.name for e in reads} == {"PartialReads"}
    assert reads[0].model == F.PartialReads(2)
    assert str(reads[0]).startswith("recv #0 @0 (8192 bytes): PartialReads(max_chunk=2) ->")


def test_an_eof_after_that_cuts_nothing_is_not_logged() -> None:
    # Before: EOFAfter(100) logged "limit=100" on a 6-byte request it never cut.
    transcript = sockshock.drive(LineEcho, b"hello\n", faults=[F.EOFAfter(100)], seed=1)
    assert transcript.log == []
    assert transcript.received == b"hello\n"
    cut = sockshock.drive(LineEcho, b"hello\n", faults=[F.EOFAfter(3)], seed=1)
    assert [(e.offset, e.decision.action) for e in cut.log] == [(3, "eof")]


def test_the_transcript_says_what_the_handler_read_before_end_of_file() -> None:
    class Slurp(ss.BaseRequestHandler):
        def handle(self) -> None:
            while self.request.recv(100):
                pass

    cut = sockshock.drive(Slurp, b"hello world", faults=[F.EOFAfter(5)], seed=0)
    assert (cut.input, cut.request, cut.request_complete) == (b"hello", b"hello world", False)
    assert "handler read b'hello' (part of the request)" in str(cut)
    whole = sockshock.drive(Slurp, b"hello world")
    assert (whole.input, whole.request_complete) == (b"hello world", True)


# -- replays that do not silently lie --------------------------------------------------------


def test_a_plan_used_twice_is_refused_and_replay_is_the_way() -> None:
    plan = F.FaultPlan(F.PartialReads(3), rng=[F.Draws([0.9, 0.5])])
    first = sockshock.drive(LineEcho, b"hello\nworld\n", faults=plan)
    with pytest.raises(InvalidArgument) as error:
        sockshock.drive(LineEcho, b"hello\nworld\n", faults=plan)
    message = str(error.value)
    assert "a plan an earlier drive() used" in message
    assert "plan.replay()" in message
    again = sockshock.drive(LineEcho, b"hello\nworld\n", faults=plan.replay())
    assert [e.decision for e in again.log] == [e.decision for e in first.log]
    assert len(plan.log) == len(first.log)  # the log did not keep growing


def test_fault_never_fired_for_a_drawn_plan_names_the_plan_not_a_seed() -> None:
    plan = F.FaultPlan(F.PartialReads(2, connections=[5]), rng=[F.Draws([])])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FaultNeverFired)
        with (
            sockshock.serving("TCPServer", LineEcho, faults=plan) as srv,
            srv.connect() as client,
        ):
            client.sendall(b"x\n")
            client.recv(10)
    (warning,) = [w for w in caught if issubclass(w.category, FaultNeverFired)]
    text = str(warning.message)
    assert f"(plan {plan!r})" in text
    assert "rng=[Draws([])]" in text
    assert "seed" not in text


@settings(max_examples=40)
@given(plan=fault_plans(models=[F.Latency(seconds=0.0), F.PartialReads(3)], seeded=True))
def test_no_op_models_are_left_out_of_drawn_plans(plan: F.FaultPlan) -> None:
    assert all(not isinstance(m, F.Latency) for m in plan.models)


def test_a_seeded_plan_shrinks_without_its_no_op_models() -> None:
    # Before: Latency(seconds=0.0) stayed in the shrunk plan: deleting it renumbers
    # the models after it, whose decisions (from the seed) then change.
    plan = find(
        fault_plans(models=[F.Latency, F.PartialReads], seeded=True, min_models=1),
        lambda p: any(isinstance(m, F.PartialReads) for m in p.models),
    )
    assert [type(m) for m in plan.models] == [F.PartialReads]


# -- reports a person can read -------------------------------------------------------------


def test_long_payloads_are_abbreviated_with_length_and_digest() -> None:
    payload = b"GET / HTTP/1.1\r\n" + b"a" * (8 * 2**20)
    script = ClientScript([Send(payload), HalfClose(), Read()])
    text = repr(script)
    assert len(text) < 200
    assert "...(8388624 bytes, sha256 " in text
    assert repr(ClientScript([Send(payload + b"b"), Close()])) != text.replace("Read()", "")

    class Echo(ss.BaseRequestHandler):
        def handle(self) -> None:
            while data := self.request.recv(65536):
                self.request.sendall(data)

    transcript = sockshock.drive(Echo, script)
    assert transcript.received == payload
    assert len(str(transcript)) < 1000
    assert len(repr(transcript)) < 400
    short = ClientScript([Send(b"x" * 100)])
    assert repr(short) == f"ClientScript([Send({b'x' * 100!r})])"  # short ones stay exact


def test_the_machine_s_client_report_is_abbreviated() -> None:
    from sockshock._clients import ScriptRun
    from sockshock.strategies import ServerMachine

    class Machine(ServerMachine):
        handler_class = LineEcho

    machine: Any = Machine()
    with sockshock.serving("TCPServer", LineEcho) as srv:
        run = ScriptRun(
            ClientScript([Send(b"z" * 10**6 + b"\n"), Read(until=b"\n")]), srv.connect()
        )
        run.run()
        machine.finished.append(run)
    report = machine._describe_clients()
    assert len(report) < 500
    assert "(1000001 bytes, sha256" in report

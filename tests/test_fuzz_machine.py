"""ServerMachine never loses a failure: a check that fails in the teardown of an
example hypothesis aborted (its data ran out) is reported, every time."""

from __future__ import annotations

import unittest
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from sockshock._strategies._machine import AbortedExampleFailure
from sockshock.handlers import LineEcho
from sockshock.scripts import ClientScript, HalfClose, Read, Send
from sockshock.strategies import ServerMachine


class Chopped(LineEcho):
    """Answers a line without its newline."""

    def handle(self) -> None:
        self.wfile.write(self.rfile.readline()[:-1])


class AbortedMachine(ServerMachine):
    """Every example opens one client, then draws more data than hypothesis allows
    (it aborts the example with StopTest); the teardown then finishes the client's
    script and its check fails -- only there: a run that ends normally passes."""

    handler_class = Chopped
    audit = False
    max_clients = 1
    scripts = st.just(ClientScript([Send(b"hi\n"), HalfClose(), Read()], timeout=1.0))
    exhausted = False

    def expected_reply(self, request: bytes) -> bytes:
        return b"never" if self.exhausted else request[:-1]

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data())
    def exhaust(self, data: st.DataObject) -> None:
        self.exhausted = True
        data.draw(st.binary(min_size=20_000))  # past hypothesis' buffer: StopTest


FAST = settings(
    max_examples=1,
    stateful_step_count=4,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
AbortedMachine.TestCase.settings = FAST


def run_case(case: type[unittest.TestCase]) -> unittest.TestResult:
    result = unittest.TestResult()
    case("runTest").run(result)
    return result


def test_a_check_failing_after_an_abort_is_reported_in_100_of_100_runs() -> None:
    # Before: hypothesis took the AssertionError for part of its abort and the run
    # passed (7 of 62 runs of a real machine whose check_reply had failed).
    outcomes = []
    for _ in range(100):
        result = run_case(AbortedMachine.TestCase)
        outcomes.append([text.splitlines()[-1] for _, text in result.failures + result.errors])
    assert all(len(found) == 1 for found in outcomes), outcomes
    (failure,) = run_case(AbortedMachine.TestCase).failures
    text = failure[1]
    assert "AssertionError: a client sent b'hi\\n' and half-closed; it got b'hi'" in text
    assert "hypothesis had aborted (its data ran out)" in text
    assert "client 0: ClientScript([Send(b'hi\\n'), HalfClose(), Read()], timeout=1.0)" in text
    assert "StopTest" not in text  # the abort is not the failure's context


def test_run_any_other_way_the_machine_fails_at_once() -> None:
    with pytest.raises(AbortedExampleFailure) as failure:
        run_state_machine_as_test(AbortedMachine, settings=FAST)
    assert isinstance(failure.value.__cause__, AssertionError)
    assert "run the machine as AbortedMachine.TestCase" in str(failure.value)


def test_the_test_case_keeps_its_settings_and_name() -> None:
    case: Any = AbortedMachine.TestCase
    assert case is AbortedMachine.TestCase
    assert case.settings is FAST
    assert case.__name__ == "AbortedMachine.TestCase"


class Poised(AbortedMachine):
    """The same machine with a check that passes: aborted examples report nothing."""

    def expected_reply(self, request: bytes) -> bytes:
        return request[:-1]


Poised.TestCase.settings = FAST


def test_aborted_examples_whose_checks_pass_report_nothing() -> None:
    result = run_case(Poised.TestCase)
    assert result.wasSuccessful(), result.failures + result.errors


# -- a failure that depends on the interleaving: retried before it is called flaky ----------

HANDLED = [0]


class Racy(LineEcho):
    """Loses a race on every other connection (counted over the process): the
    replay of an example that failed passes."""

    def handle(self) -> None:
        line = self.rfile.readline()
        HANDLED[0] += 1
        if HANDLED[0] % 2:
            raise RuntimeError("lost the race")
        self.wfile.write(line)


class RacyMachine(ServerMachine):
    server_class = "TCPServer"
    handler_class = Racy
    audit = False
    max_clients = 1
    scripts = st.just(ClientScript([Send(b"hi\n"), HalfClose(), Read()], timeout=1.0))


class RetryingMachine(RacyMachine):
    retries = 1


def run_example(machine_class: type[RacyMachine]) -> str:
    """One example as hypothesis runs it: the rules, then the teardown."""
    machine = machine_class()
    machine._start(None)
    machine._open(ClientScript([Send(b"hi\n"), HalfClose(), Read()], timeout=1.0))
    try:
        machine.teardown()
    except RuntimeError as error:
        return "failed" + (
            ", on retry"
            if "failed again on retry 1 of 1" in str(getattr(error, "__notes__", ""))
            else ""
        )
    return "passed"


def test_an_example_that_failed_is_retried_before_it_passes() -> None:
    # Before: no retries; hypothesis' replay of a race-dependent failure passed and
    # the run ended as FlakyFailure without a shrunk example.
    HANDLED[0] = 0
    assert [run_example(RacyMachine) for _ in range(2)] == ["failed", "passed"]
    HANDLED[0] = 0
    assert [run_example(RetryingMachine) for _ in range(2)] == ["failed", "failed, on retry"]


RACY = settings(FAST, max_examples=20, stateful_step_count=2)
RetryingMachine.TestCase.settings = RACY


def test_with_retries_a_race_is_reported_as_the_failure_it_is() -> None:
    result = run_case(RetryingMachine.TestCase)
    (text,) = [text for _, text in result.failures + result.errors]
    assert "Flaky" not in text
    assert "RuntimeError: lost the race" in text

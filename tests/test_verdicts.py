"""False verdicts a new user hit: a test that passed although its premise was never
in force (a misspelled ``faults=``), a check that failed a healthy server (a
multi-line reply cut short), a message that named the wrong cause, a reported seed
that replays another run."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from typing import Any

import pytest

import sockshock
from sockshock import faults as F
from sockshock.errors import InvalidArgument
from sockshock.handlers import LineEcho

pytest_plugins = ["pytester"]


# -- 1. a misspelled serving() keyword is not a server attribute ---------------------


@pytest.mark.parametrize(
    ("attrs", "meant"),
    [
        ({"fault": [F.ResetAfter(0)]}, "faults"),
        ({"fautls": [F.ResetAfter(0)]}, "faults"),
        ({"sead": 3}, "seed"),
        ({"expect_error": ValueError}, "expect_errors"),
        ({"shutdown_timout": 2.0}, "shutdown_timeout"),
        ({"server_kwarg": {}}, "server_kwargs"),
        ({"tls_stric": True}, "tls_strict"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else value,
)
def test_a_near_miss_of_a_serving_parameter_is_refused_before_anything_starts(
    attrs: dict[str, Any], meant: str
) -> None:
    name = next(iter(attrs))
    threads = threading.active_count()
    with pytest.raises(InvalidArgument) as info:
        with sockshock.serving("ThreadingTCPServer", LineEcho, **attrs):
            pytest.fail("the server started")  # pragma: no cover
    message = str(info.value)
    assert message.startswith(f"{name}="), message
    assert "(from serving())" in message
    assert f"did you mean {meant}=?" in message
    assert f"class MyThreadingTCPServer(ThreadingTCPServer): {name} = None" in message
    assert threading.active_count() == threads


@pytest.mark.parametrize("name", ["lock", "stock", "app", "handler", "clocks_seen", "db"])
def test_state_of_ones_own_is_still_a_server_attribute(name: str) -> None:
    state = object()
    with sockshock.serving("ThreadingTCPServer", LineEcho, **{name: state}) as srv:
        assert getattr(srv.server, name) is state


def test_a_class_that_has_the_attribute_takes_it_all_the_same() -> None:
    class Server(sockshock.socketserver.ThreadingTCPServer):
        fault: object = None

    with sockshock.serving(Server, LineEcho, fault="mine") as srv:
        assert srv.server.fault == "mine"


def test_the_checked_parameters_are_servings_own() -> None:
    from sockshock._harness import SERVING_PARAMETERS

    parameters = [
        p.name
        for p in inspect.signature(sockshock.serving).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert sorted(SERVING_PARAMETERS) == sorted(parameters)


def test_the_fixture_refuses_a_misspelled_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from sockshock import faults as F
        from sockshock.handlers import LineEcho

        def test_resets(sockshock):
            srv = sockshock.serve("ThreadingTCPServer", LineEcho, fautls=[F.ResetAfter(0)])
            with srv.connect() as client:
                client.sendall(b"hello\\n")
                assert client.recv(100) == b"hello\\n"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*InvalidArgument: fautls=*did you mean faults=?*"])


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ("{ fautls = 1 }", "fautls=1 (from [server] attrs): not an attribute"),
        ("{ seed = 3 }", "seed=3 (from [server] attrs): seed is serving()'s own parameter"),
    ],
)
def test_a_scenario_refuses_servings_parameters_among_its_attrs(
    tmp_path: Path, attrs: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sockshock._cli import main

    path = tmp_path / "bad.toml"
    path.write_text(f"[server]\nattrs = {attrs}\n")
    assert main(["check", str(path)]) == 1
    assert f"INVALID {path}:2: {message}" in capsys.readouterr().out


def test_a_server_machine_refuses_a_misspelled_serving_parameter() -> None:
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test

    from sockshock.strategies import ServerMachine

    class Machine(ServerMachine):
        handler_class = LineEcho
        server_attrs = {"sead": 3}  # noqa: RUF012

    with pytest.raises(InvalidArgument, match=r"sead=3 \(from serving\(\)\).*did you mean seed="):
        run_state_machine_as_test(
            Machine, settings=settings(max_examples=1, stateful_step_count=1, database=None)
        )

"""The scenario library: every shipped scenario runs green against a correct
reference server and red against a known-bad handler or server it is meant to
catch; broken scenario files each get one clear error with file:line, the key, the
value and what is allowed; `sockshock check` validates a folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sockshock
from sockshock import scenarios as S
from sockshock.handlers import NaiveRecvEcho
from tests import scenario_culprits as culprits

SHIPPED = S.names()

# scenario -> (server class override, handler override) that it must catch
CULPRITS: dict[str, tuple[Any, Any]] = {
    "slow-clients": ("TCPServer", None),  # one slow client starves a synchronous server
    "slowloris": ("TCPServer", None),
    "non-reading-clients": ("TCPServer", None),
    "partial-io": (None, NaiveRecvEcho),  # one recv() is not one line
    "reset-storm": (None, culprits.ShutsDownOnReset),
    "early-eof": (None, NaiveRecvEcho),
    "lossy-udp": (None, culprits.StrictDatagrams),
    "udp-duplicates-reorder": (None, culprits.StrictDatagrams),
    "udp-burst-loss": (None, culprits.StrictDatagrams),
    "abrupt-shutdown": (None, culprits.HoldsOnShutdown),
    "accept-exhaustion": (culprits.StopsOnAcceptError, None),
    "tls-handshake-stall": ("TCPServer", None),  # a stalled handshake blocks everyone
    "mixed": (None, NaiveRecvEcho),
}


@pytest.fixture
def released() -> Iterator[None]:
    culprits.RELEASE.clear()
    yield
    culprits.RELEASE.set()


def test_the_library_ships_at_least_a_dozen_scenarios_each_with_a_culprit() -> None:
    assert len(SHIPPED) >= 12
    assert set(SHIPPED) == set(CULPRITS)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_scenario_passes_against_its_reference_server(name: str) -> None:
    result = S.run(S.find(name))
    assert result.passed, [f"{c.name}: {c.detail}" for c in result.failures()]
    assert {c.name for c in result.checks} >= {"answered", "stops within", "handler errors",
                                                "no leaks"}


@pytest.mark.usefixtures("released")
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_scenario_catches_the_bug_it_is_meant_to_catch(name: str) -> None:
    server_class, handler = CULPRITS[name]
    result = S.run(S.find(name), server_class=server_class, handler=handler)
    culprits.RELEASE.set()
    assert not result.passed, f"{name} did not catch {server_class or handler}"


# -- broken scenario files: (content, expected message) --------------------------------

BROKEN = [
    ("duration = 0\n", "broken.toml:1: duration=0.0 must be in (0, 60]"),
    ("durations = 1\n", "broken.toml:1: unknown key 'durations' in the scenario (value 1); "
                        "allowed: name, description, duration, seed"),
    ("duration = \"long\"\n", "broken.toml:1: duration='long' in the scenario must be a float"),
    ("[load]\nclients = 5000\n", "broken.toml:2: clients=5000 must be in [0, 1000]"),
    ("[load]\nrequest = \"\\\\x\"\n", "broken.toml:2: request='\\\\x' is not a valid escaped"),
    ("[[faults]]\nmodel = \"PartialRead\"\n",
     "broken.toml:2: model='PartialRead' in [[faults]] is not a fault model; allowed: "
     "AbruptShutdown"),
    ("[[faults]]\nmodel = \"Latency\"\nseconds = 0.1\n\n[[faults]]\nmodel = \"Latency\"\n"
     "seconds = -1\n",
     "broken.toml:7: seconds=-1 must be in [0, 3600] (from Latency)"),
    ("[[faults]]\nmodel = \"PartialReads\"\nmax_chunks = 3\n",
     "broken.toml:1: PartialReads: "),
    ("[[clients]]\nkind = \"slowlaris\"\n", "kind='slowlaris'"),
    ("[[clients]]\nkind = \"slowloris\"\ncount = 100000\n", "broken.toml:3"),
    ("[expect]\nanswered = \"most\"\n",
     "broken.toml:2: answered='most' must be \"all\" or a fraction in [0, 1]"),
    ("[expect]\nhandler_errors = [\"Not An Exception\"]\n",
     "broken.toml:2: handler_errors=['Not An Exception'] must be \"none\", \"any\" or a list"),
    ("[server]\nclass = 3\n", "broken.toml:2: class=3 in [server] must be a str"),
    ("[server\n", "broken.toml: not valid TOML"),
]


@pytest.mark.parametrize(("content", "message"), BROKEN,
                         ids=[c.splitlines()[-1][:30] for c, _ in BROKEN])
def test_a_broken_scenario_file_gets_one_clear_error(tmp_path: Path, content: str,
                                                     message: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(content)
    with pytest.raises(sockshock.ConfigurationError) as info:
        S.load(path)
    assert message in str(info.value), str(info.value)
    assert str(path).split("/")[-1] in str(info.value)


def test_an_unknown_name_lists_the_library() -> None:
    with pytest.raises(sockshock.InvalidArgument, match="known: abrupt-shutdown, "):
        S.find("no-such-scenario")


def test_sockshock_check_validates_a_folder(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from sockshock.cli import main

    assert main(["check", str(Path(__file__).parent.parent / "scenarios")]) == 0
    out = capsys.readouterr().out
    assert f"{len(SHIPPED)} scenario(s) checked: all valid" in out
    (tmp_path / "good.toml").write_text("duration = 0.1\n")
    (tmp_path / "bad.toml").write_text("[load]\nclients = -1\n")
    assert main(["check", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "bad.toml:2: clients=-1 must be in [0, 1000]" in captured.out
    assert "2 scenario(s) checked: 1 invalid" in captured.out

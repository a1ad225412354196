"""A broken scenario file reports every mistake at once: one ``InvalidArgument``
listing them all in file order (``N problems in FILE:``, numbered, each with
``file:line``, the key path, the value and the problem), while a single mistake
keeps its one-line message; ``sockshock check`` and ``sockshock run`` print the
whole report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sockshock import scenarios as S
from sockshock._cli import main
from sockshock._scenarios import resolve
from sockshock.errors import InvalidArgument
from tests._support import run_pytest

pytest_plugins = ["pytester"]

# Seven mistakes of different kinds, one a line (the line numbers are the file's).
BROKEN = """\
name = "slow"
duration = -1
durration = 3

[server]
class = "ThreadingTCPServr"

[[faults]]
model = "Latency"
seconds = -2

[[faults]]
model = "PartialReadz"

[[faults]]
model = "PartialReads"
max_chunk = 2
maxx = 3

[load]
clients = "ten"

[expect]
answered = "most"
"""

# (line, key path, fragment naming the value and the problem), in file order
EXPECTED = [
    (2, 'scenario "slow" -> duration', "duration=-1.0 must be in (0, 60]"),
    (3, 'scenario "slow" -> durration', "unknown key 'durration' in the scenario (value 3)"),
    (6, 'scenario "slow" -> server -> class', "did you mean 'ThreadingTCPServer'?"),
    (10, 'scenario "slow" -> faults[0] -> seconds', "seconds=-2 must be in [0, 3600]"),
    (13, 'scenario "slow" -> faults[1] -> model', "did you mean 'PartialReads'?"),
    (18, 'scenario "slow" -> faults[2] -> maxx', "unknown parameter 'maxx' of PartialReads"),
    (21, 'scenario "slow" -> load -> clients', "clients='ten' in [load] must be an integer"),
    (24, 'scenario "slow" -> expect -> answered', "answered='most' must be \"all\""),
]


def _write(folder: Path, text: str, name: str = "broken.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _check_report(message: str, path: Path, expected: list[tuple[int, str, str]]) -> None:
    lines = message.splitlines()
    assert lines[0] == f"{len(expected)} problems in {path}:", message
    assert len(lines) == len(expected) + 1, message
    for number, (line, (at, place, fragment)) in enumerate(
        zip(lines[1:], expected, strict=True), start=1
    ):
        head = f"{number:>{len(str(len(expected)))}}. {path}:{at}: {place}: "
        assert line.strip().startswith(head.strip()), (head, line)
        assert fragment in line, (fragment, line)


def test_every_mistake_in_one_error_in_file_order(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN)
    with pytest.raises(InvalidArgument) as info:
        resolve(S.load(path))  # S.load already refuses: resolve is never reached
    _check_report(str(info.value), path, [e for e in EXPECTED if "server -> class" not in e[1]])
    assert type(info.value) is InvalidArgument


def test_one_mistake_keeps_the_one_line_message(tmp_path: Path) -> None:
    path = _write(tmp_path, "duration = -1\n[load]\nclients = 2\n")
    with pytest.raises(InvalidArgument) as info:
        S.load(path)
    assert str(info.value) == f"{path}:1: duration=-1.0 must be in (0, 60]"
    assert type(info.value) is InvalidArgument  # the public class, not a private one


def test_a_toml_syntax_error_stops_everything_else(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN.replace("seconds = -2", "seconds = = -2"))
    with pytest.raises(InvalidArgument) as info:
        S.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:10: not valid TOML")


def test_a_table_that_is_not_a_table_stops_its_branch_only(tmp_path: Path) -> None:
    path = _write(tmp_path, 'duration = -1\n\n[[server]]\nclass = "Nope"\n\n[load]\nclients = -1\n')
    with pytest.raises(InvalidArgument) as info:
        resolve(S.load(path))
    _check_report(
        str(info.value),
        path,
        [
            (1, 'scenario "broken" -> duration', "duration=-1.0"),
            (3, 'scenario "broken" -> server', "in the scenario must be a table"),
            (7, 'scenario "broken" -> load -> clients', "clients=-1"),
        ],
    )


def test_a_misspelled_required_parameter_is_said_once(tmp_path: Path) -> None:
    """``max_chnk`` is both unknown and the missing ``max_chunk``: one problem."""
    path = _write(tmp_path, '[[faults]]\nmodel = "PartialReads"\nmax_chnk = 3\n')
    with pytest.raises(InvalidArgument) as info:
        S.load(path)
    assert str(info.value).startswith(f"{path}:3: unknown parameter 'max_chnk'")
    assert "\n" not in str(info.value)


def test_each_bad_value_of_one_model_or_client_is_its_own_problem(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[faults]]\nmodel = "PartialReads"\nmax_chunk = 0\nprobability = 1.5\nper = "byte"\n\n'
        "[[clients]]\nkind = 'slowloris'\ncount = -1\ninterval = nan\nduration = 1e9\n",
    )
    with pytest.raises(InvalidArgument) as info:
        S.load(path)
    _check_report(
        str(info.value),
        path,
        [
            (3, 'scenario "broken" -> faults[0] -> max_chunk', "max_chunk=0"),
            (4, 'scenario "broken" -> faults[0] -> probability', "probability=1.5"),
            (5, 'scenario "broken" -> faults[0] -> per', "per='byte'"),
            (9, 'scenario "broken" -> clients[0] -> count', "count=-1"),
            (10, 'scenario "broken" -> clients[0] -> interval', "interval=nan"),
            (11, 'scenario "broken" -> clients[0] -> duration', "duration=1000000000.0"),
        ],
    )


def test_resolving_collects_independent_problems_and_skips_dependent_ones(
    tmp_path: Path,
) -> None:
    """Two faults that cannot fire on a TCP server and a datagram client: each its own
    problem; with the server class unknown, none of them can be judged."""
    text = (
        '[server]\nclass = "ThreadingTCPServer"\n\n'
        '[[faults]]\nmodel = "DropDatagrams"\n\n'
        '[[faults]]\nmodel = "PartialReads"\nmax_chunk = 1\n\n'
        '[[faults]]\nmodel = "DuplicateDatagrams"\n\n'
        "[[clients]]\nkind = 'datagram_burst'\n"
    )
    path = _write(tmp_path, text)
    scenario = S.load(path)  # every value is fine on its own
    with pytest.raises(InvalidArgument) as info:
        resolve(scenario)
    _check_report(
        str(info.value),
        path,
        [
            (5, 'scenario "broken" -> faults[0] -> model', "DropDatagrams"),
            (12, 'scenario "broken" -> faults[2] -> model', "DuplicateDatagrams"),
            (15, 'scenario "broken" -> clients[0] -> kind', "kind='datagram_burst'"),
        ],
    )
    unknown = _write(tmp_path, text.replace("ThreadingTCPServer", "NoSuchServer"), "u.toml")
    with pytest.raises(InvalidArgument) as info:
        resolve(S.load(unknown))
    assert str(info.value).startswith(f"{unknown}:2: class='NoSuchServer'")
    assert "\n" not in str(info.value)


# -- the command line ---------------------------------------------------------------------


def test_check_prints_every_problem_of_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _write(tmp_path, BROKEN, "a.toml")
    one = _write(tmp_path, "duration = 0\n", "b.toml")
    good = _write(tmp_path, "duration = 0.1\n", "c.toml")
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {len(EXPECTED)} problems in {broken}:" in out
    for at, place, fragment in EXPECTED:
        assert re.search(rf"^ +\d+\. {re.escape(f'{broken}:{at}: {place}: ')}", out, re.M), (
            place,
            out,
        )
        assert fragment in out
    assert f"INVALID {one}:1: duration=0.0 must be in (0, 60]" in out
    assert f"ok      {good}" in out
    assert f"3 scenario(s) checked: 2 invalid ({len(EXPECTED) + 1} problem(s))" in out


def test_run_prints_the_report_and_writes_it_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _write(tmp_path, BROKEN)
    out_json = tmp_path / "out.json"
    assert main(["run", str(broken), "no-such-scenario", "--json", str(out_json)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sockshock run: {len(EXPECTED)} problems in {broken}:\n"), err
    for at, place, _ in EXPECTED:
        assert f"{broken}:{at}: {place}: " in err
    assert "sockshock run: SCENARIO='no-such-scenario' is neither" in err
    data = json.loads(out_json.read_text())
    assert data["passed"] is False
    problems = data["problems"]
    assert [(p["line"], p["key"]) for p in problems[: len(EXPECTED)]] == [
        (at, place) for at, place, _ in EXPECTED
    ]
    assert problems[0] == {
        "file": str(broken),
        "line": 2,
        "key": 'scenario "slow" -> duration',
        "problem": "duration=-1.0 must be in (0, 60]",
        "message": f"{broken}:2: duration=-1.0 must be in (0, 60]",
    }
    assert problems[-1]["file"] is None
    assert "no-such-scenario" in problems[-1]["message"]


def test_run_with_one_mistake_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "duration = 0\n")
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"sockshock run: {path}:1: duration=0.0 must be in (0, 60]\n"
    )


def test_the_pytest_marker_reports_every_problem(pytester: pytest.Pytester) -> None:
    path = _write(pytester.path, BROKEN)
    pytester.makepyfile(
        test_uses_it=f"""
        import pytest

        @pytest.mark.faults({str(path)!r})
        def test_it(sockshock):
            pass
        """
    )
    result = run_pytest(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str() + result.stdout.str()
    assert f"{len(EXPECTED) - 1} problems in {path}:" in text, text
    for at, place, _ in EXPECTED:
        if "server" not in place:  # the marker takes faults and clients: no server class
            assert f"{path}:{at}: {place}: " in text, text


# -- any set of independent mistakes ------------------------------------------------------

# (section, line to write, key path after the scenario's, fragment): independent of
# each other, so that any subset is reported whole.
MISTAKES = [
    ("", "duration = -1", "duration", "duration=-1.0"),
    ("", "seed = -1", "seed", "seed=-1"),
    ("", "descripton = 'x'", "descripton", "did you mean 'description'?"),
    ("", "name = 3", "name", "name=3"),
    ("[server]", 'tls = "yes"', "server -> tls", "tls='yes'"),
    ("[server]", "klass = 1", "server -> klass", "did you mean 'class'?"),
    ("[[faults]]", 'model = "PartialReadz"', "faults[{i}] -> model", "'PartialReadz'"),
    ("[[faults]]", 'model = "Latency"\nseconds = -2', "faults[{i}] -> seconds", "seconds=-2"),
    ("[[faults]]", 'model = "Stall"\ndirection = "up"', "faults[{i}] -> direction", "'up'"),
    ("[[clients]]", "kind = 'slowlorris'", "clients[{j}] -> kind", "'slowloris'?"),
    ("[load]", "clients = -1", "load -> clients", "clients=-1"),
    ("[load]", "concurrency = 0", "load -> concurrency", "concurrency=0"),
    ("[load]", 'request = ""', "load -> request", "request is empty"),
    ("[expect]", 'answered = "most"', "expect -> answered", "answered='most'"),
    ("[expect]", "stops_within = 0", "expect -> stops_within", "stops_within=0"),
    ("[expect]", "no_leaks = 1", "expect -> no_leaks", "no_leaks=1"),
]


def _file(chosen: list[int]) -> tuple[str, list[tuple[int, str, str]]]:
    """The text with the chosen mistakes (in the catalogue's order, sections grouped)
    and what the report must say of each, in file order."""
    lines: list[str] = []
    expected: list[tuple[int, str, str]] = []
    sections: dict[str, list[int]] = {}
    for index in sorted(chosen):
        sections.setdefault(MISTAKES[index][0], []).append(index)
    faults = clients = 0
    for section, indices in sections.items():
        array = section.startswith("[[")
        if section and not array:
            lines.append(section)
        for index in indices:
            _, text, key, fragment = MISTAKES[index]
            if array:
                lines.append(section)
            key = key.format(i=faults, j=clients)
            faults += section == "[[faults]]"
            clients += section == "[[clients]]"
            lines.extend(text.splitlines())
            expected.append((len(lines), key, fragment))
    return "\n".join(lines) + "\n", expected


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chosen=st.sets(st.integers(0, len(MISTAKES) - 1), min_size=1))
def test_any_set_of_independent_mistakes_is_reported_whole(
    tmp_path: Path, chosen: set[int]
) -> None:
    text, expected = _file(sorted(chosen))
    path = _write(tmp_path, text, "any.toml")
    with pytest.raises(InvalidArgument) as info:
        resolve(S.load(path))
    message = str(info.value)
    if len(expected) == 1:
        ((at, _, fragment),) = expected
        assert "\n" not in message
        assert message.startswith(f"{path}:{at}: ")
        assert fragment in message
        return
    _check_report(
        message, path, [(at, f'scenario "any" -> {key}', frag) for at, key, frag in expected]
    )

"""``ClientScript(steps)`` takes the steps in every form a user writes them -- a list
literal, a list in a variable, a tuple, a generator (read once), a sequence a
function returns -- keeps them as a tuple, and refuses anything else with one
error naming the bad element and its index. (The same forms type-check under
``mypy --strict``: tests/typing_usage.py.)"""

from __future__ import annotations

import dataclasses
import pickle
import re
from collections.abc import Callable, Iterator, Sequence

import pytest

import sockshock
from sockshock.errors import InvalidArgument
from sockshock.handlers import LineEcho
from sockshock.scripts import ClientScript, Close, HalfClose, Pause, Read, Send

STEPS = (Send(b"ping\n"), Pause(0.01), Read(until=b"\n"), HalfClose(), Read(), Close())


def _returned() -> Sequence[Send | Pause | Read | HalfClose | Close]:
    return list(STEPS)


class _OneShot:
    """An iterable that can be iterated once, and counts how often it was."""

    def __init__(self) -> None:
        self.iterations = 0

    def __iter__(self) -> Iterator[object]:
        self.iterations += 1
        if self.iterations > 1:
            raise AssertionError("iterated twice")
        return iter(STEPS)


FORMS: dict[str, Callable[[], ClientScript]] = {
    "list literal": lambda: ClientScript(
        [Send(b"ping\n"), Pause(0.01), Read(until=b"\n"), HalfClose(), Read(), Close()]
    ),
    "list in a variable": lambda: ClientScript(list(STEPS)),
    "tuple": lambda: ClientScript(STEPS),
    "generator": lambda: ClientScript(step for step in STEPS),
    "iterator": lambda: ClientScript(iter(STEPS)),
    "sequence from a function": lambda: ClientScript(_returned()),
    "keyword": lambda: ClientScript(steps=list(STEPS), timeout=5.0),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_gives_the_same_script_and_it_runs(form: str) -> None:
    script = FORMS[form]()
    assert type(script.steps) is tuple
    assert script.steps == STEPS
    assert script == ClientScript(STEPS)
    assert hash(script) == hash(ClientScript(STEPS))
    transcript = sockshock.drive(LineEcho, script)
    assert transcript.output == b"ping\n"
    assert [result.outcome for result in transcript.steps] == ["ok"] * 4 + ["eof", "ok"]
    assert transcript.received == b"ping\n"


def test_a_one_shot_iterable_is_read_once() -> None:
    steps = _OneShot()
    script = ClientScript(steps)  # type: ignore[arg-type] # (an Iterable[object])
    assert steps.iterations == 1
    assert script.steps == STEPS
    generator = (step for step in STEPS)
    assert ClientScript(generator).steps == STEPS
    assert list(generator) == []  # consumed by the script, once


def test_a_list_changed_afterwards_does_not_change_the_script() -> None:
    steps: list[Send | Read] = [Send(b"a")]
    script = ClientScript(steps)
    steps.append(Read())
    assert script.steps == (Send(b"a"),)


def test_a_tuple_subclass_is_kept_as_a_plain_tuple() -> None:
    class Steps(tuple[Send, ...]):
        pass

    script = ClientScript(Steps((Send(b"a"), Send(b"b"))))
    assert type(script.steps) is tuple
    assert script.steps == (Send(b"a"), Send(b"b"))


def test_one_kind_of_step_and_subclasses_are_steps() -> None:
    class Greeting(Send):
        __slots__ = ()

    sends = [Send(b"a"), Send(b"b")]
    assert ClientScript(sends).request == b"ab"
    assert ClientScript([Greeting(b"hi")]).request == b"hi"
    assert ClientScript([]).steps == ()


def test_replace_and_pickle_keep_working() -> None:
    script = ClientScript(step for step in STEPS)
    slower = dataclasses.replace(script, timeout=1.0)
    assert slower.timeout == 1.0
    assert slower.steps == STEPS
    again = pickle.loads(pickle.dumps(script))
    assert again == script
    assert again.steps == STEPS
    shorter = ClientScript([Send(b"abc")], intended=bytearray(b"abcdef"))
    assert shorter.intended == b"abcdef"
    assert type(shorter.intended) is bytes
    assert shorter.ending == "stop_midway"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [Send(b"x"), b"y"],
            "expected a step (Send, Pause, Read, HalfClose, Reset, Close) but got steps[1]=b'y' "
            "(type=bytes) (from ClientScript())",
        ),
        (
            (Send(b"x"), Read(), Read, Close()),
            "but got steps[2]=<class 'sockshock.scripts.Read'> (type=type) (from ClientScript())",
        ),
        (
            (step for step in [Send(b"x"), "read"]),
            "but got steps[1]='read' (type=str) (from ClientScript())",
        ),
        (
            [Send(b"x"), "y" * 1000],
            "but got steps[1]='yyyyy",
        ),
        (
            b"GET / HTTP/1.0\r\n\r\n",
            "expected a list of steps (Send, Pause, Read, HalfClose, Reset, Close) but got "
            "steps=b'GET / HTTP/1.0\\r\\n\\r\\n' (type=bytes) (from ClientScript()); to send "
            "bytes, wrap them: [Send(b'GET / HTTP/1.0\\r\\n\\r\\n')]",
        ),
        ("steps", "but got steps='steps' (type=str) (from ClientScript())"),
        (
            {Send(b"a"), Send(b"b")},
            "(type=set) (from ClientScript()); a set has no order: give a list",
        ),
        (
            Send(b"x"),
            "but got steps=Send(b'x') (type=Send) (from ClientScript()); one step is a list "
            "of one: [Send(b'x')]",
        ),
        (42, "expected a list of steps (Send, Pause, Read, HalfClose, Reset, Close) but got "),
        (None, "but got steps=None (type=NoneType) (from ClientScript())"),
    ],
    ids=[
        "bytes-element",
        "class-not-instance",
        "generator-element",
        "long-element",
        "bytes",
        "str",
        "set",
        "one-step",
        "int",
        "none",
    ],
)
def test_what_is_not_steps_gets_one_clear_error(steps: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)) as caught:
        ClientScript(steps)  # type: ignore[arg-type]
    assert len(str(caught.value)) < 400  # a long element is abbreviated


def test_drive_names_its_own_argument_as_the_source() -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape("but got steps[1]='read' (type=str) (from drive(client=...))"),
    ):
        sockshock.drive(LineEcho, [Send(b"x"), "read"])  # type: ignore[list-item]

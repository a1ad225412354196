"""The plugin's settings, stated once: option, ini setting, marker key, default, help.

Precedence: marker (``@pytest.mark.sockshock(...)``) > command line > ini > the
default written here. A bad value from any of them stops the run with one line
naming the value, where it came from and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sockshock._util import DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_TOLERANCE, MAX_SECONDS, SEED_MAX

__all__ = ["SETTINGS", "Setting", "add_options", "check_marker", "setting"]


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer in [{low}, {high}]")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected an integer in [{low}, {high}]") from None
        if not low <= number <= high:
            raise ValueError(f"expected an integer in [{low}, {high}]")
        return number

    return parse


def _number(low: float, high: float, *, low_open: bool) -> Callable[[Any], float]:
    wanted = f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"expected {wanted}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {wanted}") from None
        if (
            not math.isfinite(number)
            or number > high
            or number < low
            or (low_open and number == low)
        ):
            raise ValueError(f"expected {wanted}")
        return number

    return parse


def _on_off(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ValueError("expected on or off")


def _exception_classes(value: Any) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(i, type) and issubclass(i, BaseException) for i in items):
        raise ValueError("expected an exception class or a tuple of them")
    return items


def _scenario(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a scenario's name (from the library) or a .toml file")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError("expected " + " or ".join(repr(c) for c in choices))
        return str(value)

    return parse


@dataclass(frozen=True)
class Setting:
    """One setting: ``--sockshock-<name>``, ini ``sockshock_<name>``, and (if
    ``marker``) ``@pytest.mark.sockshock(<name>=...)``."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    metavar: str | None = None
    marker: bool = True
    ini: bool = True
    option: bool = True

    @property
    def flag(self) -> str:
        return "--sockshock-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return "sockshock_" + self.name


SETTINGS = {
    s.name: s
    for s in (
        Setting(
            "seed",
            None,
            _integer(0, SEED_MAX),
            "fix the fault seed of every test to N (default: derived from a session seed "
            "and each test's node id, the same on every xdist worker)",
            metavar="N",
        ),
        Setting(
            "session_seed",
            None,
            _integer(0, SEED_MAX),
            "the session seed that test seeds derive from (default: random, shown in the "
            "header): replays a whole run's faults",
            metavar="N",
            marker=False,
            ini=False,
        ),
        Setting(
            "audit",
            True,
            _on_off,
            "'on' (default) or 'off': the leak audit after each sockshock test (threads, "
            "descriptors, child processes, Unix socket files)",
            metavar="on|off",
        ),
        Setting(
            "shutdown_timeout",
            DEFAULT_SHUTDOWN_TIMEOUT,
            _number(0, MAX_SECONDS, low_open=True),
            f"seconds (at most {MAX_SECONDS:g}) a served server may take to stop before the "
            f"test fails with the stuck threads' stacks (default {DEFAULT_SHUTDOWN_TIMEOUT:g})",
            metavar="SECONDS",
        ),
        Setting(
            "shutdown_tolerance",
            DEFAULT_TOLERANCE,
            _number(1, 100, low_open=False),
            "factor (1 to 100) applied to @pytest.mark.shutdown_within bounds, for noisy CI "
            f"machines (default {DEFAULT_TOLERANCE:g})",
            metavar="FACTOR",
            marker=False,
        ),
        Setting(
            "clock",
            "real",
            _choice("real", "virtual"),
            "'real' (default) or 'virtual': the clock of fault plans' delays",
            metavar="real|virtual",
        ),
        Setting(
            "expect_errors",
            (),
            _exception_classes,
            "exception classes the test's request handlers are expected to raise (kept in "
            "srv.errors, not re-raised)",
            option=False,
            ini=False,
        ),
        Setting(
            "scenario",
            None,
            _scenario,
            "a scenario (a name from the library or a .toml file) whose faults and clients "
            "every sockshock test without faults of its own runs under",
            metavar="NAME",
            marker=False,
        ),
        Setting(
            "install",
            False,
            _on_off,
            "'on' or 'off' (default): put sockshock.socketserver in place of socketserver "
            "before conftest files and test modules are imported",
            metavar="on|off",
            marker=False,
        ),
    )
}

#: The keys ``@pytest.mark.sockshock(...)`` takes.
MARKER_KEYS = tuple(name for name, s in SETTINGS.items() if s.marker)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("sockshock", "sockshock: socket servers under faults")
    for s in SETTINGS.values():
        if s.option:
            group.addoption(s.flag, dest=s.dest, default=None, metavar=s.metavar, help=s.help)
        if s.ini:
            parser.addini(s.dest, s.help, default="")


def check_marker(item: pytest.Item) -> None:
    """``@pytest.mark.sockshock`` takes only the keys of :data:`MARKER_KEYS`."""
    marker = item.get_closest_marker("sockshock")
    if marker is not None:
        unknown = set(marker.kwargs) - set(MARKER_KEYS)
        if unknown or marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.sockshock on {item.nodeid}: unknown "
                f"{sorted(unknown) or list(marker.args)}; it takes "
                + ", ".join(f"{key}=" for key in MARKER_KEYS)
            )


_CONFIGURED = pytest.StashKey[dict[str, Any]]()  # on the config: command line > ini, parsed
_MARKED = pytest.StashKey[dict[str, Any]]()  # on an item: its sockshock marker's keys
_UNSET = object()


def _parse(s: Setting, value: Any, source: str) -> Any:
    try:
        return s.parse(value)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"sockshock: {s.name}={value!r} from {source}: {exc}") from None


def _configured(config: pytest.Config, s: Setting) -> Any:
    """The command line's or ini's value of ``s``, parsed (``_UNSET`` if neither
    gives one); worked out once per run -- a test asks for several settings."""
    cache = config.stash.setdefault(_CONFIGURED, {})
    try:
        return cache[s.name]
    except KeyError:
        pass
    value = _UNSET
    option = config.getoption(s.dest, None) if s.option else None
    if option is not None:
        value = _parse(s, option, s.flag)
    elif s.ini:
        ini = config.getini(s.dest)
        if ini not in ("", None):
            value = _parse(s, ini, f"ini setting {s.dest}")
    cache[s.name] = value
    return value


def setting(config: pytest.Config, item: pytest.Item | None, name: str) -> Any:
    """The value in force for ``item`` (marker > command line > ini > default)."""
    s = SETTINGS[name]
    if item is not None and s.marker:
        marked = item.stash.get(_MARKED, None)
        if marked is None:
            marker = item.get_closest_marker("sockshock")
            marked = item.stash[_MARKED] = dict(marker.kwargs) if marker is not None else {}
        value = marked.get(name)
        if value is not None:
            return _parse(s, value, f"@pytest.mark.sockshock({name}=...) on {item.nodeid}")
    value = _configured(config, s)
    return s.default if value is _UNSET else value

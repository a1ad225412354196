"""sockshock's pytest plugin (entry point ``pytest11: sockshock``).

Fixtures:
    ``sockshock`` -- ``sockshock.serve(handler, server_class="ThreadingTCPServer",
    *, faults=None, **server_attrs)`` starts a server through ``sockshock.serving``;
    teardown stops it even when the test failed, re-raises handler exceptions and
    runs the leak audit.
    ``sockshock_audit`` -- the leak audit alone.
    ``server_class`` -- parametrized by ``@pytest.mark.sockshock_servers(...)``.

Markers: ``sockshock(seed=, audit=, shutdown_timeout=, clock=)``,
``faults(*models)``, ``sockshock_servers(kind=, family=, concurrency=)``,
``shutdown_within(seconds, busy=0, stalled=0)``.

Options (group ``sockshock``; each but the session seed mirrored by an ini setting
of the same name with underscores): ``--sockshock-seed``,
``--sockshock-session-seed``, ``--sockshock-audit``,
``--sockshock-shutdown-timeout``, ``--sockshock-shutdown-tolerance``,
``--sockshock-clock``. Precedence: marker > command line > ini.

Importing this module is cheap: it loads neither hypothesis nor trustme.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sockshock._errors import ConfigurationError
from sockshock._faults._core import FaultModel
from sockshock._harness._audit import LeakAudit, audit
from sockshock._harness._handle import ServerHandle
from sockshock._harness._resolve import resolve_spec
from sockshock._harness._serving import serve_spec
from sockshock._servers._catalog import server_kinds

__all__ = ["SockshockFixture"]

HELP_SEED = ("fix the fault seed of every test to N (default: derived from a session seed "
             "and each test's node id, the same on every xdist worker)")
HELP_SESSION_SEED = ("the session seed that test seeds derive from (default: random, shown "
                     "in the header): replays a whole run's faults")
HELP_AUDIT = ("'on' (default) or 'off': the leak audit after each sockshock test (threads, "
              "descriptors, child processes, Unix socket files)")
HELP_SHUTDOWN_TIMEOUT = ("seconds a served server may take to stop before the test fails "
                         "with the stuck threads' stacks (default 5)")
HELP_TOLERANCE = ("factor applied to @pytest.mark.shutdown_within bounds, for noisy CI "
                  "machines (default 2)")
HELP_CLOCK = "'real' (default) or 'virtual': the clock of fault plans' delays"

SESSION_SEED = pytest.StashKey[int]()
FIXTURE = pytest.StashKey["SockshockFixture"]()
CALL_FAILED = pytest.StashKey[bool]()
_WORKER_KEY = "sockshock_session_seed"

_MARKERS = [
    "sockshock(seed=None, audit=None, shutdown_timeout=None, clock=None): sockshock "
    "settings for this test; they win over command-line options and ini settings",
    "faults(*models): fault models (sockshock.faults) for the servers sockshock.serve() "
    "starts in this test",
    "sockshock_servers(kind=None, family=None, concurrency=None): run the test once per "
    "matching server class, given as the server_class argument (kind: stream/datagram; "
    "family: inet/unix; concurrency: sync/threading/forking/pool or a tuple of them)",
    "shutdown_within(seconds, busy=0, stalled=0): every server this test serves must shut "
    "down and close within seconds (x --sockshock-shutdown-tolerance) with busy clients "
    "mid-request and stalled clients connected",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sockshock", "sockshock: socket servers under faults")
    group.addoption("--sockshock-seed", type=int, default=None, metavar="N", help=HELP_SEED)
    group.addoption("--sockshock-session-seed", type=int, default=None, metavar="N",
                    help=HELP_SESSION_SEED)
    group.addoption("--sockshock-audit", choices=("on", "off"), default=None, help=HELP_AUDIT)
    group.addoption("--sockshock-shutdown-timeout", type=float, default=None,
                    metavar="SECONDS", help=HELP_SHUTDOWN_TIMEOUT)
    group.addoption("--sockshock-shutdown-tolerance", type=float, default=None,
                    metavar="FACTOR", help=HELP_TOLERANCE)
    group.addoption("--sockshock-clock", choices=("real", "virtual"), default=None,
                    help=HELP_CLOCK)
    parser.addini("sockshock_seed", HELP_SEED, default="")
    parser.addini("sockshock_audit", HELP_AUDIT, default="on")
    parser.addini("sockshock_shutdown_timeout", HELP_SHUTDOWN_TIMEOUT, default="5")
    parser.addini("sockshock_shutdown_tolerance", HELP_TOLERANCE, default="2")
    parser.addini("sockshock_clock", HELP_CLOCK, default="real")


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    # Forking servers fork from the harness's serving thread, which Python 3.12+
    # warns about (as CPython's own test_socketserver does); sockshock's forking
    # path re-initialises its locks in the child. Under -W error the warning is
    # cleared by CPython itself; this keeps it out of everyone else's output.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _WORKER_KEY in workerinput:
        seed = int(workerinput[_WORKER_KEY])
    elif config.getoption("sockshock_session_seed", None) is not None:
        seed = int(config.getoption("sockshock_session_seed"))
    else:
        seed = random.SystemRandom().randrange(2**32)
    config.stash[SESSION_SEED] = seed
    for name in _SETTINGS:  # a bad option or ini value stops the run at once
        _setting(config, None, name)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker derives test seeds from the controller's seed."""
    node.workerinput[_WORKER_KEY] = node.config.stash[SESSION_SEED]


def pytest_report_header(config: pytest.Config) -> str:
    fixed = _setting(config, None, "seed")
    if fixed is not None:
        return f"sockshock: every test's fault seed is {fixed} (--sockshock-seed)"
    return (f"sockshock: session seed {config.stash[SESSION_SEED]} (test seeds derive from "
            "it and the node id; --sockshock-session-seed replays them)")


# -- settings: marker > command line > ini ------------------------------------------


@dataclass(frozen=True)
class _Spec:
    option: str
    ini: str
    parse: Any


def _parse_audit(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ValueError("expected on or off")


def _parse_clock(value: Any) -> str:
    if value not in ("real", "virtual"):
        raise ValueError("expected 'real' or 'virtual'")
    return str(value)


def _parse_positive(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("expected a positive number")
    return number


_SETTINGS = {
    "seed": _Spec("sockshock_seed", "sockshock_seed", int),
    "audit": _Spec("sockshock_audit", "sockshock_audit", _parse_audit),
    "shutdown_timeout": _Spec("sockshock_shutdown_timeout", "sockshock_shutdown_timeout",
                              _parse_positive),
    "shutdown_tolerance": _Spec("sockshock_shutdown_tolerance",
                                "sockshock_shutdown_tolerance", _parse_positive),
    "clock": _Spec("sockshock_clock", "sockshock_clock", _parse_clock),
}


def _setting(config: pytest.Config, item: pytest.Item | None, name: str) -> Any:
    spec = _SETTINGS[name]
    candidates: list[tuple[Any, str]] = []
    if item is not None:
        marker = item.get_closest_marker("sockshock")
        if marker is not None and name in marker.kwargs:
            candidates.append((marker.kwargs[name],
                               f"@pytest.mark.sockshock({name}=...) on {item.nodeid}"))
    option = config.getoption(spec.option, None)
    if option is not None:
        candidates.append((option, f"--{spec.option.replace('_', '-')}"))
    ini = config.getini(spec.ini)
    if ini not in ("", None):
        candidates.append((ini, f"ini setting {spec.ini}"))
    for value, source in candidates:
        if value is None:
            continue
        try:
            return spec.parse(value)
        except (TypeError, ValueError) as exc:
            raise pytest.UsageError(f"sockshock: {name}={value!r} from {source}: {exc}") from None
    return None


def _check_marker_kwargs(item: pytest.Item) -> None:
    marker = item.get_closest_marker("sockshock")
    if marker is not None:
        unknown = set(marker.kwargs) - {"seed", "audit", "shutdown_timeout", "clock"}
        if unknown or marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.sockshock on {item.nodeid}: unknown "
                f"{sorted(unknown) or list(marker.args)}; it takes seed=, audit=, "
                "shutdown_timeout=, clock=")


def seed_for_test(config: pytest.Config, item: pytest.Item) -> int:
    """The fault seed of ``item``: fixed, or derived from the session seed and node id."""
    fixed = _setting(config, item, "seed")
    if fixed is not None:
        return int(fixed)
    digest = hashlib.sha256(f"{config.stash[SESSION_SEED]}/{item.nodeid}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


# -- the matrix ------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("sockshock_servers")
    if marker is None:
        return
    where = f"@pytest.mark.sockshock_servers on {metafunc.definition.nodeid}"
    if "server_class" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{where}: the test takes no server_class argument")
    if marker.args:
        raise pytest.UsageError(f"{where}: give kind=, family=, concurrency= by keyword")
    try:
        kinds = server_kinds(**marker.kwargs, source=where)
    except TypeError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not kinds:
        raise pytest.UsageError(f"{where}: no server class matches {marker.kwargs}")
    metafunc.parametrize("server_class", [k.server_class for k in kinds],
                         ids=[k.name for k in kinds])


# -- the fixtures ------------------------------------------------------------------------


class SockshockFixture:
    """What the ``sockshock`` fixture gives a test."""

    def __init__(self, request: pytest.FixtureRequest, stack: contextlib.ExitStack) -> None:
        self._request = request
        self._stack = stack
        item = request.node
        config = request.config
        self.seed: int = seed_for_test(config, item)
        self.shutdown_timeout: float = _setting(config, item, "shutdown_timeout") or 5.0
        self.clock: str = _setting(config, item, "clock") or "real"
        self.handles: list[ServerHandle] = []

    def _marker_faults(self) -> list[FaultModel]:
        models: list[FaultModel] = []
        for marker in self._request.node.iter_markers("faults"):
            for model in marker.args:
                if not isinstance(model, FaultModel):
                    raise pytest.UsageError(
                        f"@pytest.mark.faults on {self._request.node.nodeid}: {model!r} "
                        f"(type={type(model).__name__}) is not a fault model "
                        "(sockshock.faults.PartialReads(3), ...)")
                models.append(model)
        return models

    def serve(self, handler_class: Any, server_class: Any = "ThreadingTCPServer", *,
              faults: Any = None, **server_attrs: Any) -> ServerHandle:
        """Start a server for this test; it is stopped at teardown.

        Args:
            handler_class: the request handler class.
            server_class: a class, or a name from ``sockshock.socketserver``
                (default ``"ThreadingTCPServer"``).
            faults: a FaultPlan or a list of models; default: the models of the
                test's ``@pytest.mark.faults`` (none: no fault layer). A list
                gets the test's seed.
            **server_attrs: passed to :func:`sockshock.serving` (class attributes
                such as ``max_workers=4``, or ``address=``, ``poll_interval=``).
        """
        if faults is None:
            marker_faults = self._marker_faults()
            faults = marker_faults if marker_faults else None
        options = {"address": None, "clock": None, "seed": None,
                   "shutdown_timeout": self.shutdown_timeout, "poll_interval": 0.5}
        for name in list(server_attrs):
            if name in options:
                options[name] = server_attrs.pop(name)
        spec = resolve_spec(server_class, handler_class, faults=faults,
                            server_attrs=server_attrs, default_seed=self.seed,
                            default_clock=self.clock, **options)
        handle = self._stack.enter_context(serve_spec(spec))
        self.handles.append(handle)
        return handle

    def report(self) -> str:
        """The section a failing test's report gets."""
        item = self._request.node
        lines = [f"fault seed: {self.seed} (session seed "
                 f"{self._request.config.stash[SESSION_SEED]})",
                 "re-run this test with the same faults:",
                 f"  pytest {shlex.quote(item.nodeid)} --sockshock-seed={self.seed}"]
        for handle in self.handles:
            if handle.plan is not None:
                lines.append(f"{type(handle.server).__name__} at {handle.address!r}:")
                lines.append(handle.plan.describe())
        return "\n".join(lines)


@pytest.fixture
def sockshock(request: pytest.FixtureRequest) -> Iterator[SockshockFixture]:
    """Start servers with ``sockshock.serve(handler, server_class, faults=...)``; they
    are stopped, their handler errors re-raised and leaks audited at teardown."""
    _check_marker_kwargs(request.node)
    leak_audit = LeakAudit() if _setting(request.config, request.node, "audit") is not False \
        else None
    with contextlib.ExitStack() as stack:
        fixture = SockshockFixture(request, stack)
        request.node.stash[FIXTURE] = fixture
        yield fixture
        _check_shutdown_bounds(request, fixture)
    # Servers stopped without error. A failed test reports its failure, not the
    # mess it may have left.
    if leak_audit is not None and not request.node.stash.get(CALL_FAILED, False):
        leak_audit.check()


@pytest.fixture
def sockshock_audit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves threads, descriptors, child processes or Unix socket
    files behind (the sockshock fixture does this too)."""
    if _setting(request.config, request.node, "audit") is False:
        yield
        return
    with audit():
        yield


def _check_shutdown_bounds(request: pytest.FixtureRequest, fixture: SockshockFixture) -> None:
    marker = request.node.get_closest_marker("shutdown_within")
    if marker is None:
        return
    where = f"@pytest.mark.shutdown_within on {request.node.nodeid}"
    if len(marker.args) != 1 or set(marker.kwargs) - {"busy", "stalled"}:
        raise pytest.UsageError(f"{where}: use shutdown_within(seconds, busy=0, stalled=0)")
    tolerance = _setting(request.config, request.node, "shutdown_tolerance") or 2.0
    for handle in fixture.handles:
        if handle.thread.is_alive():
            handle.assert_stops_within(marker.args[0], tolerance=tolerance, **marker.kwargs)


# -- reports -------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    if report.failed:
        fixture = item.stash.get(FIXTURE, None)
        if fixture is not None:
            report.sections.append((f"sockshock ({report.when})", fixture.report()))

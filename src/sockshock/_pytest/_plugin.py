"""The plugin's hooks and fixtures: options, markers, session seeds (xdist-stable),
the server matrix, the failure report; ``sockshock``, ``sockshock_audit``,
``sockshock_proxy``, ``sockshock_ca``, ``sockshock_client_context``.

Imported at every pytest start-up (entry point ``sockshock.pytest_plugin``), so it
imports no harness: the fixtures below hand over to ``_fixture`` -- importing it
then -- when a test uses one; ``--sockshock-install``, ``sockshock_servers`` and
``faults`` markers and ``--sockshock-scenario`` import what they need when given.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from sockshock._pytest._ending import configure_ending, session_finished, unconfigure_ending
from sockshock._pytest._markers import (
    CALL_FAILED,
    FIXTURE,
    PROXIES,
    SESSION_SEED,
    check_markers,
    load_scenario,
    rerun_lines,
    seed_for_test,
)
from sockshock._pytest._schedules import (
    SCHEDULES_MARKER,
    check_schedules_marker,
    pytest_pyfunc_call,
    sockshock_schedule,
)
from sockshock._pytest._settings import MARKER_KEYS, SETTINGS, add_options, setting
from sockshock._util import InvalidArgument, did_you_mean

if TYPE_CHECKING:
    from sockshock._pytest._fixture import SockshockFixture
    from sockshock._pytest._install import SessionInstall  # noqa: F401 (INSTALLATION's type)

__all__ = [
    "SESSION_SEED",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_generate_tests",
    "pytest_load_initial_conftests",
    "pytest_pyfunc_call",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_unconfigure",
    "sockshock",
    "sockshock_audit",
    "sockshock_ca",
    "sockshock_client_context",
    "sockshock_proxy",
    "sockshock_schedule",
]

_WORKER_KEY = "sockshock_session_seed"

_MARKERS = [
    f"sockshock({', '.join(f'{key}=None' for key in MARKER_KEYS)}): sockshock settings for "
    "this test; they win over command-line options and ini settings",
    "faults(*models): fault models (sockshock.faults) -- instances, PartialReads(), not the "
    "class -- or names of scenarios (their faults "
    "and misbehaving clients), for the servers sockshock.serve() starts in this test",
    "sockshock_servers(transport=None, family=None, concurrency=None, base=None): run the "
    "test once per matching server class, given as the server_class argument (transport: "
    "stream/datagram; family: inet/unix; concurrency: "
    "sync/threading/forking/pool or a tuple of them; base: your server class, under each "
    "concurrency)",
    "shutdown_within(seconds, busy=0, stalled=0): every server this test serves must shut "
    "down and close within seconds (x --sockshock-shutdown-tolerance) with busy clients "
    "mid-request and stalled clients connected",
    SCHEDULES_MARKER,
]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


INSTALLATION = pytest.StashKey["SessionInstall"]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """``--sockshock-install``: before conftest files and test modules are imported."""
    option = getattr(early_config.known_args_namespace, "sockshock_install", None)
    value, source = (
        (option, "--sockshock-install")
        if option is not None
        else (early_config.getini("sockshock_install"), "ini setting sockshock_install")
    )
    if value in ("", None):
        return
    try:
        wanted = SETTINGS["install"].parse(value)
    except ValueError as exc:
        raise pytest.UsageError(f"sockshock: install={value!r} from {source}: {exc}") from None
    if wanted:
        from sockshock._pytest._install import install_for_session

        try:
            early_config.stash[INSTALLATION] = install_for_session(early_config)
        except InvalidArgument as exc:
            raise pytest.UsageError(f"sockshock: {source}: {exc}") from None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    session_finished(exitstatus)  # the exit status, should stray threads hold the exit


def pytest_unconfigure(config: pytest.Config) -> None:
    unconfigure_ending(config)
    installation = config.stash.get(INSTALLATION, None)
    if installation is not None:
        installation.undo()


def pytest_configure(config: pytest.Config) -> None:
    configure_ending(config)  # signals, pytest-timeout's thread method
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    # Forking servers fork from the harness's serving thread, which Python 3.12+
    # warns about (as CPython's own test_socketserver does); sockshock's forking
    # path re-initialises its locks in the child. Under -W error the warning is
    # cleared by CPython itself; this keeps it out of everyone else's output.
    config.addinivalue_line(
        "filterwarnings", "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
    )
    for name in SETTINGS:  # a bad option or ini value stops the run at once
        setting(config, None, name)
    scenario = setting(config, None, "scenario")
    if scenario is not None:  # so does a scenario that is not there, or broken
        given = config.getoption(SETTINGS["scenario"].dest, None) is not None
        load_scenario(
            config, scenario, "--sockshock-scenario" if given else "ini setting sockshock_scenario"
        )
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _WORKER_KEY in workerinput:
        seed = int(workerinput[_WORKER_KEY])
    else:
        seed = setting(config, None, "session_seed")
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
    config.stash[SESSION_SEED] = seed


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker derives test seeds from the controller's seed."""
    node.workerinput[_WORKER_KEY] = node.config.stash[SESSION_SEED]


def pytest_report_header(config: pytest.Config) -> list[str]:
    installation = config.stash.get(INSTALLATION, None)
    lines = [installation.note] if installation is not None and installation.note else []
    fixed = setting(config, None, "seed")
    if fixed is not None:
        return [f"sockshock: every test's fault seed is {fixed} (--sockshock-seed)", *lines]
    return [
        f"sockshock: session seed {config.stash[SESSION_SEED]} (test seeds derive from "
        "it and the node id; --sockshock-session-seed replays them)",
        *lines,
    ]


#: What ``@pytest.mark.sockshock_servers`` filters by (``server_kinds()``'s parameters).
_SERVERS_FILTERS = ("transport", "family", "concurrency", "base")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.sockshock_servers(...)``: one test per matching server class."""
    marker = metafunc.definition.get_closest_marker("sockshock_servers")
    if marker is None:
        return
    where = f"@pytest.mark.sockshock_servers on {metafunc.definition.nodeid}"
    # Raised while the module is collected: a CollectError is reported as its
    # message alone ("ERROR collecting ..."), where a UsageError here would come
    # with pluggy's whole traceback.
    if "server_class" not in metafunc.fixturenames:
        raise pytest.Collector.CollectError(f"{where}: the test takes no server_class argument")
    if marker.args:
        raise pytest.Collector.CollectError(
            f"{where}: give transport=, family=, concurrency= by keyword, not {marker.args!r}"
        )
    from sockshock._stdlib import server_kinds

    for key in marker.kwargs:
        if key not in _SERVERS_FILTERS:
            listed = ", ".join(f"{name}=" for name in _SERVERS_FILTERS)
            raise pytest.Collector.CollectError(
                f"{where}: {key}={marker.kwargs[key]!r} is not a filter; "
                f"{did_you_mean('transport' if key == 'kind' else key, _SERVERS_FILTERS)}"
                f"the filters are {listed}"
            )
    try:
        kinds = server_kinds(**marker.kwargs, source=where)
    except InvalidArgument as exc:
        raise pytest.Collector.CollectError(f"sockshock: {exc}") from None
    except TypeError as exc:  # an unknown keyword
        raise pytest.Collector.CollectError(f"{where}: {exc}") from None
    if not kinds:
        raise pytest.Collector.CollectError(f"{where}: no server class matches {marker.kwargs}")
    metafunc.parametrize(
        "server_class", [k.server_class for k in kinds], ids=[k.name for k in kinds]
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """sockshock's markers, checked on every test -- those that do not use the fixture
    too: a bad marker there would be ignored, and the test pass."""
    for item in items:
        check_markers(config, item)
        check_schedules_marker(item)


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
        proxies = item.stash.get(PROXIES, None)
        if proxies is not None and proxies.proxies:
            text = proxies.report()
            if fixture is None:  # else the fixture's section has these lines
                text = "\n".join(
                    [*rerun_lines(item.config, item, seed_for_test(item.config, item)), text]
                )
            report.sections.append((f"sockshock proxies ({report.when})", text))


# -- fixtures: declared here, run by _fixture (imported when a test uses one) -------


@pytest.fixture
def sockshock(request: pytest.FixtureRequest) -> Iterator[SockshockFixture]:
    """Start servers with ``sockshock.serve(server, handler_class, faults=...)``; they
    are stopped, their handler errors re-raised and leaks audited at teardown."""
    from sockshock._pytest._fixture import sockshock_fixture

    yield from sockshock_fixture(request)


@pytest.fixture
def sockshock_audit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves threads, descriptors, child processes or Unix socket
    files behind (the sockshock fixture does this too)."""
    from sockshock._pytest._fixture import sockshock_audit_fixture

    yield from sockshock_audit_fixture(request)


@pytest.fixture(scope="session")
def sockshock_ca() -> Any:
    """sockshock's certificate authority (a trustme ``CA``, one per process, so one per
    xdist worker): the issuer of the certificates ``serve(..., tls=True)`` presents."""
    from sockshock._tls import certificate_authority

    return certificate_authority()


@pytest.fixture
def sockshock_client_context() -> Any:
    """A new client ``ssl.SSLContext`` that trusts :func:`sockshock_ca` and verifies
    the server's certificate and host name (``localhost``)."""
    from sockshock._tls import client_context

    return client_context()


@pytest.fixture
def sockshock_proxy(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``sockshock_proxy(upstream, faults=[...], transport="stream")`` starts a
    :class:`~sockshock.FaultProxy` in front of any address -- a server in a
    subprocess included -- seeded with the test's seed, and returns it (give clients
    its ``.address``). Every proxy is stopped at teardown; a failing test's report
    shows their fault logs."""
    from sockshock._pytest._fixture import sockshock_proxy_fixture

    yield from sockshock_proxy_fixture(request)

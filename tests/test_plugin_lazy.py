"""The pytest plugin loads no harness until a test uses a fixture or marker, and
``import sockshock`` imports its names on first use. (Its cost against pytest's own
import is bench/bench_plugin_import.py's to measure, not a test's.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests._support import SUBPROCESS_TIMEOUT, run_pytest

pytest_plugins = ["pytester"]

# What loading the plugin may import of sockshock: the package, its leaves and the
# plugin's own light modules.
LIGHT = {
    "sockshock",
    "sockshock.pytest_plugin",
    "sockshock._pytest",
    "sockshock._pytest._ending",
    "sockshock._pytest._markers",
    "sockshock._pytest._plugin",
    "sockshock._pytest._schedules",  # the schedules marker and fixture: light as well
    "sockshock._pytest._settings",
}


def _imported(code: str) -> set[str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code
            + "\nimport sys\nprint(' '.join(m for m in sys.modules if m.startswith('sockshock')))",
        ],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=True,
    )
    return set(proc.stdout.split())


def test_loading_the_plugin_imports_no_harness() -> None:
    loaded = _imported("import pytest\nimport sockshock.pytest_plugin")
    heavy = {m for m in loaded if m not in LIGHT and not m.startswith("sockshock._util")}
    assert not heavy, sorted(heavy)


def test_import_sockshock_imports_names_when_first_used() -> None:
    bare = _imported("import sockshock")
    assert all(
        m in ("sockshock", "sockshock.errors") or m.startswith("sockshock._util") for m in bare
    ), bare
    loaded = _imported(
        "import sockshock\n"
        "assert sockshock.errors.InvalidArgument.__name__ == 'InvalidArgument'\n"
        "assert callable(sockshock.serving)\n"
        "assert sockshock.socketserver.TCPServer\n"
        "assert set(sockshock.__all__) <= set(dir(sockshock))\n"
    )
    assert {"sockshock.errors", "sockshock._harness", "sockshock.socketserver"} <= loaded


def test_an_unknown_name_is_an_attribute_error() -> None:
    import sockshock

    with pytest.raises(AttributeError, match="module 'sockshock' has no attribute 'servng'"):
        sockshock.servng  # noqa: B018


LAZY_TESTS = """
import sys
import pytest

def heavy():  # (test_4's marker imports _stdlib at collection: it is used)
    return sorted(m for m in sys.modules if m.startswith(("sockshock._harness", "sockshock._wire")))

def test_1_plain():
    assert heavy() == []

@pytest.mark.shutdown_within(1.0)
@pytest.mark.sockshock(seed=3)
def test_2_markers_checked_without_the_harness():
    assert heavy() == []

def test_3_the_fixture_loads_it(sockshock):
    assert "sockshock._harness" in sys.modules
    assert sockshock.seed >= 0

@pytest.mark.sockshock_servers(transport="datagram", family="unix", concurrency="sync")
def test_4_the_matrix_marker(server_class):
    assert server_class.__name__ == "UnixDatagramServer"
"""


def test_the_harness_is_imported_when_a_test_uses_a_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_lazy=LAZY_TESTS)
    result = run_pytest(pytester)
    result.assert_outcomes(passed=4)

"""The pytest plugin: settings (``_settings``), what hooks need before any fixture
runs (``_markers``), hooks and the fixtures pytest sees (``_plugin``; the
schedules' marker and fixture in ``_schedules``), the fixtures'
work (``_fixture``, imported when a test uses one) and the glue for ``@given``
tests (``_hypothesis``). This doorway exports the plugin module's contents: they
import no harness, so that loading the plugin costs pytest little."""

from sockshock._pytest._plugin import (
    SESSION_SEED,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_generate_tests,
    pytest_load_initial_conftests,
    pytest_pyfunc_call,
    pytest_report_header,
    pytest_runtest_makereport,
    pytest_unconfigure,
    sockshock,
    sockshock_audit,
    sockshock_ca,
    sockshock_client_context,
    sockshock_proxy,
    sockshock_schedule,
)

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
    "pytest_unconfigure",
    "sockshock",
    "sockshock_audit",
    "sockshock_ca",
    "sockshock_client_context",
    "sockshock_proxy",
    "sockshock_schedule",
]

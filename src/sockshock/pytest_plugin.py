"""sockshock's pytest plugin (entry point ``pytest11: sockshock``).

Fixtures: ``sockshock`` (``sockshock.serve(server, handler, faults=...)`` starts a
server through ``sockshock.serving``; teardown stops it even when the test failed,
re-raises handler exceptions and runs the leak audit), ``sockshock_audit`` (the leak
audit alone), ``sockshock_proxy`` (a FaultProxy in front of any address),
``sockshock_ca`` and ``sockshock_client_context`` (TLS), ``server_class``
(parametrized by ``@pytest.mark.sockshock_servers(...)``), ``sockshock_schedule``
(a schedule for ``drive(..., schedule=...)``: PCT from the test's seed, or each of
``@pytest.mark.sockshock_schedules``).

Markers: ``sockshock(...)`` (per-test settings), ``faults(*models)``,
``sockshock_servers(transport=, family=, concurrency=, base=)``,
``shutdown_within(seconds, busy=0, stalled=0)``,
``sockshock_schedules(runs=100, strategy="pct", seed=None, depth=3)`` (the test
body once per schedule, stopping at the first failure; docs/howto/interleavings.md).

Options (group ``sockshock``), each mirrored by an ini setting of the same name with
underscores where it makes sense; precedence: marker > command line > ini. The
settings are stated once, in ``sockshock._pytest._settings``; the hooks and the
fixtures pytest sees live in ``sockshock._pytest._plugin``, the fixtures' work in
``sockshock._pytest._fixture``. The documentation's reference page for the plugin
is generated from those tables.

Importing this module is cheap: it loads neither the harness nor hypothesis nor
trustme -- a fixture or marker does, when a test uses it
(``bench/bench_plugin_import.py`` measures it against pytest's own import).
"""

from sockshock._pytest import *  # noqa: F403 (the hooks and fixtures, found by pytest as attributes)

# The fixtures and hooks are found by pytest as attributes; nothing here is API
# to import (the fixtures are documented in the docs' reference).
__all__: list[str] = []

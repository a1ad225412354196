"""sockshock's pytest plugin (entry point ``pytest11: sockshock``).

Fixtures:
    ``sockshock`` -- ``sockshock.serve(server, handler_class, *, faults=None,
    **options)`` starts a server as ``sockshock.serving`` does; teardown stops it
    even when the test failed, re-raises handler exceptions and runs the leak audit.
    ``sockshock_audit`` -- the leak audit alone.
    ``sockshock_proxy`` -- fault proxies in front of any address.
    ``sockshock_ca``, ``sockshock_client_context`` -- TLS, trusted.
    ``server_class`` -- parametrized by ``@pytest.mark.sockshock_servers(...)``.

Markers: ``sockshock(seed=, audit=, shutdown_timeout=, clock=, expect_errors=)``,
``faults(*models_or_scenarios)``, ``sockshock_servers(transport=, family=,
concurrency=, base=)``, ``shutdown_within(seconds, busy=0, stalled=0)``.

Options (group ``sockshock``; each but the session seed mirrored by an ini setting
of the same name with underscores): ``--sockshock-seed``,
``--sockshock-session-seed``, ``--sockshock-audit``,
``--sockshock-shutdown-timeout``, ``--sockshock-shutdown-tolerance``,
``--sockshock-clock``, ``--sockshock-scenario``, ``--sockshock-install``.
Precedence: marker > command line > ini. The settings are stated once, in
``sockshock._pytest._settings``; the code lives in ``sockshock._pytest``.

Importing this module is cheap: it loads neither the harness nor hypothesis nor
trustme -- a fixture or marker does, when a test uses it
(``bench/bench_plugin_import.py`` measures it against pytest's own import).
"""

from sockshock._pytest import *  # noqa: F403 (the hooks and fixtures, found by pytest as attributes)

# The fixtures and hooks are found by pytest as attributes; nothing here is API
# to import (the fixtures are documented in the docs' reference).
__all__: list[str] = []

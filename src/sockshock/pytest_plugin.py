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
``--sockshock-clock``. Precedence: marker > command line > ini. The settings are
stated once, in ``sockshock._pytest._settings``; the code lives in
``sockshock._frontends`` (``_plugin``: hooks, ``_fixture``: fixtures).

Importing this module is cheap: it loads neither hypothesis nor trustme.
"""

from sockshock._pytest._fixture import *  # noqa: F403 (fixtures, SESSION_SEED)
from sockshock._pytest._plugin import *  # noqa: F403 (the hooks)

# The fixtures and hooks are found by pytest as attributes; nothing here is API
# to import (the fixtures are documented in the docs' reference).
__all__: list[str] = []

"""sockshock's pytest plugin (entry point ``pytest11: sockshock``).

Fixtures: ``sockshock`` (``sockshock.serve(server, handler, faults=...)`` starts a
server through ``sockshock.serving``; teardown stops it even when the test failed,
re-raises handler exceptions and runs the leak audit), ``sockshock_audit`` (the leak
audit alone), ``sockshock_proxy`` (a FaultProxy in front of any address),
``sockshock_ca`` and ``sockshock_client_context`` (TLS), ``server_class``
(parametrized by ``@pytest.mark.sockshock_servers(...)``).

Markers: ``sockshock(...)`` (per-test settings), ``faults(*models)``,
``sockshock_servers(transport=, family=, concurrency=, base=)``,
``shutdown_within(seconds, busy=0, stalled=0)``.

Options (group ``sockshock``), each mirrored by an ini setting of the same name with
underscores where it makes sense; precedence: marker > command line > ini. The
settings are stated once, in ``sockshock._pytest._settings``; the hooks live in
``sockshock._pytest._plugin``, the fixtures in ``sockshock._pytest._fixture``. The
documentation's reference page for the plugin is generated from those tables.

Importing this module is cheap: it loads neither hypothesis nor trustme.
"""

from sockshock._pytest._fixture import *  # noqa: F403 (fixtures, SESSION_SEED)
from sockshock._pytest._plugin import *  # noqa: F403 (the hooks)

# The fixtures and hooks are found by pytest as attributes; nothing here is API
# to import (the fixtures are documented in the docs' reference).
__all__: list[str] = []

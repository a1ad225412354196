"""Scenarios: named, shareable fault scenarios for CI regression runs.

A scenario is a TOML file (the library: ``scenarios/*.toml``; the format in
``scenarios/README.md``): fault models with their scopes, misbehaving clients,
well-behaved load, a duration, and what must hold -- every complete request
answered, a prompt stop, no leaks, the handler errors allowed.

* :func:`load` -- a scenario by path or by name in the library, read and checked:
  every mistake in the file reported at once, each with ``file:line``, the key, the
  value and what is allowed.
* :func:`names` -- the names the library has.
* :func:`run` -- run one against a server in this process and judge it.

The command line: ``sockshock run SCENARIO...``, ``sockshock check [PATH...]``;
pytest: ``@pytest.mark.faults("slowloris")``, ``--sockshock-scenario=NAME``.
"""

from sockshock._scenarios import find as load
from sockshock._scenarios import names, run

__all__ = ["load", "names", "run"]

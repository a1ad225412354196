"""The ``sockshock`` command line: arguments and dispatch (``_main``), ``sockshock run`` (``_run``), scenarios and ``check`` (``_scenario``), ``sockshock proxy`` (``_proxy``)."""

from sockshock._cli._main import main
from sockshock._cli._proxy import proxy_main

__all__ = [
    "main",
    "proxy_main",
]

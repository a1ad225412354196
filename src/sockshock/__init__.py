"""sockshock: find out how socket servers behave when the network misbehaves.

The top level holds what most tests need: :func:`serving` (run a server for the
length of a ``with`` block, under faults), :func:`inject` and :func:`install` (for
servers built where a test cannot reach them), :func:`drive` (a handler against a
scripted client, in memory), :class:`FaultProxy` (faults in front of a server in
another process), :func:`audit` (the leak audit), :func:`server_kinds`, and the
:class:`ServerHandle` and :class:`Transcript` they hand back. The fault models are in
:mod:`sockshock.faults`, every exception in :mod:`sockshock.errors`, the socket layer
in :mod:`sockshock.layer`; the drop-in module is :mod:`sockshock.socketserver`.

The package, bottom-up (dependencies point down only; each folder's ``__init__`` is
its doorway; public modules only re-export): ``_util`` (argument checks, address
rules, bounds, seeds, clocks), ``_faults`` (pure, seeded models, the plan, the model
registry), ``_layer`` (the socket-layer protocol, its conformance kit), ``_wire``
(the fault layer on real sockets), ``_tls`` (TLS over any socket, test
certificates), ``_memory`` (in-memory sockets), ``socketserver``, ``_stdlib`` (the
standard module looked up, the server catalogue, sockshock's loop for its classes),
``_harness`` (serving, the bounded stop, handler failures, the audit, install and
inject, drive), ``_clients`` (misbehaving clients, scripts), ``_proxy`` (the fault
proxy), ``_scenarios`` (scenario files), ``_checks`` (the built-in checks),
``_strategies`` (hypothesis), then ``_pytest`` (the plugin) and ``_cli``.
"""

import importlib
from typing import TYPE_CHECKING

from sockshock._util import __version__ as __version__

if TYPE_CHECKING:
    from sockshock import errors as errors
    from sockshock import faults as faults
    from sockshock import layer as layer
    from sockshock._harness import ServerHandle, Transcript, audit, drive, inject, install, serving
    from sockshock._proxy import FaultProxy
    from sockshock._stdlib import server_kinds

__all__ = [
    "FaultProxy",
    "ServerHandle",
    "Transcript",
    "audit",
    "drive",
    "inject",
    "install",
    "server_kinds",
    "serving",
]

# The names above and the public modules are imported when first used (PEP 562):
# ``import sockshock`` -- which ``import sockshock.pytest_plugin`` runs at every
# pytest start-up -- loads no harness. Each object is named by its public module
# where it is defined (``_util.exported_by``), so ``sockshock.errors.InvalidArgument``
# and ``sockshock.ServerHandle`` are their names however they were reached: the
# plugin's fixtures use the private packages and import none of these modules.
_HOMES = {
    "FaultProxy": "sockshock._proxy",
    "ServerHandle": "sockshock._harness",
    "Transcript": "sockshock._harness",
    "audit": "sockshock._harness",
    "drive": "sockshock._harness",
    "inject": "sockshock._harness",
    "install": "sockshock._harness",
    "serving": "sockshock._harness",
    "server_kinds": "sockshock._stdlib",
}
_MODULES = frozenset(
    {
        "checks",
        "clients",
        "errors",
        "faults",
        "handlers",
        "layer",
        "scenarios",
        "scripts",
        "socketserver",
        "strategies",
        "tls",
    }
)


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
    elif name in _MODULES:  # ``sockshock.errors.X`` after ``import sockshock``
        value = importlib.import_module(f"sockshock.{name}")
    else:
        raise AttributeError(f"module 'sockshock' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES, *_MODULES})

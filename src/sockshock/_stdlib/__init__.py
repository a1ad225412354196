"""Above ``socketserver``: the standard module looked up, never imported (``_lookup``), sockshock's loop grafted onto standard-library classes (``_graft``), the catalogue of server classes (``_catalog``) and the runner of CPython's own suite (``_cpython_suite``)."""

from sockshock._stdlib._catalog import ServerKind, kind_of, server_kinds, server_names
from sockshock._stdlib._graft import grafts, init_loop_state, needs_loop_state
from sockshock._stdlib._lookup import (
    classes,
    put_back_stdlib,
    set_aside_stdlib,
    stdlib_socketserver,
)

__all__ = [
    "ServerKind",
    "classes",
    "grafts",
    "init_loop_state",
    "kind_of",
    "needs_loop_state",
    "put_back_stdlib",
    "server_kinds",
    "server_names",
    "set_aside_stdlib",
    "stdlib_socketserver",
]

"""sockshock's serving loop for servers built on the standard library's module.

A class built on the standard ``socketserver`` polls in ``serve_forever()`` (a stop
waits up to ``poll_interval``), spins on EMFILE, and its UDP servers block in
``recvfrom()`` after a spurious wake-up -- which a lost datagram is, under faults.
When such a class uses the standard library's own ``serve_forever``,
``shutdown``, ``_handle_request_noblock``, ``handle_request`` or
``UDPServer.get_request`` (none of its classes overrides it), the harness's
per-run subclass takes sockshock's instead: the same code path, fixed. A method
the class overrides is left alone (its ``super()`` calls reach the standard
library's); the harness then wakes the loop another way (``_stop.request_shutdown``).
The class's own methods always run unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

from sockshock import socketserver as ours
from sockshock._stdlib._lookup import stdlib_socketserver

__all__ = ["grafts", "init_loop_state", "loop_mixin", "needs_loop_state"]

_LOOP = ("serve_forever", "shutdown", "_handle_request_noblock", "handle_request")
# What sockshock's loop calls that the standard library's BaseServer does not have.
_HELPERS = ("_wake", "_accept_pause", "_BaseServer__wakeup_channel", "_BaseServer__back_off")


def grafts(cls: type[Any]) -> dict[str, Any]:
    """The methods of sockshock's module a per-run subclass of ``cls`` takes (none
    for a class built on sockshock's own module)."""
    stdlib = stdlib_socketserver()
    if stdlib is None or issubclass(cls, ours.BaseServer) or not issubclass(cls, stdlib.BaseServer):
        return {}
    methods: dict[str, Any] = {}
    if cls.serve_forever is stdlib.BaseServer.serve_forever:  # the rest needs its helpers
        methods.update(
            (name, getattr(ours.BaseServer, name))
            for name in _LOOP
            if getattr(cls, name) is getattr(stdlib.BaseServer, name)
        )
        methods.update((name, getattr(ours.BaseServer, name)) for name in _HELPERS)
    if issubclass(cls, stdlib.UDPServer) and cls.get_request is stdlib.UDPServer.get_request:
        methods["get_request"] = ours.UDPServer.get_request
    return methods


def loop_mixin() -> type[Any]:
    """A mix-in with sockshock's loop, to put between sockshock's ThreadPoolMixIn
    (which relies on it) and a class built on the standard library's module."""
    global _LOOP_MIXIN
    if _LOOP_MIXIN is None:
        methods = {name: getattr(ours.BaseServer, name) for name in (*_LOOP, *_HELPERS)}
        _LOOP_MIXIN = type(
            "SockshockLoop",
            (),
            {
                "__doc__": "sockshock's serving loop, for a standard-library server class.",
                "__module__": __name__,
                **methods,
            },
        )
    return _LOOP_MIXIN


_LOOP_MIXIN: type[Any] | None = None


def needs_loop_state(server: Any) -> bool:
    """Whether ``server`` runs sockshock's loop without the state ours keeps."""
    return hasattr(server, "_wake") and not hasattr(server, "_BaseServer__wakeup_lock")


def init_loop_state(server: Any) -> None:
    """The instance state sockshock's loop keeps (its ``BaseServer.__init__`` sets
    it; the standard library's does not)."""
    server._BaseServer__wakeup_lock = threading.Lock()
    server._BaseServer__wakeup = None
    server._BaseServer__serving = None
    server._BaseServer__accept_backoff = 0.0
    server._BaseServer__accept_resume_at = 0.0

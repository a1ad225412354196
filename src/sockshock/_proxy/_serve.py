"""Serving toxiproxy's API: ``_http`` (and with it ``http.server``) is imported only
here, when an API is served -- importing ``http.server`` when sockshock is imported
would tie it to the standard ``socketserver`` before anyone could swap it."""

from __future__ import annotations

from typing import Any

from sockshock._proxy._api import Registry

__all__ = ["serve_api"]


def serve_api(address: tuple[str, int], registry: Registry) -> Any:
    """Serve toxiproxy's API for ``registry`` at ``address`` (loopback) on a daemon
    thread; return the server (``server_address``; ``shutdown()``, ``server_close()``).

    Raises:
        InvalidArgument: for an address other than loopback.
        OSError: if it cannot listen there.
    """
    from sockshock._proxy._http import ApiServer

    server = ApiServer(address, registry)
    server.serve_in_thread()
    return server

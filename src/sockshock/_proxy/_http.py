"""Toxiproxy's HTTP API: the routes, on the standard library's HTTP request handler
and sockshock's own ``ThreadingTCPServer`` (imported only when an API is served)."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import sockshock.socketserver as socketserver
from sockshock._proxy._addresses import inet_address
from sockshock._proxy._api import Registry, event_json
from sockshock._proxy._toxics import ApiError
from sockshock._util import __version__

__all__ = ["ApiServer"]

_MAX_BODY = 1024 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    """Toxiproxy's routes, on the standard library's HTTP request handler."""

    server: ApiServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"  # keep-alive, as Go's server
    server_version = "sockshock"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet (the stdlib's handler writes every request to stderr)."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ApiError(f"bad request body: {length} bytes, at most {_MAX_BODY}", 400)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(f"bad request body: {exc}", 400) from None

    def _dispatch(self, method: str) -> None:
        if self.headers.get("User-Agent", "").startswith("Mozilla/"):
            # As toxiproxy: a web page must not drive the API through a browser.
            self._reply(403, {"error": "User agent not allowed", "status": 403})
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")] if url.path.strip("/") else []
        try:
            status, payload = self._route(method, parts, parse_qs(url.query))
        except ApiError as error:
            status, payload = error.status, {"error": error.message, "status": error.status}
        self._reply(status, payload)

    def _reply(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode() + b"\n"
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        if status != 204:  # (a 204 has no body and no Content-Length: RFC 9110)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _route(self, method: str, parts: list[str], query: dict[str, list[str]]) -> Any:
        registry = self.server.registry
        body = self._body()  # read whatever came, so that the connection stays usable
        if method != "POST":
            body = None
        route = (method, len(parts), parts[0] if parts else "")
        if route == ("GET", 1, "version"):
            return 200, {"version": f"sockshock {__version__} (toxiproxy API)"}
        if route == ("POST", 1, "reset"):
            registry.reset()
            return 204, None
        if route == ("POST", 1, "populate"):
            done, error = registry.populate(body)
            payload: dict[str, Any] = {"proxies": [entry.json() for entry in done]}
            if error is not None:
                payload = {"error": error.message, "status": error.status, **payload}
                return error.status, payload
            return 201, payload
        if route == ("GET", 2, "sockshock") and parts[1] == "events":
            names = query.get("proxy")
            entries = [registry.get(n) for n in names] if names else list(registry)
            return 200, [event_json(e, entry.name) for entry in entries for e in entry.events]
        if parts[:1] != ["proxies"]:
            raise ApiError(f"no such endpoint: {method} {self.path}", 404)
        if len(parts) == 1:
            if method == "GET":
                return 200, {entry.name: entry.json() for entry in registry}
            if method == "POST":
                return 201, registry.create(body).json()
        elif len(parts) == 2:
            if method == "GET":
                return 200, registry.get(parts[1]).json()
            if method == "POST":
                with registry.lock:
                    entry = registry.get(parts[1])
                    if not isinstance(body, dict):
                        raise ApiError(
                            f"bad request body: expected a JSON object, got {body!r}", 400
                        )
                    entry.update(body)
                    return 200, entry.json()
            if method == "DELETE":
                registry.delete(parts[1])
                return 204, None
        elif len(parts) in (3, 4) and parts[2] == "toxics":
            name = parts[1]
            if len(parts) == 3:
                if method == "GET":
                    return 200, registry.get(name).toxic_list()
                if method == "POST":
                    return 200, registry.add_toxic(name, body)
            else:
                if method == "GET":
                    return 200, registry.get_toxic(name, parts[3])
                if method == "POST":
                    return 200, registry.update_toxic(name, parts[3], body)
                if method == "DELETE":
                    registry.delete_toxic(name, parts[3])
                    return 204, None
        raise ApiError(f"no such endpoint: {method} {self.path}", 404)


class ApiServer(socketserver.ThreadingTCPServer):
    """Toxiproxy's HTTP API for a :class:`Registry`, on sockshock's own
    ``ThreadingTCPServer`` with the standard library's HTTP request handler.

    Args:
        address: where to listen: (host, port) on loopback (toxiproxy's port is
            :data:`API_PORT`, 8474).
        registry: the proxies it serves.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], registry: Registry) -> None:
        self.registry = registry
        family, address = inet_address("--api", address, "tcp", 0, "the API server")
        self.address_family = family
        super().__init__(address[:2], _Handler)

    def serve_in_thread(self) -> threading.Thread:
        """Serve on a daemon thread; :meth:`shutdown` ends it."""
        thread = threading.Thread(target=self.serve_forever, name="sockshock api", daemon=True)
        thread.start()
        return thread

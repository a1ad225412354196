"""Toxiproxy's HTTP API over many named fault proxies in one process
(``sockshock proxy --api 127.0.0.1:8474``).

:class:`Registry` holds the proxies by name, each a :class:`FaultProxy` whose
faults are its toxics' models (one plan, rebuilt with the same seed whenever a
toxic changes); :class:`ApiServer` serves toxiproxy's endpoints with the standard
library's HTTP request handler on sockshock's own ``ThreadingTCPServer`` -- no
hand-written HTTP (in ``_http``, which ``_serve`` imports when an API is
served: importing ``http.server`` early would tie it to the standard
``socketserver``). The JSON shapes, defaults and status codes are toxiproxy's
(``api.go``): 201 for a new proxy, 204 for deletes and ``/reset``, 409 for a name
taken, 404 for one unknown, 400 for a bad body, stream or toxic type, 500 for an
address that cannot be listened on. sockshock's extensions live under keys of
their own: a proxy's ``"sockshock"`` object (``transport``: ``"tcp"``, ``"udp"``
or ``"unix"``; ``seed``; read back with its models and how many faults fired), the
``sockshock`` toxic type (any fault model, spelled as in Python), and
``GET /sockshock/events`` (every proxy's fault events as JSON, ``?proxy=NAME``
for one).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sockshock._faults import FaultEvent
from sockshock._proxy._addresses import format_address, inet_address, transport_of, unix_path
from sockshock._proxy._fault_proxy import FaultProxy
from sockshock._proxy._toxics import ApiError, check_toxic, models_of, update_toxic
from sockshock._util import InvalidArgument, ProxyError

__all__ = ["API_PORT", "Registry", "event_json", "parse_host_port"]

#: Toxiproxy's API port, the documented convention.
API_PORT = 8474
_EVENTS_KEPT = 10_000  # per proxy, for GET /sockshock/events


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a (host, port) tuple.

    Raises:
        ApiError: 400, naming ``what`` and the text.
    """
    if not isinstance(text, str):
        raise ApiError(f"bad request body: {what}={text!r} is not a string", 400)
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port.isdigit():
        raise ApiError(
            f"bad request body: {what}={text!r}: expected HOST:PORT such as 127.0.0.1:8000", 400
        )
    if not host:
        raise ApiError(
            f"bad request body: {what}={text!r} has no host (all interfaces): sockshock "
            "proxies listen on loopback only; give 127.0.0.1:PORT or localhost:PORT",
            400,
        )
    return host, int(port)


def event_json(event: FaultEvent, proxy: str | None = None) -> dict[str, Any]:
    """One fault event as a JSON object (``--log FILE`` writes one per line)."""
    address = event.address
    record: dict[str, Any] = {}
    if proxy is not None:
        record["proxy"] = proxy
    record.update(
        {
            "time": round(event.now, 6),
            "connection": event.connection,
            "address": format_address(address) if address is not None else None,
            "kind": event.kind,
            "index": event.index,
            "offset": event.offset,
            "size": event.size,
            "model": event.model.describe(),
            "decision": {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in event.decision._asdict().items()
                if v != event.decision._field_defaults[k]
            },
        }
    )
    return record


class Entry:
    """One named proxy of the API: toxiproxy's fields, its toxics, the FaultProxy."""

    def __init__(
        self,
        registry: Registry,
        name: str,
        listen: str,
        upstream: str,
        transport: str,
        seed: int | None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.transport = transport
        self.seed = seed
        self.toxics: dict[str, dict[str, Any]] = {}
        self.events: list[FaultEvent] = []
        self.fired = 0
        self.proxy = self._make()

    def _addresses(self) -> tuple[Any, Any]:
        if self.transport == "unix":
            try:
                return (
                    unix_path("listen", self.listen, "the API"),
                    unix_path("upstream", self.upstream, "the API"),
                )
            except InvalidArgument as exc:
                raise ApiError(f"bad request body: {exc}", 400) from None
        listen = parse_host_port(self.listen, "listen")
        upstream = parse_host_port(self.upstream, "upstream")
        try:
            inet_address("upstream", upstream, self.transport, 1, "the API")
            inet_address("listen", listen, self.transport, 0, "the API")
        except InvalidArgument as exc:
            raise ApiError(f"bad request body: {exc}", 400) from None
        return listen, upstream

    def _make(self) -> FaultProxy:
        listen, upstream = self._addresses()
        try:
            proxy = FaultProxy(
                upstream,
                listen=listen,
                faults=self.models(),
                seed=self.registry.seed if self.seed is None else self.seed,
                transport=transport_of(self.transport),
            )
        except InvalidArgument as exc:
            raise ApiError(f"bad request body: {exc}", 400) from None
        proxy.on_event = self._on_event
        return proxy

    def _on_event(self, event: FaultEvent) -> None:
        self.fired += 1
        if len(self.events) < _EVENTS_KEPT:
            self.events.append(event)
        sink = self.registry.on_event
        if sink is not None:
            sink(self.name, event)

    def start(self, enabled: bool) -> None:
        try:
            self.proxy.start()
        except OSError as exc:
            raise ApiError(f"proxy {self.name!r}: {exc.strerror or exc}", 500) from None
        if self.transport != "unix":
            self.listen = format_address(self.proxy.address)
        if not enabled:
            self.proxy.disable()

    def stop(self) -> None:
        with contextlib.suppress(ProxyError):
            self.proxy.stop()

    @property
    def enabled(self) -> bool:
        return self.proxy.enabled

    def models(self) -> list[Any]:
        return [model for toxic in self.toxics.values() for model in models_of(toxic)]

    def refresh(self) -> None:
        """The toxics changed: the proxy takes the plan they make (same seed)."""
        try:
            self.proxy.set_faults(self.models(), seed=self.proxy.plan.seed)
        except InvalidArgument as exc:
            raise ApiError(f"bad request body: {exc}", 400) from None

    def update(self, body: dict[str, Any]) -> None:
        listen = body.get("listen", self.listen)
        upstream = body.get("upstream", self.upstream)
        enabled = body.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            raise ApiError(f"bad request body: enabled={enabled!r} is not true or false", 400)
        if listen != self.listen or upstream != self.upstream:
            # toxiproxy: a new address restarts the proxy (its connections dropped).
            old = (self.listen, self.upstream, self.proxy)
            self.listen, self.upstream = listen, upstream
            try:
                fresh = self._make()
            except ApiError:
                self.listen, self.upstream = old[0], old[1]
                raise
            self.stop()
            self.proxy = fresh
            self.start(enabled)
            return
        if enabled and not self.enabled:
            self.proxy.enable()
        elif not enabled and self.enabled:
            self.proxy.disable()

    def toxic_list(self) -> list[dict[str, Any]]:
        return list(self.toxics.values())

    def json(self) -> dict[str, Any]:
        plan = self.proxy.plan
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_list(),
            "sockshock": {
                "transport": self.transport,
                "seed": plan.seed,
                "models": [model.describe() for model in plan.models],
                "faults_fired": self.fired,
            },
        }


class Registry:
    """The named proxies of one API server (thread-safe: one lock for every change).

    Args:
        seed: the seed of every proxy's plan (default: random per proxy); a
            proxy's ``"sockshock": {"seed": N}`` overrides it.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.lock = threading.RLock()
        self.entries: dict[str, Entry] = {}
        #: Called with (proxy name, event) for every fault event of every proxy, on
        #: that proxy's I/O thread (``--log FILE``).
        self.on_event: Callable[[str, FaultEvent], None] | None = None

    def get(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None:
            raise ApiError("proxy not found", 404)
        return entry

    def _new(self, body: Any, where: str = "") -> tuple[Entry, bool]:
        if not isinstance(body, dict):
            raise ApiError(f"bad request body: expected a JSON object{where}, got {body!r}", 400)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(f"missing required field: name{where}", 400)
        upstream = body.get("upstream")
        if not isinstance(upstream, str) or not upstream:
            raise ApiError(f"missing required field: upstream{where}", 400)
        extra = body.get("sockshock") or {}
        if not isinstance(extra, dict):
            raise ApiError(f"bad request body: sockshock={extra!r} is not an object", 400)
        transport = extra.get("transport", "tcp")
        if transport not in ("tcp", "udp", "unix"):
            raise ApiError(
                f"bad request body: sockshock.transport={transport!r}: expected 'tcp', "
                "'udp' or 'unix'",
                400,
            )
        seed = extra.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ApiError(f"bad request body: sockshock.seed={seed!r} is not an int >= 0", 400)
        default_listen = "" if transport == "unix" else "127.0.0.1:0"
        listen = body.get("listen") or default_listen
        if transport == "unix" and not listen:
            raise ApiError(f"missing required field: listen (a Unix path){where}", 400)
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ApiError(f"bad request body: enabled={enabled!r} is not true or false", 400)
        return Entry(self, name, listen, upstream, transport, seed), enabled

    def create(self, body: Any) -> Entry:
        with self.lock:
            if isinstance(body, dict) and body.get("name") in self.entries:
                raise ApiError("proxy already exists", 409)
            entry, enabled = self._new(body)
            entry.start(enabled)
            self.entries[entry.name] = entry
            return entry

    def populate(self, bodies: Any) -> tuple[list[Entry], ApiError | None]:
        """Create or replace each proxy (toxiproxy's ``/populate``): one whose
        ``listen`` and ``upstream`` are unchanged is kept as it is."""
        if not isinstance(bodies, list):
            raise ApiError(f"bad request body: expected a JSON array, got {bodies!r}", 400)
        for i, body in enumerate(bodies):  # checked before anything changes
            where = f" at proxy {i + 1}"
            if not isinstance(body, dict):
                raise ApiError(f"bad request body: expected a JSON object{where}", 400)
            if not isinstance(body.get("name"), str) or not body.get("name"):
                raise ApiError(f"missing required field: name{where}", 400)
            if not isinstance(body.get("upstream"), str) or not body.get("upstream"):
                raise ApiError(f"missing required field: upstream{where}", 400)
        done: list[Entry] = []
        with self.lock:
            for body in bodies:
                existing = self.entries.get(body["name"])
                if existing is not None:
                    same_listen = body.get("listen") in (None, existing.listen)
                    if same_listen and body["upstream"] == existing.upstream:
                        done.append(existing)
                        continue
                try:
                    entry, enabled = self._new(body)
                    if existing is not None:
                        existing.stop()
                        del self.entries[existing.name]
                    entry.start(enabled)
                except ApiError as error:
                    return done, error
                self.entries[entry.name] = entry
                done.append(entry)
        return done, None

    def delete(self, name: str) -> None:
        with self.lock:
            entry = self.get(name)
            entry.stop()
            del self.entries[name]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (toxiproxy's ``/reset``)."""
        with self.lock:
            for entry in self.entries.values():
                entry.toxics.clear()
                entry.refresh()
                if not entry.enabled:
                    entry.proxy.enable()

    def add_toxic(self, name: str, body: Any) -> dict[str, Any]:
        with self.lock:
            entry = self.get(name)
            toxic = check_toxic(body)
            if toxic["name"] in entry.toxics:
                raise ApiError("toxic already exists", 409)
            entry.toxics[toxic["name"]] = toxic
            try:
                entry.refresh()
            except ApiError:
                del entry.toxics[toxic["name"]]
                raise
            return toxic

    def get_toxic(self, name: str, toxic: str) -> dict[str, Any]:
        entry = self.get(name)
        found = entry.toxics.get(toxic)
        if found is None:
            raise ApiError("toxic not found", 404)
        return found

    def update_toxic(self, name: str, toxic: str, body: Any) -> dict[str, Any]:
        with self.lock:
            entry = self.get(name)
            old = self.get_toxic(name, toxic)
            entry.toxics[toxic] = update_toxic(old, body)
            try:
                entry.refresh()
            except ApiError:
                entry.toxics[toxic] = old
                raise
            return entry.toxics[toxic]

    def delete_toxic(self, name: str, toxic: str) -> None:
        with self.lock:
            entry = self.get(name)
            self.get_toxic(name, toxic)
            del entry.toxics[toxic]
            entry.refresh()

    def close(self) -> None:
        """Stop every proxy."""
        with self.lock:
            for entry in self.entries.values():
                entry.stop()
            self.entries.clear()

    def __iter__(self) -> Iterator[Entry]:
        with self.lock:
            return iter(list(self.entries.values()))

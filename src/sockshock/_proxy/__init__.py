"""The fault proxy: sockshock's fault models on the wire, for servers it cannot wrap.

Modules, bottom-up: ``_addresses`` (transports, loopback and Unix addresses, the
plan checked against the transport), ``_loop`` (the one I/O thread's loop: epoll or
poll, timers, waking; ``Hub``, what forwarding asks of the proxy), ``_pipe`` (one
direction of a stream connection: decisions, splice, back-pressure), ``_streams``
(accepting, and a stream connection's life cycle), ``_datagrams`` (relaying UDP
datagrams), ``_fault_proxy`` (``FaultProxy``), ``_factory`` (``proxy_for``,
``ProxyFactory``, the fixture function), ``_toxics`` (toxiproxy's toxics as fault
models; models from their Python spelling), ``_api`` (toxiproxy's HTTP API over
many named proxies), ``_http`` (its routes on the standard library's HTTP handler), ``_serve``
(serving it: the one place ``_http`` is imported)."""

from sockshock._proxy._addresses import format_address, host_port_form, transport_of
from sockshock._proxy._api import API_PORT, Registry, event_json
from sockshock._proxy._factory import ProxyFactory, proxy_for, sockshock_proxy
from sockshock._proxy._fault_proxy import FaultProxy, raise_open_file_limit
from sockshock._proxy._serve import serve_api
from sockshock._proxy._toxics import ApiError, parse_fault

__all__ = [
    "API_PORT",
    "ApiError",
    "FaultProxy",
    "ProxyFactory",
    "Registry",
    "event_json",
    "format_address",
    "host_port_form",
    "parse_fault",
    "proxy_for",
    "raise_open_file_limit",
    "serve_api",
    "sockshock_proxy",
    "transport_of",
]

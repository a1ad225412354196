"""The fault proxy: sockshock's fault models on the wire, for servers it cannot wrap.

Modules, bottom-up: ``_addresses`` (transports, loopback and Unix addresses, the
plan checked against the transport), ``_loop`` (the one I/O thread's loop: epoll or
poll, timers, waking; ``Hub``, what forwarding asks of the proxy), ``_pipe`` (one
direction of a stream connection: decisions, splice, back-pressure), ``_streams``
(accepting, and a stream connection's life cycle), ``_datagrams`` (relaying UDP
datagrams), ``_fault_proxy`` (``FaultProxy``), ``_factory`` (``proxy_for``,
``ProxyFactory``, the fixture function)."""

from sockshock._proxy._addresses import format_address, host_port_form
from sockshock._proxy._factory import ProxyFactory, proxy_for, sockshock_proxy
from sockshock._proxy._fault_proxy import FaultProxy

__all__ = [
    "FaultProxy",
    "ProxyFactory",
    "format_address",
    "host_port_form",
    "proxy_for",
    "sockshock_proxy",
]

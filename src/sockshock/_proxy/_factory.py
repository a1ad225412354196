"""The fault proxy for tests: :func:`proxy_for` (a context manager),
:class:`ProxyFactory` and :func:`sockshock_proxy` (the fixture function the plugin
registers, with the test's seed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sockshock._faults import FaultPlan
from sockshock._harness import AddressArg, PlanArg, add_note
from sockshock._proxy._fault_proxy import FaultProxy
from sockshock._util import ProxyError

__all__ = ["ProxyFactory", "proxy_for", "sockshock_proxy"]


@contextlib.contextmanager
def proxy_for(
    upstream: AddressArg,
    *,
    listen: AddressArg | None = None,
    faults: PlanArg | None = None,
    seed: int | None = None,
    transport: str = "stream",
) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of ``upstream`` for the length of a ``with``
    block (any server: in this process, in a subprocess, in another language).

    Args:
        upstream: the server's ``(host, port)`` on loopback, or its Unix stream socket's
            path.
        listen: see :class:`FaultProxy`.
        faults: a FaultPlan or a list of fault models.
        seed: the seed of a plan made from a list.
        transport: ``"stream"`` (default) or ``"datagram"``; a path as ``upstream``
            is a Unix stream socket.

    Yields:
        The running proxy: give clients ``proxy.address``; ``proxy.plan.log`` is
        what was injected.
    """
    with FaultProxy(
        upstream, listen=listen, faults=faults, seed=seed, transport=transport
    ) as proxy:
        yield proxy


class ProxyFactory:
    """What the ``sockshock_proxy`` fixture gives a test: call it to put a proxy in
    front of any address; every proxy it started is stopped at teardown.

    Args:
        seed: the seed of plans made from a list of models (the test's seed when
            the plugin provides it; default: random per proxy).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        #: The proxies started so far, in order.
        self.proxies: list[FaultProxy] = []

    def __call__(
        self,
        upstream: AddressArg,
        *,
        faults: PlanArg | None = None,
        seed: int | None = None,
        transport: str = "stream",
        listen: AddressArg | None = None,
    ) -> FaultProxy:
        """Start a proxy in front of ``upstream``; clients connect to its ``.address``."""
        if seed is None and not isinstance(faults, FaultPlan):
            seed = self.seed
        proxy = FaultProxy(upstream, listen=listen, faults=faults, seed=seed, transport=transport)
        proxy.start()
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        """Stop every proxy (last first); then raise the first failure, if any."""
        errors: list[ProxyError] = []
        for proxy in reversed(self.proxies):  # kept: their logs go in a failure report
            try:
                proxy.stop()
            except ProxyError as exc:
                errors.append(exc)
        if errors:
            first, *rest = errors
            for other in rest:
                add_note(first, f"also: {other}")
            raise first

    def report(self) -> str:
        """Each proxy's plan and log, for a failing test's report."""
        return "\n".join(f"{proxy!r}:\n{proxy.plan.describe()}" for proxy in self.proxies)


def sockshock_proxy(seed: int | None = None) -> Iterator[ProxyFactory]:
    """Fixture function (the plugin registers it): ``sockshock_proxy(upstream,
    faults=[...], transport="stream")`` starts a :class:`FaultProxy` in front of any
    address -- a server in a subprocess included -- and returns it (give clients
    its ``.address``). Every proxy is stopped at teardown.

    Args:
        seed: the seed for plans made from a list of models (pytest leaves
            arguments with defaults alone; the plugin passes the test's seed).

    Yields:
        A :class:`ProxyFactory`.
    """
    factory = ProxyFactory(seed)
    try:
        yield factory
    finally:
        factory.close()

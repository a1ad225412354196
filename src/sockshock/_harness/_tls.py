"""TLS for served servers: the handshake in the handler's thread, faults beneath
and above it.

``serving(..., tls=True)`` (a server certificate from sockshock's per-process
trustme CA) or ``tls=<your ssl.SSLContext>``: each accepted connection is wrapped
in a :class:`~sockshock._tls._socket.TLSSocket` when its request is handed to
the handler -- in the handler's thread, forked child or pool worker, never in the
serving loop, so one client stalling its handshake delays nobody else. The TLS
runs over the connection the fault layer handed out: ``layer="wire"`` models act
on the encrypted records, ``layer="plaintext"`` ones on what the handler reads and
writes (:class:`~sockshock._tls._plaintext.PlaintextFaults`).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from sockshock._faults import check_fit
from sockshock._tls import PlaintextFaults, TLSSocket
from sockshock._util import InvalidArgument
from sockshock._wire import FaultLayer

__all__ = ["ServerTLS", "resolve_tls"]


class ServerTLS:
    """How a served server wraps its connections."""

    def __init__(self, context: ssl.SSLContext, layer: FaultLayer | None, ours: bool) -> None:
        self.context = context
        self.layer = layer if layer is not None and layer.has_plaintext_faults else None
        #: Whether the certificate comes from sockshock's CA (then clients can trust it).
        self.ours = ours

    def wrap(self, request: Any) -> Any:
        """The accepted connection, under TLS (no I/O: the handshake comes with the
        handler's first read or write)."""
        if not isinstance(request, socket.socket):
            return request
        tls = TLSSocket(request, self.context, server_side=True)
        layer = self.layer
        if layer is not None:
            connection = layer.plaintext_connection(getattr(request, "_sockshock_conn", None), None)
            tls.plaintext_hook = PlaintextFaults(
                layer, connection, tls.gettimeout, getattr(request, "_sockshock_closing", None)
            )
        return tls

    @staticmethod
    def handshake(tls: Any, timeout: float | None) -> None:
        """The handshake, before the handler runs (as a server that wraps accepted
        sockets does): a failed one raises the ssl error the server would see --
        ``SSLEOFError`` for a client gone mid-handshake, the certificate errors --
        and the handler never runs. It honours the handler's ``timeout``."""
        if not isinstance(tls, TLSSocket):
            return
        previous = tls.gettimeout()
        if timeout is not None:
            tls.settimeout(timeout)
        try:
            tls.do_handshake()
        finally:
            tls.settimeout(previous)


def resolve_tls(
    tls: Any, *, server_class: type[Any], layer: FaultLayer | None, source: str = "serving()"
) -> ServerTLS | None:
    """``tls=None/False`` -> no TLS; ``True`` -> a certificate from sockshock's CA;
    an ``ssl.SSLContext`` -> that (a server-side one)."""
    if tls is None or tls is False:
        if layer is not None:
            check_fit(
                layer.plan.models,
                transport="stream"
                if server_class.socket_type == socket.SOCK_STREAM
                else "datagram",
                tls=False,
                target=server_class.__name__,
                where=source,
                fix="serve with tls=True (or your ssl.SSLContext)",
            )
        return None
    if server_class.socket_type != socket.SOCK_STREAM:
        raise InvalidArgument(
            f"tls={tls!r} (from {source}): {server_class.__name__} is a "
            "datagram server; TLS runs over stream connections"
        )
    if tls is True:
        from sockshock._tls import server_context

        return ServerTLS(server_context(), layer, ours=True)
    if isinstance(tls, ssl.SSLContext):
        if getattr(tls, "protocol", None) == ssl.PROTOCOL_TLS_CLIENT:
            raise InvalidArgument(
                f"tls={tls!r} (from {source}) is a client context "
                "(PROTOCOL_TLS_CLIENT); give a server-side one"
            )
        return ServerTLS(tls, layer, ours=False)
    raise InvalidArgument(
        f"expected True, False or an ssl.SSLContext but got tls={tls!r} "
        f"(type={type(tls).__name__}) (from {source})"
    )

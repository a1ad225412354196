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

A failed handshake -- a client that rejects the certificate, leaves before its
ClientHello, stalls past the handler's ``timeout`` -- is what the standard
library's servers drop without a word (they handshake in ``accept()``). The
harness drops it too, the handler never runs, and it is kept apart from handler
errors: ``handle.failed_handshakes``, and the failing test's report. With
``tls_strict=True`` it is a handler error as well (re-raised when the block ends).
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

    def __init__(
        self, context: ssl.SSLContext, layer: FaultLayer | None, ours: bool, strict: bool = False
    ) -> None:
        self.context = context
        #: Whether a failed handshake is a handler error too.
        self.strict = strict
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

    def handshake(
        self, tls: Any, timeout: float | None, reporter: Any = None, client_address: Any = None
    ) -> bool:
        """The handshake, before the handler runs (as a server that wraps accepted
        sockets does), honouring the handler's ``timeout``. Whether it succeeded: a
        failed one is given to ``reporter.record_handshake()`` and the handler must
        not run; with :attr:`strict` its error is raised as well (the ssl error the
        server would see -- ``SSLEOFError`` for a client gone mid-handshake, the
        certificate errors), for ``handle_error()`` to report."""
        if not isinstance(tls, TLSSocket):
            return True
        previous = tls.gettimeout()
        if timeout is not None:
            tls.settimeout(timeout)
        try:
            tls.do_handshake()
        except (OSError, ValueError) as exc:  # ssl.SSLError, resets, TimeoutError
            if reporter is not None:
                reporter.record_handshake(exc, client_address)
            if self.strict or reporter is None:
                raise
            return False
        finally:
            tls.settimeout(previous)
        return True


def resolve_tls(
    tls: Any,
    *,
    server_class: type[Any],
    layer: FaultLayer | None,
    source: str = "serving()",
    strict: Any = False,
) -> ServerTLS | None:
    """``tls=None/False`` -> no TLS; ``True`` -> a certificate from sockshock's CA;
    an ``ssl.SSLContext`` -> that (a server-side one). ``strict``: whether a failed
    handshake is a handler error too (``tls_strict=``)."""
    if not isinstance(strict, bool):
        raise InvalidArgument(
            f"expected True or False but got tls_strict={strict!r} "
            f"(type={type(strict).__name__}) (from {source})"
        )
    if (tls is None or tls is False) and strict:
        raise InvalidArgument(
            f"tls_strict=True (from {source}) only applies with tls=True or a server "
            "ssl.SSLContext: without TLS there is no handshake to fail"
        )
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

        return ServerTLS(server_context(), layer, ours=True, strict=strict)
    if isinstance(tls, ssl.SSLContext):
        if getattr(tls, "protocol", None) == ssl.PROTOCOL_TLS_CLIENT:
            raise InvalidArgument(
                f"tls={tls!r} (from {source}) is a client context "
                "(PROTOCOL_TLS_CLIENT); give a server-side one"
            )
        return ServerTLS(tls, layer, ours=False, strict=strict)
    raise InvalidArgument(
        f"expected True, False or an ssl.SSLContext but got tls={tls!r} "
        f"(type={type(tls).__name__}) (from {source})"
    )

"""TLS over any socket, so that faults act beneath it: the engine (``_engine``: an SSLObject over memory BIOs), ``TLSSocket`` (``_socket``), faults above TLS (``_plaintext``), and certificates from trustme (``_certs``)."""

from sockshock._tls._certs import (
    CERTIFICATES,
    CLIENT_CERTIFICATES,
    SERVER_HOSTNAME,
    TLS_CASES,
    TLSUnavailable,
    certificate_authority,
    client_context,
    contexts,
    server_context,
)
from sockshock._tls._plaintext import PlaintextFaults
from sockshock._tls._socket import PlaintextHook, TLSSocket

__all__ = [
    "CERTIFICATES",
    "CLIENT_CERTIFICATES",
    "SERVER_HOSTNAME",
    "TLS_CASES",
    "PlaintextFaults",
    "PlaintextHook",
    "TLSSocket",
    "TLSUnavailable",
    "certificate_authority",
    "client_context",
    "contexts",
    "server_context",
]

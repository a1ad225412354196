"""TLS for sockshock's servers and tests: certificates from trustme, never committed.

* :func:`server_context` / :func:`client_context` / :func:`contexts` -- contexts
  from one per-process certificate authority (trustme; each xdist worker has its
  own), for ``localhost``, ``127.0.0.1`` and ``::1``, and for the failures a TLS
  server's tests should cover (:data:`TLS_CASES`: a wrong host name, an untrusted
  CA, an expired certificate, a client certificate required and missing, a
  protocol version mismatch).

trustme is imported on first use (``pip install 'sockshock[tls]'``).
"""

from sockshock._tls import (
    TLS_CASES,
    client_context,
    contexts,
    server_context,
)

__all__ = ["TLS_CASES", "client_context", "contexts", "server_context"]

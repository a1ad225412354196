"""Certificates for TLS tests, made by trustme on first use and kept per process.

Nothing is written to the repository and nothing is loaded until a test asks for
TLS: trustme (and cryptography under it, about 0.1 s to import) is imported on
the first call, and a missing install raises :class:`TLSUnavailable` saying what
to install. Each process -- so each xdist worker -- makes one certificate
authority and caches every leaf it issues; only the ``ssl.SSLContext`` objects
are new at each call, so that a test changing its context cannot change another
test's.

Measured here (Python 3.11, OpenSSL 3.0, ECDSA P-256 keys, trustme's default):
a CA 0.8 ms, a leaf 0.6 ms (RSA would be 76 ms), a server context with its leaf
loaded 2.4 ms, a client context trusting the CA 0.8 ms.

The failure cases a TLS server's tests should cover are named in
:data:`TLS_CASES`; :func:`contexts` gives the (server, client) pair for one.
"""

from __future__ import annotations

import datetime
import os
import ssl
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sockshock._util import InvalidArgument, TLSUnavailable, check_choice, check_type, exported_by

if TYPE_CHECKING:
    import trustme

__all__ = [
    "CERTIFICATES",
    "CLIENT_CERTIFICATES",
    "LOOPBACK_NAMES",
    "SERVER_HOSTNAME",
    "TLS_CASES",
    "TLSUnavailable",
    "certificate_authority",
    "client_context",
    "contexts",
    "server_context",
]

#: The names a server certificate is valid for: every loopback address sockshock binds.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: What clients check the server's certificate against (and send as SNI).
SERVER_HOSTNAME = "localhost"

#: Server certificates: ``valid`` for :data:`LOOPBACK_NAMES` from the trusted CA;
#: ``wrong-hostname`` (for ``wrong.invalid`` only), ``untrusted`` (from a second
#: CA that clients do not trust), ``expired`` and ``not-yet-valid`` fail
#: verification on the client.
CERTIFICATES = ("valid", "wrong-hostname", "untrusted", "expired", "not-yet-valid")
#: Client certificates (mutual TLS): none, or one of these.
CLIENT_CERTIFICATES = ("valid", "untrusted", "expired")

#: The cases: name -> (server_context() arguments, client_context() arguments).
TLS_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "valid": ({}, {}),
    "wrong-hostname": ({"certificate": "wrong-hostname"}, {}),
    "untrusted-ca": ({"certificate": "untrusted"}, {}),
    "expired": ({"certificate": "expired"}, {}),
    "not-yet-valid": ({"certificate": "not-yet-valid"}, {}),
    "client-cert": ({"require_client_cert": True}, {"client_certificate": "valid"}),
    "client-cert-missing": ({"require_client_cert": True}, {}),
    "client-cert-untrusted": ({"require_client_cert": True}, {"client_certificate": "untrusted"}),
    "client-cert-expired": ({"require_client_cert": True}, {"client_certificate": "expired"}),
    "version-mismatch": (
        {"minimum_version": ssl.TLSVersion.TLSv1_3},
        {"maximum_version": ssl.TLSVersion.TLSv1_2},
    ),
}


_lock = threading.Lock()
_authorities: dict[str, trustme.CA] = {}
_leaves: dict[tuple[str, str], trustme.LeafCert] = {}


def _reset_lock() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # a child must not inherit a lock held by a thread
    os.register_at_fork(after_in_child=_reset_lock)


def _trustme() -> ModuleType:
    try:
        import trustme
    except ImportError as error:
        raise TLSUnavailable(
            "TLS certificates need trustme, which is not installed: pip install 'sockshock[tls]'"
        ) from error
    return trustme


def _authority(name: str) -> trustme.CA:
    """The process's CA called ``name`` ("trusted" or "untrusted"); the caller holds _lock."""
    authority = _authorities.get(name)
    if authority is None:
        authority = _authorities[name] = _trustme().CA(
            organization_name="sockshock", organization_unit_name=f"{name} test CA"
        )
    return authority


def certificate_authority() -> trustme.CA:
    """The process-wide CA that :func:`client_context` trusts (a ``trustme.CA``).

    Use it to issue certificates of your own: ``certificate_authority().issue_cert(...)``.

    Raises:
        TLSUnavailable: trustme is not installed.
    """
    with _lock:
        return _authority("trusted")


def _leaf(kind: str, role: str) -> trustme.LeafCert:
    """The cached leaf certificate of one kind, for a server or a client."""
    with _lock:
        leaf = _leaves.get((kind, role))
        if leaf is not None:
            return leaf
        now = datetime.datetime.now(datetime.timezone.utc)
        day = datetime.timedelta(days=1)
        names: tuple[str, ...] = (
            LOOPBACK_NAMES if role == "server" else ("client.sockshock.invalid",)
        )
        issue: dict[str, Any] = {"common_name": f"sockshock {role} ({kind})"}
        if kind == "wrong-hostname":
            names = ("wrong.invalid",)
        elif kind == "expired":
            issue.update(not_before=now - 30 * day, not_after=now - day)
        elif kind == "not-yet-valid":
            issue.update(not_before=now + day, not_after=now + 30 * day)
        authority = _authority("untrusted" if kind == "untrusted" else "trusted")
        leaf = _leaves[(kind, role)] = authority.issue_cert(*names, **issue)
        return leaf


_VERSION_NAMES = tuple(v.name for v in ssl.TLSVersion)


def _version(name: str, value: Any, source: str) -> ssl.TLSVersion | None:
    """A TLS version: ``None``, an ``ssl.TLSVersion`` or its name (``"TLSv1_3"``, also
    spelled ``"TLSv1.3"``)."""
    if value is None or isinstance(value, ssl.TLSVersion):
        return value
    if isinstance(value, str):
        version = getattr(ssl.TLSVersion, value.replace(".", "_"), None)
        if isinstance(version, ssl.TLSVersion):
            return version
        raise InvalidArgument(
            f"{name}={value!r} is not a TLS version; give an ssl.TLSVersion "
            f"or one of {', '.join(map(repr, _VERSION_NAMES))} "
            f"(from {source})"
        )
    raise InvalidArgument(
        f"expected an ssl.TLSVersion (or its name, such as 'TLSv1_3') but got "
        f"{name}={value!r} (type={type(value).__name__}) (from {source})"
    )


def _rank(version: ssl.TLSVersion) -> int:
    """The order of versions, with the two placeholders at the ends."""
    if version is ssl.TLSVersion.MINIMUM_SUPPORTED:
        return -(2**31)
    if version is ssl.TLSVersion.MAXIMUM_SUPPORTED:
        return 2**31
    return int(version)


def _alpn(value: Any, source: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidArgument(
            f"expected a list of protocol names such as ['h2', 'http/1.1'] but "
            f"got alpn_protocols={value!r} (type={type(value).__name__})"
            f"{f'; for this one alone, [{value!r}]' if isinstance(value, str) else ''}"
            f" (from {source})"
        )
    for item in value:
        if not isinstance(item, str):
            raise InvalidArgument(
                f"expected protocol names (str) in alpn_protocols but got "
                f"{item!r} (type={type(item).__name__}) (from {source})"
            )
        if not 0 < len(item.encode()) < 256:
            raise InvalidArgument(
                f"alpn_protocols holds {item!r}: a protocol name is 1 to 255 bytes (from {source})"
            )
    return list(value)


def _checked(
    source: str, minimum: Any, maximum: Any, alpn: Any
) -> tuple[ssl.TLSVersion | None, ssl.TLSVersion | None, list[str] | None]:
    """The version range and ALPN list, checked before any context is made."""
    low = _version("minimum_version", minimum, source)
    high = _version("maximum_version", maximum, source)
    if low is not None and high is not None and _rank(low) > _rank(high):
        raise InvalidArgument(
            f"minimum_version={low.name} is above maximum_version={high.name}: "
            f"no TLS version is left (from {source})"
        )
    return low, high, _alpn(alpn, source)


def _versions(
    context: ssl.SSLContext, minimum: ssl.TLSVersion | None, maximum: ssl.TLSVersion | None
) -> None:
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum


@exported_by("sockshock.tls")
def server_context(
    *,
    certificate: str = "valid",
    require_client_cert: bool = False,
    minimum_version: ssl.TLSVersion | str | None = None,
    maximum_version: ssl.TLSVersion | str | None = None,
    alpn_protocols: list[str] | None = None,
) -> ssl.SSLContext:
    """A new server-side context presenting a certificate of the process's CA.

    Args:
        certificate: one of :data:`CERTIFICATES`; the default is valid for
            ``localhost``, ``127.0.0.1`` and ``::1``.
        require_client_cert: mutual TLS: ``verify_mode = CERT_REQUIRED``, trusting
            the CA that issues :func:`client_context`'s certificates.
        minimum_version: the lowest TLS version to accept (``ssl.TLSVersion``, or
            its name: ``"TLSv1_3"``, ``"TLSv1.3"``).
        maximum_version: the highest TLS version to accept (not below the minimum).
        alpn_protocols: ALPN protocols to offer, e.g. ``["h2", "http/1.1"]``.

    Returns:
        A new ``ssl.SSLContext`` (``PROTOCOL_TLS_SERVER``).

    Raises:
        InvalidArgument: ``certificate`` is not one of :data:`CERTIFICATES`.
        TLSUnavailable: trustme is not installed.
    """
    check_choice("certificate", certificate, CERTIFICATES, source="server_context()")
    check_type("require_client_cert", require_client_cert, bool, source="server_context()")
    minimum_version, maximum_version, alpn_protocols = _checked(
        "server_context()", minimum_version, maximum_version, alpn_protocols
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _leaf(certificate, "server").configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        certificate_authority().configure_trust(context)
    _versions(context, minimum_version, maximum_version)
    if alpn_protocols is not None:
        context.set_alpn_protocols(alpn_protocols)
    return context


@exported_by("sockshock.tls")
def client_context(
    *,
    client_certificate: str | None = None,
    minimum_version: ssl.TLSVersion | str | None = None,
    maximum_version: ssl.TLSVersion | str | None = None,
    alpn_protocols: list[str] | None = None,
) -> ssl.SSLContext:
    """A new client-side context that trusts the process's CA and verifies the
    server (certificate and host name, as ``ssl.create_default_context()`` does,
    but without loading the system's CAs).

    Args:
        client_certificate: ``None`` (present none) or one of
            :data:`CLIENT_CERTIFICATES`, for servers that require one.
        minimum_version: the lowest TLS version to offer (``ssl.TLSVersion``, or its
            name: ``"TLSv1_3"``, ``"TLSv1.3"``).
        maximum_version: the highest TLS version to offer (not below the minimum).
        alpn_protocols: ALPN protocols to ask for.

    Returns:
        A new ``ssl.SSLContext`` (``PROTOCOL_TLS_CLIENT``).

    Raises:
        InvalidArgument: ``client_certificate`` is not None or one of
            :data:`CLIENT_CERTIFICATES`.
        TLSUnavailable: trustme is not installed.
    """
    if client_certificate is not None:
        check_choice(
            "client_certificate", client_certificate, CLIENT_CERTIFICATES, source="client_context()"
        )
    minimum_version, maximum_version, alpn_protocols = _checked(
        "client_context()", minimum_version, maximum_version, alpn_protocols
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks host names
    certificate_authority().configure_trust(context)
    if client_certificate is not None:
        _leaf(client_certificate, "client").configure_cert(context)
    _versions(context, minimum_version, maximum_version)
    if alpn_protocols is not None:
        context.set_alpn_protocols(alpn_protocols)
    return context


@exported_by("sockshock.tls")
def contexts(case: str = "valid") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The (server, client) contexts of one of :data:`TLS_CASES`.

    Clients should pass ``server_hostname=SERVER_HOSTNAME``.

    Args:
        case: a key of :data:`TLS_CASES`, such as ``"expired"``.

    Returns:
        The pair ``(server_context, client_context)``.

    Raises:
        InvalidArgument: ``case`` is not a key of :data:`TLS_CASES`.
        TLSUnavailable: trustme is not installed.
    """
    check_choice("case", case, tuple(TLS_CASES), source="contexts()")
    server, client = TLS_CASES[case]
    return server_context(**server), client_context(**client)

"""The harness: running servers for tests (serving, stopping, error reporting) and
the leak audit.

Modules, bottom-up: ``_stacks`` (thread stacks for reports), ``_failures``
(handler failures, forked children's included), ``_instrument`` (what the harness
adds to a server it runs), ``_stop`` (one bounded stop), ``_resolve`` (checking
``serving()``'s arguments), ``_handle`` (``ServerHandle``), ``_serving``
(``serving()``), ``_audit`` (the leak audit)."""

from sockshock._harness._audit import (
    LeakAudit,
    LeakReport,
    audit,
    forget_unix_path,
    register_unix_path,
)
from sockshock._harness._drive import Transcript, drive
from sockshock._harness._failures import HandlerFailure, add_note, raise_outcome
from sockshock._harness._handle import DEFAULT_TOLERANCE, ServerHandle
from sockshock._harness._handlers import DatagramEcho, LineEcho, NaiveRecvEcho, NaiveSendEcho
from sockshock._harness._install import (
    InjectedServer,
    InjectedServers,
    Installation,
    inject,
    install,
)
from sockshock._harness._resolve import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    default_handler,
    import_handler_class,
    import_object,
    is_handler_class,
    is_loopback,
    resolve_handler_class,
    resolve_server_class,
    resolve_spec,
    split_server_attrs,
    transport_of,
)
from sockshock._harness._serving import serve_spec, serving
from sockshock._harness._stop import MARGIN

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_TOLERANCE",
    "MARGIN",
    "DatagramEcho",
    "HandlerFailure",
    "InjectedServer",
    "InjectedServers",
    "Installation",
    "LeakAudit",
    "LeakReport",
    "LineEcho",
    "NaiveRecvEcho",
    "NaiveSendEcho",
    "ServerHandle",
    "Transcript",
    "add_note",
    "audit",
    "default_handler",
    "drive",
    "forget_unix_path",
    "import_handler_class",
    "import_object",
    "inject",
    "install",
    "is_handler_class",
    "is_loopback",
    "raise_outcome",
    "register_unix_path",
    "resolve_handler_class",
    "resolve_server_class",
    "resolve_spec",
    "serve_spec",
    "serving",
    "split_server_attrs",
    "transport_of",
]

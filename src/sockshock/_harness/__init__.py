"""The harness: one way to adopt a server -- whatever the route in -- and the leak
audit.

Every route (``serving()``, the pytest fixture, ``inject()``/``install()``,
``sockshock run --server``, scenarios, ``ServerMachine``) resolves a server through
one resolver (``_resolve``: :func:`resolve_server`, :func:`resolve_spec`; the
signatures it reads, ``_signatures``), is started and stopped by one runner
(``_runner``, with one bounded stop, ``_stop``) and handed back as one handle type
(``_handle``: :class:`ServerHandle`).

Modules, bottom-up: ``_types`` (the types of the public signatures), ``_stacks``
(thread stacks for reports), ``_failures`` (handler failures, forked children's
included), ``_instrument`` (what the harness adds to a server it runs),
``_runner`` (``Run``), ``_stop`` (one bounded stop), ``_signatures``, ``_tls``,
``_resolve``, ``_handle``, ``_serving`` (``serving()``), ``_install``
(``install()``, ``inject()``), ``_handlers`` (the demo handlers), ``_audit`` (the
leak audit; children killed, stray threads watched at exit), ``_children`` (the
servers running now: what forked children and an abrupt end need), ``_drive``
(``drive()``)."""

from sockshock._harness._audit import (
    LeakAudit,
    LeakReport,
    audit,
    forget_unix_path,
    register_unix_path,
    watch_stray_threads,
)
from sockshock._harness._drive import Transcript, drive
from sockshock._harness._failures import HandlerFailure, add_note, raise_outcome
from sockshock._harness._handle import DEFAULT_TOLERANCE, ServerHandle
from sockshock._harness._handlers import DatagramEcho, LineEcho, NaiveRecvEcho, NaiveSendEcho
from sockshock._harness._install import (
    InjectedServers,
    Installation,
    inject,
    install,
    modules_built_on,
)
from sockshock._harness._resolve import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    SERVING_PARAMETERS,
    ServerChoice,
    choose_handler,
    import_handler_class,
    import_object,
    is_loopback,
    resolve_handler_class,
    resolve_server,
    resolve_server_class,
    resolve_spec,
    split_server_attrs,
    transport_of,
)
from sockshock._harness._serving import serve_spec, serving, user_location
from sockshock._harness._signatures import default_handler, is_handler_class
from sockshock._harness._stop import MARGIN
from sockshock._harness._types import (
    AddressArg,
    ClockArg,
    ExpectedErrors,
    FaultsArg,
    HandlerClass,
    PlanArg,
    Server,
    ServerT,
    TLSArg,
)

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_TOLERANCE",
    "MARGIN",
    "SERVING_PARAMETERS",
    "AddressArg",
    "ClockArg",
    "DatagramEcho",
    "ExpectedErrors",
    "FaultsArg",
    "HandlerClass",
    "HandlerFailure",
    "InjectedServers",
    "Installation",
    "LeakAudit",
    "LeakReport",
    "LineEcho",
    "NaiveRecvEcho",
    "NaiveSendEcho",
    "PlanArg",
    "Server",
    "ServerChoice",
    "ServerHandle",
    "ServerT",
    "TLSArg",
    "Transcript",
    "add_note",
    "audit",
    "choose_handler",
    "default_handler",
    "drive",
    "forget_unix_path",
    "import_handler_class",
    "import_object",
    "inject",
    "install",
    "is_handler_class",
    "is_loopback",
    "modules_built_on",
    "raise_outcome",
    "register_unix_path",
    "resolve_handler_class",
    "resolve_server",
    "resolve_server_class",
    "resolve_spec",
    "serve_spec",
    "serving",
    "split_server_attrs",
    "transport_of",
    "user_location",
    "watch_stray_threads",
]

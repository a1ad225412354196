"""``serving()``: run a server for the length of a ``with`` block, and never hang.

Every argument is checked before anything starts (``_resolve``). The harness then
starts the server on a loopback port chosen by the kernel (or on a Unix path
inside a private temporary directory), serves it in a daemon thread, and on exit
lets the loop take what already reached the server, then stops everything within
one bound (``_stop``). Exceptions raised by request handlers -- which the standard
library prints to stderr and forgets -- are collected, from forked children too
(``_failures``), and re-raised. Whatever happens, nothing it made is left behind:
threads, descriptors, children, temporary directories, socket files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import sys
import warnings
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, overload

from sockshock._faults import FaultPlan
from sockshock._harness._audit import forget_unix_path, register_unix_path
from sockshock._harness._children import starting
from sockshock._harness._failures import Reporter, add_note, raise_outcome
from sockshock._harness._handle import ServerHandle, forget_handle, live_handle
from sockshock._harness._instrument import attach, instrument, track_threads
from sockshock._harness._resolve import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    ServeSpec,
    resolve_spec,
)
from sockshock._harness._runner import Run
from sockshock._harness._stop import Stuck, stop
from sockshock._harness._tls import ServerTLS
from sockshock._harness._types import (
    AddressArg,
    ClockArg,
    ExpectedErrors,
    FaultsArg,
    HandlerClass,
    Server,
    ServerT,
    TLSArg,
)
from sockshock._stdlib import init_loop_state, needs_loop_state
from sockshock._util import (
    FaultNeverFired,
    InvalidArgument,
    ShutdownTimeout,
    cannot_listen,
    exported_by,
    make_temporary_directory,
    remove_temporary_directory,
)

__all__ = ["serve_spec", "serving", "user_location"]

_AF_UNIX = getattr(socket, "AF_UNIX", object())
#: What binding an address the user chose can fail with: the message names it.
_BIND_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _forks(cls: type[Any]) -> bool:
    return hasattr(cls, "collect_children") and hasattr(os, "fork")


@overload
def serving(
    server_class: type[ServerT],
    handler_class: HandlerClass | str | None = None,
    *,
    address: AddressArg | None = None,
    server_kwargs: Mapping[str, object] | None = None,
    faults: FaultsArg | None = None,
    clock: ClockArg | None = None,
    seed: int | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    poll_interval: float | None = DEFAULT_POLL_INTERVAL,
    expect_errors: ExpectedErrors = (),
    tls: TLSArg | None = None,
    tls_strict: bool = False,
    **server_attrs: object,
) -> contextlib.AbstractContextManager[ServerHandle[ServerT]]: ...


@overload
def serving(
    server_class: str,
    handler_class: HandlerClass | str | None = None,
    *,
    address: AddressArg | None = None,
    server_kwargs: Mapping[str, object] | None = None,
    faults: FaultsArg | None = None,
    clock: ClockArg | None = None,
    seed: int | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    poll_interval: float | None = DEFAULT_POLL_INTERVAL,
    expect_errors: ExpectedErrors = (),
    tls: TLSArg | None = None,
    tls_strict: bool = False,
    **server_attrs: object,
) -> contextlib.AbstractContextManager[ServerHandle[Server]]: ...


@overload
def serving(
    server_class: ServerT,
    handler_class: None = None,
    *,
    address: None = None,
    server_kwargs: None = None,
    faults: FaultsArg | None = None,
    clock: ClockArg | None = None,
    seed: int | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    poll_interval: float | None = DEFAULT_POLL_INTERVAL,
    expect_errors: ExpectedErrors = (),
    tls: TLSArg | None = None,
    tls_strict: bool = False,
    **server_attrs: object,
) -> contextlib.AbstractContextManager[ServerHandle[ServerT]]: ...


@exported_by("sockshock")
def serving(
    server_class: type[Server] | Server | str,
    handler_class: HandlerClass | str | None = None,
    *,
    address: AddressArg | None = None,
    server_kwargs: Mapping[str, object] | None = None,
    faults: FaultsArg | None = None,
    clock: ClockArg | None = None,
    seed: int | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    poll_interval: float | None = DEFAULT_POLL_INTERVAL,
    expect_errors: ExpectedErrors = (),
    tls: TLSArg | None = None,
    tls_strict: bool = False,
    **server_attrs: object,
) -> contextlib.AbstractContextManager[ServerHandle[Any]]:
    """Run a server for the length of a ``with`` block.

    Args:
        server_class: a server class -- sockshock's, the standard library's, or one
            built on either (``http.server.ThreadingHTTPServer``, your own
            subclass) --, its name in ``sockshock.socketserver``
            (``"ThreadingTCPServer"``), ``"module:attr"``; or a ready-made server
            instance that library code built and bound (on a loopback port 0), which
            ``serving()`` adopts: it serves it, with faults on every connection
            accepted from then on, and stops and closes it.
        handler_class: the request handler class (not with an instance).
        address: where to listen; default: port 0 on 127.0.0.1 (``::1`` for IPv6
            servers) or a path in a private temporary directory for Unix servers.
            Loopback addresses and Unix paths only.
        server_kwargs: further keyword arguments of the server class's constructor
            (``{"logRequests": False, "allow_none": True}``).
        faults: a :class:`~sockshock.faults.FaultPlan`, a list of fault models
            (made into a plan with ``seed``), or a ready FaultLayer. The server's
            sockets then come from a :class:`~sockshock.FaultLayer` (a server that
            made its own socket, as the standard library's do, has it taken over).
            A model that cannot apply to the server's kind of socket is an error.
        clock: ``"real"`` (default) or ``"virtual"`` (delays advance virtual time
            instead of sleeping), or a Clock; only with ``faults``.
        seed: the seed of the plan made from a list of models (default: random;
            always readable as ``handle.plan.seed``).
        shutdown_timeout: seconds (at most 3600) the whole stop may take: the loop
            ending, ``server_close()``, the handler threads and forked children.
            Past it the harness forces connections closed and kills stuck children
            (0.25 s more) and raises :class:`~sockshock.ShutdownTimeout` saying
            what was stuck and what it abandoned.
        poll_interval: passed to ``serve_forever()`` (only paces
            ``service_actions()``; shutdown does not wait for it); ``None`` or a
            positive number of seconds.
        expect_errors: exception classes that handlers are expected to raise: they
            are kept in ``handle.errors`` but not re-raised.
        tls: ``True`` (a certificate for localhost/127.0.0.1/::1 from sockshock's
            per-process trustme CA; ``handle.client_context()`` trusts it) or your
            own server-side ``ssl.SSLContext``: every connection runs TLS, its
            handshake in the handler's thread (or child), faults beneath it
            (``layer="wire"``, the default) and above it (``layer="plaintext"``).
            A failed handshake (a client that rejects the certificate, or leaves
            before its ClientHello) is dropped, as the standard library's servers
            drop it: the handler does not run; it is kept in
            ``handle.failed_handshakes``, not in ``handle.errors``.
        tls_strict: with ``tls``: a failed handshake is a handler error too
            (re-raised when the block ends, unless ``expect_errors`` lists it).
        **server_attrs: attributes to set on the server before the first request:
            settings the class has (``request_queue_size=16``,
            ``daemon_threads=True``, ``max_workers=4``; in force during
            construction too), or state of your own that handlers read as
            ``self.server.<name>`` (``resolver=``, ``app=``, a database handle). A
            new name that is a near miss of a setting (``request_queue=``) or of
            one of ``serving()``'s own parameters (``fault=``, ``fautls=``: same
            first letter, close spelling; ``sead=3``: one letter off ``seed`` with
            an int) is an error, not a silently ignored argument; to give a server
            such an attribute all the same, declare it on a subclass.

    Yields:
        A :class:`ServerHandle`: ``.address``, ``.server``, ``.connect()``,
        ``.errors`` (handler failures so far; clear it to acknowledge them).

    Raises:
        InvalidArgument: for a bad argument, before anything starts.
        ShutdownTimeout: if the server would not stop within ``shutdown_timeout``.
        Exception: the first exception a request handler raised and did not expect
            (with the others in its notes), re-raised after the server has stopped.

    Example:
        >>> import sockshock
        >>> from sockshock.handlers import LineEcho
        >>> with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        ...     with srv.connect() as client:
        ...         client.sendall(b"hello\\n")
        ...         client.recv(100)
        b'hello\\n'
    """
    return _serving(
        server_class,
        handler_class,
        address=address,
        faults=faults,
        clock=clock,
        seed=seed,
        shutdown_timeout=shutdown_timeout,
        poll_interval=poll_interval,
        server_attrs=server_attrs,
        server_kwargs=server_kwargs,
        expect_errors=expect_errors,
        tls=tls,
        tls_strict=tls_strict,
    )


@contextlib.contextmanager
def _serving(*args: Any, **kwargs: Any) -> Iterator[ServerHandle[Any]]:
    """``serving()``'s block: its arguments are checked as it is entered."""
    with serve_spec(resolve_spec(*args, **kwargs)) as handle:
        yield handle


def _default_address(cls: type[Any], directory: list[str]) -> Any:
    if cls.address_family == _AF_UNIX:
        directory.append(make_temporary_directory("sockshock-"))
        return os.path.join(directory[0], "server.sock")
    return ("::1", 0) if cls.address_family == socket.AF_INET6 else ("127.0.0.1", 0)


def _build(spec: ServeSpec, server_type: type[Any], directory: list[str]) -> Any:
    """Construct the server (a class) or take it over (an instance)."""
    if spec.instance is not None:
        server = spec.instance
        server.__class__ = server_type  # same layout: the per-run subclass adds no slots
        return server
    address = (
        spec.address if spec.address is not None else _default_address(spec.server_class, directory)
    )
    try:
        return spec.constructor.call(server_type, address, spec.handler_class, spec.server_kwargs)
    except OSError as exc:
        if spec.address is None or exc.errno not in _BIND_ERRORS:
            raise
        raise cannot_listen(exc, address, source="address= of serving()") from None


def _prepare(server: Any, spec: ServeSpec) -> None:
    """After construction: instance state, sockshock's loop state, the fault layer
    for a server that did not make its socket through one."""
    for name, value in spec.instance_attrs.items():
        setattr(server, name, value)
    if needs_loop_state(server):
        init_loop_state(server)  # a standard-library server on sockshock's loop
    layer = spec.layer
    tls = spec.tls
    if isinstance(server.socket, ssl.SSLSocket) and (layer is not None or tls is not None):
        # A server that wrapped its listening socket itself (werkzeug's ssl_context):
        # its TLS moves to the handler's thread, over the fault layer.
        if tls is not None:
            raise InvalidArgument(
                f"tls={tls.context!r}: {type(server).__name__}'s socket is under TLS already"
            )
        listening = server.socket
        tls = ServerTLS(listening.context, layer, ours=False, strict=spec.tls_strict)
        server.socket = socket.socket(
            listening.family, listening.type, listening.proto, fileno=listening.detach()
        )
    if layer is not None:  # the layer takes over the socket the server made
        server.socket = layer.wrap(server.socket)
        server.socket_layer = layer  # so that handlers find the layer (and its clock)
    server._sockshock_tls = tls


@contextlib.contextmanager
def serve_spec(spec: ServeSpec) -> Iterator[ServerHandle[Any]]:
    """Run a checked :class:`ServeSpec` (``serving()`` and the pytest plugin)."""
    cls, layer = spec.server_class, spec.layer
    reporter: Reporter | None = None
    directory: list[str] = []
    server: Any = None
    starting(_forks(cls))  # signals, children, forks: nothing left behind (_children)
    try:
        reporter = Reporter(forks=_forks(cls))
        live: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        server = _build(spec, instrument(cls, spec.class_attrs), directory)
        _prepare(server, spec)
        if isinstance(server.server_address, str) and server.server_address:
            register_unix_path(server.server_address)
        run = Run(
            server,
            track_threads(server),
            reporter,
            live,
            loop_kwargs=spec.loop_kwargs,
            own_shutdown=spec.own_shutdown,
        )
        attach(server, reporter, live, run)
        if layer is not None:
            layer.on_abrupt_shutdown = run.request_stop
        handle: ServerHandle[Any] = ServerHandle(
            run, layer, directory[0] if directory else None, server._sockshock_tls, seed=spec.seed
        )
        live_handle(handle)
        run.start()
    except BaseException:
        if server is not None:
            with contextlib.suppress(Exception):
                server.server_close()
        _cleanup(spec, reporter, directory, server)
        raise

    body_error: BaseException | None = None
    stuck: Stuck | None = None
    try:
        yield handle
    except BaseException as exc:
        body_error = exc
        raise
    finally:
        try:
            handle._end_clients()  # a client left open must not keep a handler waiting
            stuck = stop(run, spec.shutdown_timeout)
        finally:
            handle.close_clients()
            forget_handle(handle)
            if layer is not None:
                layer.collect()
            reporter.collect()
            if handle._directory:
                directory.append(handle._directory)
            _cleanup(spec, reporter, directory, server)
        if layer is not None and body_error is None:
            _warn_silent_models(layer.plan, cls, spec.warn_at)
        _raise_outcome(body_error, stuck, run.loop_errors, reporter, cls, spec.expect_errors)


def _cleanup(
    spec: ServeSpec, reporter: Reporter | None, directories: list[str], server: Any
) -> None:
    layer = spec.layer
    if layer is not None:
        layer.on_abrupt_shutdown = None
        layer.close()
    if reporter is not None:
        reporter.close()
    for path in directories:
        remove_temporary_directory(path)
    address = getattr(server, "server_address", None)
    if isinstance(address, str) and address:
        forget_unix_path(address)
    if spec.instance is not None:
        spec.instance.__class__ = spec.server_class  # as it was given


_OWN_FILES = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
    os.path.abspath(contextlib.__file__),
)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning issued by our caller at the first
    frame outside sockshock and contextlib (the user's ``with`` statement)."""
    frame = sys._getframe(2)  # our caller's caller: level 2 for warnings.warn
    level = 2
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not (name.startswith(_OWN_FILES[0]) or name == _OWN_FILES[1]):
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return 2


def _which(plan: FaultPlan) -> str:
    """The plan, as a reader replays it: its seed, or (decisions from generators,
    as hypothesis draws them) its repr -- a seed would replay nothing."""
    return f"plan seed {plan.seed}" if plan.seeded else f"plan {plan!r}"


def _warn_silent_models(plan: FaultPlan, cls: type[Any], at: tuple[str, int] | None = None) -> None:
    """One warning per model whose scope took in no operation while the server ran:
    it could not have fired whatever the seed. (A model that was reached but whose
    probability never let it act is a fault that did not happen this time: no
    warning, so that the outcome never depends on the draw.) ``at``: the file and
    line the warning names (default: the user's ``with`` statement)."""
    if plan.unlogged:
        return  # the log is full: silence cannot be told from it
    fired = {event.model for event in plan.log}
    stacklevel = 0
    for i, model in enumerate(plan.models):
        if i not in plan.reached and model not in fired:
            warning = FaultNeverFired(
                f"{model!r} never fired while {cls.__name__} ran ({_which(plan)}): "
                "its scope took in no operation, so it could not have fired whatever the "
                + ("seed" if plan.seeded else "decisions")
            )
            if at is not None:
                warnings.warn_explicit(warning, FaultNeverFired, at[0], at[1])
                continue
            stacklevel = stacklevel or _user_stacklevel()
            warnings.warn(warning, stacklevel=stacklevel)


def user_location() -> tuple[str, int] | None:
    """The file and line of the first frame outside sockshock and contextlib: where
    user code called into sockshock (a test calling the fixture's ``serve()``)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not (name.startswith(_OWN_FILES[0]) or name == _OWN_FILES[1]):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _raise_outcome(
    body_error: BaseException | None,
    stuck: Stuck | None,
    loop_errors: list[BaseException],
    reporter: Reporter,
    cls: type[Any],
    expected: tuple[type[BaseException], ...],
) -> None:
    failures = [
        f.exception for f in reporter.errors if not isinstance(f.exception, expected)
    ] + loop_errors
    if body_error is not None:
        if stuck:
            add_note(body_error, f"also, {cls.__name__} did not stop: {stuck}")
        for failure in failures:
            add_note(body_error, f"also, a request handler raised {failure!r}")
        return  # the body's exception propagates
    raise_outcome(ShutdownTimeout(f"{cls.__name__} {stuck}") if stuck else None, failures)

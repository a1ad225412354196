"""``drive(handler, [client, client, ...], server=..., schedule=...)``: a server's own
serving code, its threads and several scripted clients, under the controlled
scheduler, in memory -- and :func:`explore`, many schedules until one fails.

The server is an instance of the given class (a per-run subclass that captures
handler errors), made on a :class:`~sockshock._sched.SchedLayer`: its listening
socket, its connections and its datagram socket are in-memory sockets whose
operations are switch points. A controlled thread named ``server`` runs what
``serve_forever()`` does -- wait for a connection or a datagram, then
``_handle_request_noblock()``, so ``process_request()`` starts the handler
thread (ThreadingMixIn), queues to a worker (ThreadPoolMixIn) or runs the handler
at once (the synchronous classes) -- until every client has finished and nothing
waits, then ``server_close()``. Each client is a controlled thread of its own.
Everything threading makes meanwhile is controlled (``_sched._sync``).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

from sockshock import socketserver as ours
from sockshock._clients import ClientScript, as_script, check_steps
from sockshock._faults import FaultPlan, check_fit, make_plan
from sockshock._harness._failures import add_note
from sockshock._harness._resolve import (
    resolve_handler_class,
    resolve_server_class,
    split_server_attrs,
    transport_of,
)
from sockshock._memory import MemoryEndpoint, MemoryLayer
from sockshock._sched import (
    REAL_LOCK,
    REAL_LOCK_TYPES,
    ControlledLock,
    ControlledRLock,
    RealClient,
    RealLayer,
    SchedClock,
    SchedLayer,
    Schedule,
    ScheduledClient,
    Scheduler,
    as_schedule,
    install,
    readable,
    uninstall,
)
from sockshock._stdlib import classes
from sockshock._util import (
    InvalidArgument,
    check_choice,
    check_number,
    check_seconds,
    check_seed,
    check_type,
)

__all__ = ["check_drive_options", "drive_scheduled"]

#: Real seconds a whole scheduled run may take before it is ended (a backstop:
#: uncontrolled blocking and spinning are caught much sooner).
RUN_LIMIT = 60.0
_UNIX_DIR = "/sockshock-memory"


def _addresses(family: int, count: int, transport: str) -> tuple[Any, list[Any]]:
    if family == getattr(socket, "AF_UNIX", None):
        if transport == "stream":
            return f"{_UNIX_DIR}/server.sock", ["" for _ in range(count)]
        return f"{_UNIX_DIR}/server.sock", [
            f"{_UNIX_DIR}/client-{i}.sock" for i in range(1, count + 1)
        ]
    if family == socket.AF_INET6:
        return ("::1", 8000, 0, 0), [("::1", 50000 + i, 0, 0) for i in range(1, count + 1)]
    return ("127.0.0.1", 8000), [("127.0.0.1", 50000 + i) for i in range(1, count + 1)]


def _real_address(family: int, layer: RealLayer) -> Any:
    """Where a scheduled run's server listens on real sockets: loopback, port 0, or a
    path in the run's own temporary directory."""
    if family == getattr(socket, "AF_UNIX", None):
        return layer.path("server.sock")
    if family == socket.AF_INET6:
        return ("::1", 0, 0, 0)
    return ("127.0.0.1", 0)


def _as_clients(clients: Any, transport: str) -> list[ClientScript]:
    """``drive()``'s second argument under a schedule: a list of clients, each in
    any form a single client takes (bytes, a list of byte strings or of steps, a
    ClientScript); a lone ClientScript or bytes is one client."""
    if isinstance(clients, (ClientScript, bytes, bytearray, memoryview)):
        clients = [clients]
    if not isinstance(clients, (list, tuple)) or not clients:
        raise InvalidArgument(
            f"expected a non-empty list of clients (each bytes, a list of byte strings or "
            f"of steps, or a ClientScript) but got clients={clients!r} "
            f"(type={type(clients).__name__}) (from drive(schedule=...))"
        )
    scripts = []
    for i, client in enumerate(clients):
        source = f"drive(clients[{i}])"
        script = as_script(client, transport, source=source)
        check_steps(script.steps, transport, source=source)
        scripts.append(script)
    return scripts


def _server_class(server: Any, transport: str) -> type[Any]:
    if server is None:
        server = "ThreadingTCPServer" if transport == "stream" else "ThreadingUDPServer"
    cls = resolve_server_class(server, source="drive(server=...)")
    if not issubclass(cls, ours.BaseServer):
        raise InvalidArgument(
            f"drive(server={server!r}): {cls.__name__} is not a sockshock.socketserver "
            "class; a scheduled run gives the server in-memory sockets through the "
            "socket_layer seam that only sockshock.socketserver's classes (and their "
            "subclasses) have; give ours, e.g. 'ThreadingTCPServer'"
        )
    forking = classes("ForkingMixIn")
    if forking and issubclass(cls, forking):
        raise InvalidArgument(
            f"drive(server={server!r}): {cls.__name__} forks a process per request, and a "
            "forked child cannot be scheduled from this process; give the threading "
            "variant, or test it with serving() (see docs/howto/interleavings.md)"
        )
    return cls


def _controlled(value: Any) -> Any:
    """An unlocked real lock in server_attrs becomes a controlled one for the run
    (made before the run, it would block where the scheduler cannot see)."""
    if isinstance(value, REAL_LOCK_TYPES[0]) and not value.locked():
        return ControlledLock()
    if isinstance(value, REAL_LOCK_TYPES[1]) and not (
        value._is_owned() if hasattr(value, "_is_owned") else False
    ):
        return ControlledRLock()
    return value


class _Run:
    """What the per-run server subclass reports, by client."""

    def __init__(self, count: int) -> None:
        self.errors: list[list[BaseException]] = [[] for _ in range(count)]
        self.loop_errors: list[BaseException] = []
        self.requests = [0] * count
        self.shutdown_requested = False
        self.woken = False
        self.client_of: Callable[[Any, Any], int | None] = lambda request, address: None


def _subclass(cls: type[Any], run: _Run, class_attrs: dict[str, Any]) -> type[Any]:
    own_handle_error = cls.handle_error is not ours.BaseServer.handle_error

    def handle_error(self: Any, request: Any, client_address: Any) -> None:
        index = run.client_of(request, client_address)
        error = sys.exc_info()[1]
        if error is not None:
            (run.errors[index] if index is not None else run.loop_errors).append(error)
        if own_handle_error:
            cls.handle_error(self, request, client_address)

    def finish_request(self: Any, request: Any, client_address: Any) -> None:
        index = run.client_of(request, client_address)
        if index is not None:
            run.requests[index] += 1
        try:
            cls.finish_request(self, request, client_address)
        finally:
            if hasattr(request, "handler_closed"):  # a stream connection
                request.handler_closed = request._closed
                request.handler_half_closed = request._write_shut

    def shutdown(self: Any) -> None:
        run.shutdown_requested = True

    def _wake(self: Any) -> None:
        run.woken = True

    namespace: dict[str, Any] = {
        "handle_error": handle_error,
        "finish_request": finish_request,
        "shutdown": shutdown,
        "_wake": _wake,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        **class_attrs,
    }
    return type(cls.__name__, (cls,), namespace)


def check_drive_options(
    *,
    transport: Any,
    uncontrolled: Any,
    uncontrolled_after: Any,
    sockets: Any,
    send_buffer: Any,
    max_output: Any,
    source: str = "drive()",
) -> None:
    """The options every ``drive()`` takes, checked whether or not a schedule runs
    (``uncontrolled=`` only acts under one, but a bad value is a mistake either way)."""
    check_choice("transport", transport, ("stream", "datagram"), source=source)
    check_choice("uncontrolled", uncontrolled, ("fail", "continue"), source=source)
    check_seconds("uncontrolled_after", uncontrolled_after, source=source)
    check_choice("sockets", sockets, ("auto", "memory", "real"), source=source)
    if send_buffer is not None:
        check_number("send_buffer", send_buffer, low=1, high=2**31 - 1, integer=True, source=source)
    if max_output is not None:
        check_number("max_output", max_output, low=1, high=2**40, integer=True, source=source)


def drive_scheduled(
    handler_class: Any,
    clients: Any,
    *,
    server: Any,
    schedule: Any,
    faults: Any,
    seed: int | None,
    server_attrs: dict[str, Any] | None,
    transport: str,
    uncontrolled: str,
    uncontrolled_after: float,
    sockets: str = "memory",
    send_buffer: int | None = None,
    max_output: int | None = None,
) -> list[dict[str, Any]]:
    """``drive()`` with ``server=``/``schedule=`` (see the module's docstring): each
    client's transcript, as the keyword arguments of a Transcript."""
    source = "drive()"
    if schedule is None:
        raise InvalidArgument(
            f"drive(server={server!r}) runs the server's own threads, which only the "
            "scheduler can run in memory: give schedule=SEED (an int) or a Schedule"
        )
    spec = as_schedule(schedule, source=source)
    asked = transport  # its options: checked by drive(), check_drive_options()
    if sockets == "real" and faults is not None:
        raise InvalidArgument(
            "drive(sockets='real', faults=...): under a schedule, faults are carried out on "
            "in-memory sockets only; leave sockets= out, or faults="
        )
    if (
        server is None
        and isinstance(handler_class, type)
        and issubclass(handler_class, classes("DatagramRequestHandler"))
    ):
        transport = "datagram"  # the handler says which kind of server it wants
    if server is not None:
        probe = resolve_server_class(server, source="drive(server=...)")
        transport = transport_of(probe)
        if asked != "stream" and asked != transport:
            raise InvalidArgument(
                f"drive(transport={asked!r}) but server={server!r} is a {transport} server; "
                "leave transport out (the server decides)"
            )
    cls = _server_class(server, transport)
    resolve_handler_class(handler_class, cls, source="drive(handler_class=...)")
    scripts = _as_clients(clients, transport)
    if server_attrs is None:
        server_attrs = {}
    check_type("server_attrs", server_attrs, dict, source=source)
    for name in server_attrs:
        check_type("a server_attrs key", name, str, source=source)
    class_attrs, instance_attrs = split_server_attrs(
        cls, server_attrs, adopting=False, source="drive(server_attrs=...)"
    )
    if seed is not None:
        check_seed(seed, source=source)
    if faults is None:
        if seed is not None:
            raise InvalidArgument("drive(): seed= only applies with faults=")
        plan = FaultPlan(seed=0)
    else:
        # One seed for both: a plan made from a list of models takes the
        # schedule's, unless seed= gives its own (a FaultPlan has its own).
        if seed is None and not isinstance(faults, FaultPlan):
            seed = spec.seed
        plan = make_plan(faults, seed=seed, source="drive(faults=...)")
        check_fit(
            plan.models,
            transport=transport,
            tls=False,
            accepts=False,
            target=f"a scheduled drive() of {cls.__name__} (in memory: no accept() to fail, no TLS)",
            where="drive(faults=...)",
            fix="test accept errors and TLS with serving()",
        )
    transcripts, failure = _run(
        server_attrs,
        handler_class,
        cls,
        scripts,
        spec,
        plan,
        class_attrs,
        instance_attrs,
        uncontrolled,
        uncontrolled_after,
        sockets == "real",
        send_buffer,
        max_output,
    )
    if failure is not None:
        raise failure
    hypothesis = sys.modules.get("hypothesis")
    if transcripts and hypothesis is not None and hypothesis.currently_in_test_context():
        hypothesis.note(transcripts[0]["schedule"])  # a failing example shows its run
    return transcripts


def _run(
    server_attrs: dict[str, Any],
    handler_class: Any,
    cls: type[Any],
    scripts: list[ClientScript],
    spec: Schedule,
    plan: FaultPlan,
    class_attrs: dict[str, Any],
    instance_attrs: dict[str, Any],
    uncontrolled: str,
    bound: float,
    real: bool,
    send_buffer: int | None = None,
    max_output: int | None = None,
) -> tuple[list[dict[str, Any]], BaseException | None]:
    strategy = spec.strategy_for_run()
    sched = Scheduler(strategy, uncontrolled=uncontrolled, bound=bound)
    clock = SchedClock(sched)
    layer = MemoryLayer(plan, clock)
    layer._lock = REAL_LOCK()  # the fault layer's own lock is no switch point, whatever runs
    network: dict[Any, MemoryEndpoint] = {}
    real_layer = RealLayer(sched) if real else None
    sched_layer: Any = (
        real_layer
        if real_layer is not None
        else SchedLayer(layer, sched, network, send_buffer, max_output)
    )
    transport = transport_of(cls)
    stream = transport == "stream"
    server_address, client_addresses = _addresses(cls.address_family, len(scripts), transport)
    if real_layer is not None:
        server_address = _real_address(cls.address_family, real_layer)
    run = _Run(len(scripts))
    install()
    try:
        server = _subclass(cls, run, class_attrs)(
            server_address, handler_class, socket_layer=sched_layer
        )
        given: dict[str, Any] = {}
        for name, value in instance_attrs.items():
            given[name] = _controlled(value)
            setattr(server, name, given[name])
        loop_task = sched.add("server", numbered=False)
        clients: list[Any] = []
        sock_type = socket.SOCK_STREAM if stream else socket.SOCK_DGRAM
        listener = server.socket
        for i, (script, address) in enumerate(zip(scripts, client_addresses, strict=False)):
            if real_layer is not None:
                clients.append(
                    RealClient(real_layer, i, script, cls.address_family, sock_type, listener)
                )
                continue
            endpoint = MemoryEndpoint(sock_type, clock, address, family=cls.address_family)
            target: Any = listener
            if not stream:
                endpoint.join(network, server.server_address)
                target = server.server_address
            clients.append(ScheduledClient(sched, i, script, endpoint, address, target))
        if real_layer is not None:
            client_addresses = [client.address for client in clients]

        def all_done() -> bool:
            return all(client.finished for client in clients)

        if stream:

            def client_of(request: Any, address: Any) -> int | None:
                return getattr(request, "client_index", None)

            def pending() -> bool:
                return readable(listener) if real else bool(listener.backlog)

        else:
            by_address = {address: i for i, address in enumerate(client_addresses)}
            listener.names = {address: f"client {i + 1}" for address, i in by_address.items()}
            listener.peer_done = all_done

            def client_of(request: Any, address: Any) -> int | None:
                return by_address.get(address)

            def pending() -> bool:
                return readable(listener) if real else bool(listener._queue)

        run.client_of = client_of

        def stopping() -> bool:
            return run.shutdown_requested or layer.shutdown_triggered.is_set()

        def serve() -> None:
            try:
                while not stopping():
                    if server._accept_pause() is None:  # a pool's queue is full
                        sched.block(
                            loop_task, lambda: run.woken or stopping(), None, "wait for room"
                        )
                        run.woken = False
                        continue
                    sched.block(
                        loop_task, lambda: pending() or all_done() or stopping(), None, "select"
                    )
                    if pending() and not stopping():
                        server._handle_request_noblock()
                    elif all_done():
                        break
            except Exception as exc:
                run.loop_errors.append(exc)
            try:
                server.server_close()
            except Exception as exc:
                run.loop_errors.append(exc)

        first: list[tuple[Any, Callable[[], None]]] = [(loop_task, serve)]
        for client in clients:
            task = sched.add("client")
            first.append((task, _bound(client.run, task)))
        sched.start(first)
        sched.watch(RUN_LIMIT)
    finally:
        uninstall()
        if real_layer is not None:
            real_layer.close()
    # The shared state's final values, back where the caller gave them (a
    # controlled lock put in the place of the caller's stays the caller's).
    for name, value in given.items():
        final = getattr(server, name, value)
        if final is not value:
            server_attrs[name] = final
    recorded = spec.record(strategy, sched.events, sched.steps, sched.uncontrolled_reports)
    if sched.failure is not None:
        failure = sched.failure
        add_note(failure, str(recorded))
        return [], failure
    transcripts: list[dict[str, Any]] = []
    for i, client in enumerate(clients):
        if stream:
            conn = client.connection
            output = bytes(conn.written) if conn is not None else b""
            replies: list[bytes] = []
            closed = conn.handler_closed if conn is not None else False
            half_closed = conn.handler_half_closed if conn is not None else False
        else:
            replies = [data for data, to in listener.sent_to if to == client.address]
            output = b"".join(replies)
            closed = half_closed = False
        errors = run.errors[i] + run.loop_errors
        transcripts.append(
            {
                "transport": transport,
                "output": output,
                "replies": replies,
                "received": client.received,
                "steps": client.results,
                "closed": closed,
                "half_closed": half_closed,
                "error": errors[0] if errors else None,
                "errors": errors,
                "requests": run.requests[i],
                "log": layer.plan.log,
                "plan": layer.plan,
                "elapsed": sched.now,
                "shutdown_requested": run.shutdown_requested or layer.shutdown_triggered.is_set(),
                "schedule": recorded,
                "sockets": "real" if real else "memory",
            }
        )
    return transcripts, None


def _bound(body: Callable[[Any], None], task: Any) -> Callable[[], None]:
    return lambda: body(task)

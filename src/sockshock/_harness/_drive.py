"""``drive()``: run a request handler against a scripted client, in memory.

No descriptor, no serving loop, no thread: the handler runs in the caller's
thread on a :class:`~sockshock._memory._socket.MemorySocket`, which carries a
fault plan out through the fault layer's own code, in virtual time. The handler is
called as ``TCPServer`` (``transport="stream"``) or ``UDPServer`` (``"datagram"``)
would call it, on a stand-in server with the given attributes.

Stream: the handler drives. The client acts first, right after connecting, as
far as it can without waiting (up to its first read or pause: a reset right
after connect happens before ``setup()``); then it is lazy: it acts only while
the handler waits for it -- its steps run, in virtual time, until something
arrives for the handler (or, for a write, the client reads), or the handler's
timeout passes -- so each :class:`Send` reaches the handler as reads of its own
(fewer bytes under ``PartialReads``). When the handler returns (or raises), the
connection is shut down and closed as ``TCPServer`` does, and the rest of the
script runs. The handler's writes fill bounded buffers (``send_buffer``), as the
kernel's.

A handler that uses its descriptor (``fileno()``: ``select``, ``fcntl``) runs on
a real connected socket pair instead (``sockets="real"``, or found out under the
default ``"auto"``: see :mod:`~sockshock._harness._drive_real`).

Datagram: the client drives. Datagrams it sends back to back form a burst; the
server takes the waiting ones -- one handler each -- whenever the client waits
(a read, a pause, the end of the script), so reordering happens within bursts,
as on a real network.
"""

from __future__ import annotations

import contextlib
import random
import socket
import sys
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, overload

from sockshock import socketserver as ours
from sockshock._clients import ClientScript, Send, StepResult, abbreviate, as_script, check_steps
from sockshock._faults import FaultEvent, FaultPlan, check_fit, make_plan
from sockshock._harness._drive_real import RealPair
from sockshock._harness._resolve import resolve_handler_class, split_server_attrs
from sockshock._harness._sched_drive import check_drive_options, drive_scheduled
from sockshock._harness._types import ClientArg, HandlerClass, PlanArg, Server
from sockshock._memory import (
    MAX_OUTPUT,
    SEND_BUFFER,
    MemoryClient,
    MemoryEndpoint,
    MemoryLayer,
    MemorySocket,
    WantsDescriptor,
    never,
)
from sockshock._sched import DEFAULT_DEPTH, Exploration, Schedule, explore
from sockshock._util import InvalidArgument, VirtualClock, check_seed, exported_by
from sockshock._wire import DONTWAIT, FaultLayer

__all__ = ["DriveServer", "Transcript", "drive"]

SERVER_ADDRESS = ("127.0.0.1", 8000)
CLIENT_ADDRESS = ("127.0.0.1", 50000)
_NO_FAULTS = FaultPlan(seed=0)
#: Handler classes already checked, with the kinds they fit.
_CHECKED: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()
#: Handler classes found to ask for their descriptor (``sockets="auto"``).
_NEEDS_DESCRIPTOR: weakref.WeakSet[Any] = weakref.WeakSet()


class DriveServer:
    """The stand-in for the server a handler finds as ``self.server``: the
    attributes ``TCPServer``/``UDPServer`` have, the ones given to ``drive()``, and
    ``shutdown()``, which only records that it was asked for."""

    def __init__(
        self,
        transport: str,
        handler_class: Any,
        sock: Any,
        layer: FaultLayer,
        attrs: dict[str, Any],
    ) -> None:
        base = ours.TCPServer if transport == "stream" else ours.UDPServer
        self.server_address = SERVER_ADDRESS
        self.RequestHandlerClass = handler_class
        self.socket = sock
        self.socket_layer = layer
        self.address_family = socket.AF_INET
        self.socket_type = base.socket_type
        self.timeout = None
        self.max_packet_size = getattr(base, "max_packet_size", 8192)
        self.shutdown_requested = False
        for name, value in attrs.items():
            setattr(self, name, value)

    def shutdown(self) -> None:
        self.shutdown_requested = True

    def server_close(self) -> None:
        """Nothing to close: the harness owns the socket."""

    def __repr__(self) -> str:
        return f"<DriveServer at {self.server_address!r}>"


@exported_by("sockshock")
@dataclass(repr=False)
class Transcript:
    """What happened when ``drive()`` ran a handler.

    Attributes:
        transport: ``"stream"`` or ``"datagram"``.
        output: stream: every byte the handler's sends put on the wire (a reset
            stops it); datagram: the handler's replies, joined.
        replies: datagram: each reply the handler sent, in order (before faults on
            the way out).
        received: what the client's reads got, joined.
        steps: each client step and what it met.
        closed: the handler closed its socket itself.
        half_closed: the handler shut its writing side down itself.
        error: the first exception a handler raised (``None``: none did).
        errors: every exception handlers raised (datagram: one handler per
            datagram).
        requests: how many times a handler ran.
        log: the fault decisions of this run.
        plan: the fault plan (``plan.describe()`` prints it with a replay).
        elapsed: virtual seconds the exchange took.
        shutdown_requested: the handler called ``self.server.shutdown()``, or an
            ``AbruptShutdown`` fired.
        input: every byte the handler's reads took before end of file (datagram:
            the datagrams its handlers got, joined).
        request: what the client's sends put on the wire (the ``Send`` steps
            that met ``"ok"``).
        sockets: ``"memory"``, or ``"real"`` (a real connected socket pair).
        schedule: a scheduled run's recorded schedule (``print()`` it to read the
            interleaving; pass it back as ``schedule=`` to replay the run; ``.spec()``
            is its one-line string); ``None`` without ``schedule=``.
    """

    transport: str
    output: bytes
    replies: list[bytes]
    received: bytes
    steps: list[StepResult]
    closed: bool
    half_closed: bool
    error: BaseException | None
    errors: list[BaseException]
    requests: int
    log: list[FaultEvent]
    plan: FaultPlan = field(repr=False)
    elapsed: float = 0.0
    shutdown_requested: bool = False
    input: bytes = b""
    request: bytes = b""
    sockets: str = "memory"

    @property
    def request_complete(self) -> bool:
        """Whether the handler's reads took the client's whole request (stream):
        nothing cut by a fault, a reset, or the handler stopping early."""
        return self.input == self.request

    schedule: Schedule | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        error = "" if self.error is None else f", error={abbreviate(repr(self.error), 300)}"
        return (
            f"<Transcript {self.transport}: output={abbreviate(self.output)}, "
            f"received={abbreviate(self.received)}{error}>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis (and IPython) print a transcript: in full."""
        printer.text(str(self))

    def __str__(self) -> str:
        where = "" if self.sockets == "memory" else ", real sockets"
        lines = [
            f"drive() transcript ({self.transport}, {self.elapsed:g} virtual s, "
            f"{self.requests} handler run(s){where}):",
        ]
        if self.transport == "stream":
            complete = "the whole request" if self.request_complete else "part of the request"
            lines.append(f"  handler read {abbreviate(self.input)} ({complete})")
        lines += [
            f"  handler wrote {abbreviate(self.output)}"
            + (f" in {len(self.replies)} replies" if self.transport == "datagram" else ""),
            f"  client received {abbreviate(self.received)}",
        ]
        lines += [
            f"  client {r.step!r} -> {r.outcome}" + (f" {abbreviate(r.data)}" if r.data else "")
            for r in self.steps
        ]
        if self.closed or self.half_closed:
            lines.append(f"  handler {'closed' if self.closed else 'half-closed'} its socket")
        if self.error is not None:
            lines.append(f"  handler raised {abbreviate(repr(self.error))}")
        if self.plan.models:
            lines.append("  " + self.plan.describe().replace("\n", "\n  "))
        return "\n".join(lines)


class DriveFunction(Protocol):
    """The type of :func:`drive`: its two call forms and ``drive.explore``."""

    @overload
    def __call__(
        self,
        handler_class: HandlerClass | str,
        client: ClientArg,
        *,
        faults: PlanArg | None = None,
        seed: int | None = None,
        server_attrs: dict[str, Any] | None = None,
        transport: Literal["stream", "datagram"] = "stream",
        server: None = None,
        schedule: None = None,
        uncontrolled: Literal["fail", "continue"] = "fail",
        uncontrolled_after: float = 1.0,
        sockets: Literal["auto", "memory", "real"] = "auto",
        send_buffer: int = SEND_BUFFER,
        max_output: int = MAX_OUTPUT,
    ) -> Transcript: ...

    @overload
    def __call__(
        self,
        handler_class: HandlerClass | str,
        client: Sequence[ClientArg],
        *,
        faults: PlanArg | None = None,
        seed: int | None = None,
        server_attrs: dict[str, Any] | None = None,
        transport: Literal["stream", "datagram"] = "stream",
        server: type[Server] | str | None = None,
        schedule: int | str | Schedule | random.Random,
        uncontrolled: Literal["fail", "continue"] = "fail",
        uncontrolled_after: float = 1.0,
        sockets: Literal["auto", "memory", "real"] = "auto",
        send_buffer: int = SEND_BUFFER,
        max_output: int = MAX_OUTPUT,
    ) -> list[Transcript]: ...

    def explore(
        self,
        check: Callable[[Schedule], object],
        *,
        runs: int = 100,
        strategy: str = "pct",
        seed: int = 0,
        depth: int = DEFAULT_DEPTH,
        length: int | None = None,
        preemptions: int = 2,
    ) -> Exploration:
        """Many schedules of a check that drives: ``sockshock._sched.explore``."""
        ...


@exported_by("sockshock", name="drive")  # typed below, as ``drive``
def _drive(
    handler_class: HandlerClass | str,
    client: ClientArg | Sequence[ClientArg],
    *,
    faults: PlanArg | None = None,
    seed: int | None = None,
    server_attrs: dict[str, Any] | None = None,
    transport: Literal["stream", "datagram"] = "stream",
    server: type[Server] | str | None = None,
    schedule: int | str | Schedule | random.Random | None = None,
    uncontrolled: Literal["fail", "continue"] = "fail",
    uncontrolled_after: float = 1.0,
    sockets: Literal["auto", "memory", "real"] = "auto",
    send_buffer: int = SEND_BUFFER,
    max_output: int = MAX_OUTPUT,
) -> Transcript | list[Transcript]:
    """Run ``handler_class`` against a scripted client, in memory, and say what happened.

    Args:
        handler_class: a request handler class (``StreamRequestHandler``,
            ``DatagramRequestHandler``, ``BaseRequestHandler``, ``http.server``'s...).
        client: what the client does: a :class:`~sockshock.strategies.ClientScript`,
            a list of steps, bytes (stream: sent, then a half-close and a read to end
            of file; datagram: sent, then one read) or a list of byte strings (each
            sent on its own: a read of its own each, or a datagram each).
        faults: a FaultPlan or a list of fault models (made into a plan with
            ``seed``), carried out by the fault layer's own code, in virtual time.
        seed: the seed of a plan made from a list of models (default: random).
        server_attrs: attributes of the stand-in ``self.server`` (state the handler
            reads, or settings such as ``max_packet_size``).
        transport: ``"stream"`` (as ``TCPServer`` runs a handler) or ``"datagram"`` (as
            ``UDPServer`` does, once per datagram).
        server: with ``schedule=``: the server class (or its name in
            ``sockshock.socketserver``) whose own serving code and threads run the
            handler (default: ``ThreadingTCPServer``, ``ThreadingUDPServer``).
        schedule: run the server's threads and several clients under the
            controlled scheduler (see docs/howto/interleavings.md): a seed (PCT), a
            transcript's recorded ``.schedule`` (replays its run exactly), the
            string a report prints (``"replay:0102:seed=7"``, ``"pct:7"``,
            ``"random:7"``), or a ``random.Random`` whose draws make the decisions
            (hypothesis' ``randoms()``: a failure shrinks to fewer preemptions).
            ``drive.explore(check, runs=...)`` runs a check under many.
            ``client`` is then a list of clients, each in any form above.
        uncontrolled: with ``schedule=``: what to do when a thread reaches no switch
            point for ``uncontrolled_after`` real seconds (it blocks where the
            scheduler cannot see): ``"fail"`` (raise HandlerHangs with its stack)
            or ``"continue"`` (the run goes on without control over it; the
            schedule then says it is not exact).
        uncontrolled_after: that bound, in real seconds.
        sockets: ``"memory"``; ``"real"`` (stream: a real connected socket pair,
            for a handler that uses its descriptor -- ``select``, ``fcntl``); or
            ``"auto"`` (default): in memory, unless the handler asks for its
            descriptor before any read or write -- it then runs again on a real
            pair, as do later runs of its class. With ``schedule=``: ``"memory"``
            (``"auto"`` too: in-memory sockets; faults apply) or ``"real"`` (real
            loopback or Unix sockets, non-blocking, every wait the scheduler's; no
            faults).
        send_buffer: how many bytes the handler's writes may have in flight, unread
            by the client, before a write waits (a short count with a timeout,
            ``EAGAIN`` when non-blocking); default Linux's default buffers.
        max_output: how many bytes the handler may write in all before it is taken
            for one that never stops (``HandlerHangs``).

    Returns:
        A :class:`Transcript`. Exceptions the handler raises are in it, not raised.
        Inside a hypothesis test it is also noted, so that a failing example shows it.
        With ``schedule=``: a list of them, one per client, in order, each with the
        run's recorded ``.schedule``.

    Raises:
        InvalidArgument: for a bad argument.
        HandlerHangs: with ``schedule=``: a thread blocked where the scheduler cannot
            see (``uncontrolled="fail"``), or the run spun without end.
    """
    check_drive_options(
        transport=transport,
        uncontrolled=uncontrolled,
        uncontrolled_after=uncontrolled_after,
        sockets=sockets,
        send_buffer=send_buffer,
        max_output=max_output,
    )
    if schedule is not None or server is not None:
        results = drive_scheduled(
            handler_class,
            client,
            server=server,
            schedule=schedule,
            faults=faults,
            seed=seed,
            server_attrs=server_attrs,
            transport=transport,
            uncontrolled=uncontrolled,
            uncontrolled_after=uncontrolled_after,
            sockets=sockets,
            send_buffer=send_buffer,
            max_output=max_output,
        )
        transcripts = [Transcript(**fields) for fields in results]
        for transcript in transcripts:
            _note(transcript)
        return transcripts
    kind = transport
    if kind == "datagram" and sockets == "real":
        raise InvalidArgument(
            "drive(transport='datagram', sockets='real'): real socket pairs are for stream "
            "handlers; a datagram handler runs in memory (sockets='memory' or 'auto')"
        )
    base = ours.TCPServer if kind == "stream" else ours.UDPServer
    try:
        checked = _CHECKED.get(handler_class, frozenset())
    except TypeError:  # not weakly referable: checked every time
        checked = frozenset()
    if kind not in checked:
        resolve_handler_class(handler_class, base, source="drive(handler_class=...)")
        with contextlib.suppress(TypeError):
            _CHECKED[handler_class] = checked | {kind}
    script = as_script(client, kind, source="drive(client=...)")
    check_steps(script.steps, kind, source="drive(client=...)")
    if isinstance(faults, FaultLayer):
        raise InvalidArgument(
            "drive(faults=...) takes a FaultPlan or a list of fault models, not a "
            "FaultLayer: drive() makes its own, in virtual time"
        )
    if server_attrs is None:
        server_attrs = {}
    if not isinstance(server_attrs, dict):
        raise InvalidArgument(
            f"expected a dict but got server_attrs={server_attrs!r} "
            f"(type={type(server_attrs).__name__}) (from drive())"
        )
    for name in server_attrs:
        if not isinstance(name, str):
            raise InvalidArgument(
                f"expected attribute names (str) as the keys of server_attrs but "
                f"got {name!r} (type={type(name).__name__}) (from drive())"
            )
    if server_attrs:
        split_server_attrs(base, server_attrs, adopting=True, source="drive(server_attrs=...)")
    if faults is None:
        if seed is not None:
            raise InvalidArgument(
                f"seed={seed!r} (from drive()): seed= only applies with faults=; pass "
                "faults=[...] too, or leave seed= out"
            )
        plan = _NO_FAULTS  # never asked: it stays empty
    else:
        if seed is not None:
            check_seed(seed, source="drive()")
        plan = make_plan(faults, seed=seed, source="drive(faults=...)")
        check_fit(
            plan.models,
            transport=kind,
            tls=False,
            accepts=False,
            target=f"drive() of a {base.__name__} handler (a connection already accepted, no TLS)",
            where="drive(faults=...)",
            fix="test accept errors and TLS with serving()",
        )
    if plan is not _NO_FAULTS:
        plan._claim("drive()")  # a second drive() of it would replay nothing
    if kind == "datagram":
        transcript = _run_datagram(
            handler_class, script, MemoryLayer(plan, VirtualClock()), server_attrs
        )
    else:
        real = sockets == "real" or (sockets == "auto" and handler_class in _NEEDS_DESCRIPTOR)
        if not real:
            layer = MemoryLayer(plan, VirtualClock())
            bounds = (send_buffer, max_output)
            try:
                transcript = _run_stream(
                    handler_class, script, layer, server_attrs, bounds, sockets == "auto"
                )
            except WantsDescriptor:
                real = True
            if real:  # it asked before any read or write: nothing happened yet
                with contextlib.suppress(TypeError):
                    _NEEDS_DESCRIPTOR.add(handler_class)
        if real:
            layer = MemoryLayer(plan, VirtualClock())
            transcript = _run_real(handler_class, script, layer, server_attrs)
    _note(transcript)
    return transcript


#: ``sockshock.drive.explore(check, runs=100, strategy="pct", seed=0, depth=3)``: many
#: schedules of a check that drives, stopping at the first that fails (as
#: ``unittest.mock.patch.object`` hangs off ``patch``: no public name of its own).
_drive.explore = explore  # type: ignore[attr-defined]
#: One object at run time (the function), typed by :class:`DriveFunction`: its
#: two call forms (one client: a Transcript; a list and ``schedule=``: a list) and
#: ``explore``, so that ``drive.explore(...)`` type-checks in users' code.
drive = cast(DriveFunction, _drive)


def _note(transcript: Transcript) -> None:
    """Inside a hypothesis test, note the transcript: a failing example shows it."""
    hypothesis = sys.modules.get("hypothesis")
    if hypothesis is not None and hypothesis.currently_in_test_context():
        hypothesis.note(transcript)  # rendered (_repr_pretty_) only if it is reported


def _transcript(
    kind: str,
    output: bytes,
    replies: list[bytes],
    taken: bytes,
    results: list[StepResult],
    server: DriveServer,
    layer: FaultLayer,
    errors: list[BaseException],
    requests: int,
    closed: bool,
    half_closed: bool,
    sockets: str = "memory",
) -> Transcript:
    return Transcript(
        kind,
        output,
        replies,
        b"".join(r.data for r in results),
        results,
        closed,
        half_closed,
        errors[0] if errors else None,
        errors,
        requests,
        layer.plan.log,
        layer.plan,
        layer.clock.now(),
        server.shutdown_requested or layer.shutdown_triggered.is_set(),
        taken,
        b"".join(r.step.data for r in results if isinstance(r.step, Send) and r.outcome == "ok"),
        sockets,
    )


def _run_stream(
    handler_class: Any,
    script: ClientScript,
    layer: FaultLayer,
    attrs: dict[str, Any],
    bounds: tuple[int, int],
    auto: bool,
) -> Transcript:
    clock = layer.clock
    sock = MemorySocket(
        layer, socket.SOCK_STREAM, SERVER_ADDRESS, layer.new_connection(CLIENT_ADDRESS)
    )
    sock.send_buffer, sock.max_output = bounds
    sock.auto_descriptor = auto
    peer = MemoryEndpoint(socket.SOCK_STREAM, clock, CLIENT_ADDRESS)
    sock.connect_pair(peer)
    client = MemoryClient(script, peer, clock)
    client.act_first()  # right after connect: before the handler starts
    sock.waiter = client.advance
    server = DriveServer("stream", handler_class, sock, layer, attrs)
    errors: list[BaseException] = []
    try:
        handler_class(sock, CLIENT_ADDRESS, server)
    except Exception as exc:  # what the server's handle_error() would print
        errors.append(exc)
    if sock.wanted_descriptor:  # asked in time, and went on (a bare ``except:``)
        raise WantsDescriptor
    closed, half_closed = sock._closed, sock._write_shut
    sock.waiter = None
    with contextlib.suppress(OSError):  # TCPServer.shutdown_request()
        sock.shutdown(socket.SHUT_WR)
    sock.close()
    client.advance(None, never)  # the rest of the script
    return _transcript(
        "stream",
        bytes(sock.written),
        [],
        bytes(sock.taken or b""),
        client.results,
        server,
        layer,
        errors,
        1,
        closed,
        half_closed,
    )


def _run_real(
    handler_class: Any, script: ClientScript, layer: FaultLayer, attrs: dict[str, Any]
) -> Transcript:
    pair = RealPair(script, layer)
    sock = pair.sock
    server = DriveServer("stream", handler_class, sock, layer, attrs)
    errors: list[BaseException] = []
    pair.start()
    try:
        try:
            handler_class(sock, pair.address, server)
        except Exception as exc:
            errors.append(exc)
        closed, half_closed = sock.closed_by_handler, sock.half_closed_by_handler
    finally:
        pair.finish()
    if pair.hang is not None:
        errors.append(pair.hang)
    return _transcript(
        "stream",
        bytes(sock.written),
        [],
        bytes(sock.taken),
        pair.run.results,
        server,
        layer,
        errors,
        1,
        closed,
        half_closed,
        "real",
    )


def _run_datagram(
    handler_class: Any, script: ClientScript, layer: FaultLayer, attrs: dict[str, Any]
) -> Transcript:
    clock = layer.clock
    network: dict[Any, MemoryEndpoint] = {}
    sock = MemorySocket(layer, socket.SOCK_DGRAM, SERVER_ADDRESS)
    sock.join(network)
    peer = MemoryEndpoint(socket.SOCK_DGRAM, clock, CLIENT_ADDRESS)
    peer.join(network, SERVER_ADDRESS)
    server = DriveServer("datagram", handler_class, sock, layer, attrs)
    errors: list[BaseException] = []
    requests = 0
    taken: list[bytes] = []

    def serve() -> None:  # what UDPServer's loop does with the waiting datagrams
        nonlocal requests
        while sock._queue:
            try:
                request = sock.recvfrom(server.max_packet_size, DONTWAIT)
            except BlockingIOError:
                continue  # lost on the way in
            requests += 1
            taken.append(request[0])
            try:
                handler_class((request[0], sock), request[1], server)
            except Exception as exc:
                errors.append(exc)

    client = MemoryClient(script, peer, clock, serve=serve)
    client.advance(None, never)
    serve()
    closed = sock._closed
    sock.close()
    layer.forget_peers()  # the plan keeps nothing of this run but its log
    replies = sock.sent_datagrams
    return _transcript(
        "datagram",
        b"".join(replies),
        replies,
        b"".join(taken),
        client.results,
        server,
        layer,
        errors,
        requests,
        closed,
        False,
    )

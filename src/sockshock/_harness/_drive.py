"""``drive()``: run a request handler against a scripted client, in memory.

No descriptor, no serving loop, no thread: the handler runs in the caller's
thread on a :class:`~sockshock._memory._socket.MemorySocket`, which carries a
fault plan out through the fault layer's own code, in virtual time. The handler is
called as ``TCPServer`` (``kind="stream"``) or ``UDPServer`` (``"datagram"``)
would call it, on a stand-in server with the given attributes.

Stream: the handler drives. The client is lazy: it acts only while the handler
waits for it -- its steps run, in virtual time, until something arrives for the
handler, or the handler's timeout passes -- so each :class:`Send` reaches the
handler as reads of its own (fewer bytes under ``PartialReads``). When the handler
returns (or raises), the connection is shut down and closed as ``TCPServer``
does, and the rest of the script runs.

Datagram: the client drives. Datagrams it sends back to back form a burst; the
server takes the waiting ones -- one handler each -- whenever the client waits
(a read, a pause, the end of the script), so reordering happens within bursts,
as on a real network.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any

from sockshock import socketserver as ours
from sockshock._clients import ClientScript, StepResult, as_script, check_steps
from sockshock._faults import FaultEvent, FaultPlan, check_fit, make_plan
from sockshock._harness._resolve import resolve_handler_class, split_server_attrs
from sockshock._memory import MemoryClient, MemoryEndpoint, MemoryLayer, MemorySocket, never
from sockshock._util import InvalidArgument, VirtualClock, check_choice, check_seed
from sockshock._wire import DONTWAIT, FaultLayer

__all__ = ["DriveServer", "Transcript", "drive"]

SERVER_ADDRESS = ("127.0.0.1", 8000)
CLIENT_ADDRESS = ("127.0.0.1", 50000)
_NO_FAULTS = FaultPlan(seed=0)
#: Handler classes already checked, with the kinds they fit.
_CHECKED: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


class DriveServer:
    """The stand-in for the server a handler finds as ``self.server``: the
    attributes ``TCPServer``/``UDPServer`` have, the ones given to ``drive()``, and
    ``shutdown()``, which only records that it was asked for."""

    def __init__(
        self,
        transport: str,
        handler_class: Any,
        sock: MemorySocket,
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


@dataclass(repr=False)
class Transcript:
    """What happened when ``drive()`` ran a handler.

    Attributes:
        kind: ``"stream"`` or ``"datagram"``.
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
    """

    kind: str
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

    def __repr__(self) -> str:
        error = "" if self.error is None else f", error={self.error!r}"
        return (
            f"<Transcript {self.kind}: output={self.output!r}, received={self.received!r}{error}>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis (and IPython) print a transcript: in full."""
        printer.text(str(self))

    def __str__(self) -> str:
        lines = [
            f"drive() transcript ({self.kind}, {self.elapsed:g} virtual s, "
            f"{self.requests} handler run(s)):",
            f"  handler wrote {self.output!r}"
            + (f" in {len(self.replies)} replies" if self.kind == "datagram" else ""),
            f"  client received {self.received!r}",
        ]
        lines += [
            f"  client {r.step!r} -> {r.outcome}" + (f" {r.data!r}" if r.data else "")
            for r in self.steps
        ]
        if self.closed or self.half_closed:
            lines.append(f"  handler {'closed' if self.closed else 'half-closed'} its socket")
        if self.error is not None:
            lines.append(f"  handler raised {self.error!r}")
        if self.plan.models:
            lines.append("  " + self.plan.describe().replace("\n", "\n  "))
        return "\n".join(lines)


def drive(
    handler_class: Any,
    client: Any,
    *,
    faults: Any = None,
    seed: int | None = None,
    server_attrs: dict[str, Any] | None = None,
    kind: str = "stream",
) -> Transcript:
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
        kind: ``"stream"`` (as ``TCPServer`` runs a handler) or ``"datagram"`` (as
            ``UDPServer`` does, once per datagram).

    Returns:
        A :class:`Transcript`. Exceptions the handler raises are in it, not raised.
        Inside a hypothesis test it is also noted, so that a failing example shows it.

    Raises:
        InvalidArgument: for a bad argument.
    """
    check_choice("kind", kind, ("stream", "datagram"), source="drive()")
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
            raise InvalidArgument("drive(): seed= only applies with faults=")
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
    layer = MemoryLayer(plan, VirtualClock())
    run = _run_stream if kind == "stream" else _run_datagram
    transcript = run(handler_class, script, layer, server_attrs)
    _note(transcript)
    return transcript


def _note(transcript: Transcript) -> None:
    """Inside a hypothesis test, note the transcript: a failing example shows it."""
    hypothesis = sys.modules.get("hypothesis")
    if hypothesis is not None and hypothesis.currently_in_test_context():
        hypothesis.note(transcript)  # rendered (_repr_pretty_) only if it is reported


def _transcript(
    kind: str,
    sock: MemorySocket,
    client: MemoryClient,
    server: DriveServer,
    layer: FaultLayer,
    errors: list[BaseException],
    requests: int,
    closed: bool,
    half_closed: bool,
) -> Transcript:
    replies = sock.sent_datagrams
    output = bytes(sock.written) if kind == "stream" else b"".join(replies)
    return Transcript(
        kind,
        output,
        replies,
        client.received,
        client.results,
        closed,
        half_closed,
        errors[0] if errors else None,
        errors,
        requests,
        layer.plan.log,
        layer.plan,
        layer.clock.now(),
        server.shutdown_requested or layer.shutdown_triggered.is_set(),
    )


def _run_stream(
    handler_class: Any, script: ClientScript, layer: FaultLayer, attrs: dict[str, Any]
) -> Transcript:
    clock = layer.clock
    sock = MemorySocket(
        layer, socket.SOCK_STREAM, SERVER_ADDRESS, layer.new_connection(CLIENT_ADDRESS)
    )
    peer = MemoryEndpoint(socket.SOCK_STREAM, clock, CLIENT_ADDRESS)
    sock.connect_pair(peer)
    client = MemoryClient(script, peer, clock)
    sock.waiter = client.advance
    server = DriveServer("stream", handler_class, sock, layer, attrs)
    errors: list[BaseException] = []
    try:
        handler_class(sock, CLIENT_ADDRESS, server)
    except Exception as exc:  # what the server's handle_error() would print
        errors.append(exc)
    closed, half_closed = sock._closed, sock._write_shut
    sock.waiter = None
    with contextlib.suppress(OSError):  # TCPServer.shutdown_request()
        sock.shutdown(socket.SHUT_WR)
    sock.close()
    client.advance(None, never)  # the rest of the script
    return _transcript("stream", sock, client, server, layer, errors, 1, closed, half_closed)


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

    def serve() -> None:  # what UDPServer's loop does with the waiting datagrams
        nonlocal requests
        while sock._queue:
            try:
                request = sock.recvfrom(server.max_packet_size, DONTWAIT)
            except BlockingIOError:
                continue  # lost on the way in
            requests += 1
            try:
                handler_class((request[0], sock), request[1], server)
            except Exception as exc:
                errors.append(exc)

    client = MemoryClient(script, peer, clock, serve=serve)
    client.advance(None, never)
    serve()
    closed = sock._closed
    sock.close()
    return _transcript("datagram", sock, client, server, layer, errors, requests, closed, False)

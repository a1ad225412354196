"""The built-in robustness checks, as plain functions (no pytest).

In the spirit of ``trio.testing.check_one_way_stream``: each check takes what to
check -- a :class:`Target`: a server class, its request handler, the request to
send and what the reply must be -- and a fault seed; it starts the server through
the harness's one entry (``serving()``: ``resolve_spec`` / ``serve_spec``) with
the check's faults, talks to it through the handle's client, stops it within
:data:`SHUTDOWN_WITHIN`, and returns -- or raises:

* :class:`Verdict` (an ``AssertionError``) when the server did not hold up: a
  wrong reply, a client kept waiting, a shutdown that never came;
* the request handler's own exception when it raised one, however the exchange
  went (it is the cause; the others and the check's verdict are in its notes);
* ``ShutdownTooSlow`` / ``ShutdownTimeout`` when the server would not stop in time;
* :class:`Expected` -- the check does not hold for a known, accepted reason (a
  server that drops a slow client: a policy, not a starved client);
* :class:`Unsupported` -- the handler fails even without faults on this server
  (:func:`baseline`), so nothing under faults can be judged.

:data:`CHECKS` lists them in the order of ``sockshock run``'s matrix.
"""

from __future__ import annotations

import contextlib
import contextvars
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sockshock._checks._details import describe_error
from sockshock._checks._replies import Expectation
from sockshock._faults import (
    AbruptShutdown,
    DropDatagrams,
    FaultModel,
    PartialReads,
    PartialWrites,
    SlowClient,
)
from sockshock._harness import ServerHandle, add_note, raise_outcome
from sockshock._harness import serving as harness_serving
from sockshock._stdlib import ServerKind

__all__ = [
    "CHECKS",
    "SERVED",
    "SHUTDOWN_WITHIN",
    "TIMEOUT",
    "Check",
    "Expected",
    "Target",
    "Unsupported",
    "Verdict",
    "baseline",
    "check_abrupt_shutdown",
    "check_echo",
    "check_lost_datagrams",
    "check_partial_reads",
    "check_partial_writes",
    "check_slow_client",
    "exchange",
    "name_of",
    "with_reply",
]

#: Every client wait is bounded by this, in seconds.
TIMEOUT = 2.0
#: Every check's server must stop within this (x the default tolerance for noisy
#: machines), with its clients gone.
SHUTDOWN_WITHIN = 2.0


class Verdict(AssertionError):
    """The check's own finding: the server did not hold up."""


class Expected(Exception):
    """The check does not hold, for a known and accepted reason (the message)."""


class Unsupported(Exception):
    """The handler fails even without faults on this server: nothing to judge."""


def name_of(exc: BaseException) -> str:
    """An exception's class name as reports show it (a verdict is the
    ``AssertionError`` it is)."""
    return "AssertionError" if isinstance(exc, Verdict) else type(exc).__name__


@dataclass(frozen=True)
class Target:
    """What a check checks.

    Attributes:
        server_class: the server class (sockshock's, the standard library's, or
            one built on either).
        handler: the request handler class; None: the one the class's constructor
            defaults to.
        request: the bytes a client sends (a stream client then ends its side).
        expectation: what the reply must be (default: the handler's own reply
            without faults, digits aside).
        reply: the handler's reply without faults, if known (:func:`baseline`
            works it out otherwise).
    """

    server_class: type[Any]
    handler: Any
    request: bytes
    expectation: Expectation = field(default_factory=Expectation)
    reply: bytes | None = None


#: Where :func:`serving` tells a runner which servers a check ran (for the fault
#: log of a failure): a list to append to, or None.
SERVED: contextvars.ContextVar[list[ServerHandle[Any]] | None] = contextvars.ContextVar(
    "sockshock_checks_served", default=None
)


@contextlib.contextmanager
def serving(
    target: Target,
    faults: list[FaultModel] | None = None,
    *,
    seed: int | None = None,
    bounded: bool = True,
) -> Iterator[ServerHandle[Any]]:
    """Serve ``target`` under ``faults`` (seeded with ``seed``) for the block.

    The block's own failure (a :class:`Verdict`, a client's error) is weighed after
    the server stopped: a request handler's exception comes first -- it is why the
    reply was wrong --, with the block's failure and the other handler errors as
    its notes. With ``bounded``, a block that passed is followed by the shutdown
    bound: the server must stop within :data:`SHUTDOWN_WITHIN`.
    """
    started = harness_serving(
        target.server_class,
        target.handler,
        faults=faults or None,
        seed=seed if faults else None,
        expect_errors=BaseException,  # kept in handle.errors: judged below, first
    )
    verdict: BaseException | None = None
    stop_error: BaseException | None = None
    handle: ServerHandle[Any] | None = None
    served = SERVED.get()
    try:
        with started as handle:
            if served is not None:
                served.append(handle)
            try:
                yield handle
            except Exception as exc:  # judged once the handler errors are in
                verdict = exc
            else:
                if bounded and not handle.wait_stopped(0):
                    handle.assert_stops_within(SHUTDOWN_WITHIN)
    except Exception as exc:  # ShutdownTooSlow, ShutdownTimeout
        if handle is None:
            raise  # it never started
        stop_error = exc
    assert handle is not None  # (for mypy: serve_spec yields or raises)
    failures = [failure.exception for failure in handle.errors]
    if failures:
        if verdict is not None:
            add_note(failures[0], f"also, the check saw: {verdict}")
        if stop_error is not None:
            add_note(failures[0], f"also, {name_of(stop_error)}: {stop_error}")
        raise_outcome(None, failures)
    if verdict is not None:
        if stop_error is not None:
            add_note(verdict, f"also, {name_of(stop_error)}: {stop_error}")
        raise verdict
    if stop_error is not None:
        raise stop_error


def exchange(srv: ServerHandle[Any], request: bytes) -> bytes:
    """One request and its whole reply (until the server closes its side, or one
    datagram), through the handle's client."""
    with srv.connect(timeout=TIMEOUT) as client:
        if srv.type == socket.SOCK_DGRAM:
            client.send(request)
            return client.recv(65536)
        client.sendall(request)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        try:
            while chunk := client.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            got = b"".join(chunks)
            raise TimeoutError(
                f"no end of the reply within {TIMEOUT:g} s (got {len(got)} bytes: {got[:40]!r})"
            ) from None
        return b"".join(chunks)


def baseline(target: Target) -> bytes:
    """The handler's reply to the request without faults. A handler that fails
    even so does not support this server: :class:`Unsupported`, naming why."""
    if target.reply is not None:
        return target.reply
    try:
        with serving(target, bounded=False) as srv:
            return exchange(srv, target.request)
    except Exception as exc:  # the handler's own failure, or no reply in time
        detail = describe_error(exc)
        place = detail.caller or detail.where
        at = f", at {place}" if place is not None else ""
        raise Unsupported(
            f"unsupported: the handler fails even without faults ({detail.headline}{at})"
        ) from exc


def _judge(target: Target, reply: bytes) -> None:
    problem = target.expectation.judge(reply, baseline(target))
    if problem is not None:
        raise Verdict(problem)


def check_echo(target: Target, *, seed: int | None = None) -> None:
    """Without faults, a request gets the expected reply."""
    with serving(target, seed=seed) as srv:
        reply = exchange(srv, target.request)
        if not reply:
            raise Verdict("no reply at all")
        _judge(target, reply)


def _same_reply_under(target: Target, fault: FaultModel, seed: int | None) -> None:
    with serving(target, [fault], seed=seed) as srv:
        _judge(target, exchange(srv, target.request))


def check_partial_reads(target: Target, *, seed: int | None = None) -> None:
    """The server's reads return one byte at a time; the reply is the same."""
    _same_reply_under(target, PartialReads(1), seed)


def check_partial_writes(target: Target, *, seed: int | None = None) -> None:
    """The server's writes take one byte at a time; the reply is the same."""
    _same_reply_under(target, PartialWrites(1), seed)


def check_slow_client(target: Target, *, seed: int | None = None) -> None:
    """A client that sends its request slowly (50 ms in all) does not keep another
    client waiting: the server answers the other one while it still reads the slow
    one. A server that gives up on the slow client (a timeout) is :class:`Expected`:
    a policy, not a starved client."""
    expected = baseline(target)
    pause = max(0.002, 0.05 / max(1, len(target.request)))  # 50 ms of slowness
    fault = SlowClient(chunk=1, pause=pause, connections=0)
    with serving(target, [fault], seed=seed) as srv:
        plan = srv.plan
        errors: list[BaseException] = []
        slow_reply: list[bytes] = []

        def slow() -> None:
            try:
                slow_reply.append(exchange(srv, target.request))
            except BaseException as exc:
                errors.append(exc)

        def slow_reads() -> int:  # how far the server got reading the slow request
            return sum(1 for event in plan.log if event.connection == 0)

        slow_client = threading.Thread(target=slow, name="sockshock check: slow client")
        slow_client.start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while not slow_reads() and slow_client.is_alive() and time.monotonic() < deadline:
                time.sleep(0.001)  # until the slow one is being read
            _judge(target, exchange(srv, target.request))
            read_meanwhile = slow_reads()
        finally:
            slow_client.join(TIMEOUT * 5)
        if slow_client.is_alive():  # (its reads are bounded: this is a server holding on)
            raise Verdict(f"the slow client got no end of its reply within {TIMEOUT * 5:g} s")
        if errors or target.expectation.judge(slow_reply[0], expected) is not None:
            dropped = repr(errors[0]) if errors else f"its reply was {slow_reply[0][:40]!r}"
            raise Expected(f"the server dropped the slow client ({dropped})")
        # Judged by the server's own progress, not by which client thread ran first.
        if not read_meanwhile < slow_reads():
            raise Verdict("one slow client kept the others waiting")


def check_lost_datagrams(target: Target, *, seed: int | None = None) -> None:
    """Half of the datagrams are lost (surely the first): a client that sends again
    what was lost gets every answer, each once."""
    baseline(target)
    faults: list[FaultModel] = [DropDatagrams(0.5), DropDatagrams(first_ops=1)]
    with serving(target, faults, seed=seed) as srv:
        plan = srv.plan

        def drops() -> int:  # datagrams lost (one may be dropped by both models)
            return len(
                {
                    (event.connection, event.index)
                    for event in plan.log
                    if event.decision.action == "drop"
                }
            )

        retries = 0
        deadline = time.monotonic() + TIMEOUT
        with srv.connect(timeout=TIMEOUT) as client:
            for _ in range(8):
                while True:  # until answered; resent when the server's log says it was lost
                    lost_before = drops()
                    client.send(target.request)
                    while not select.select([client], [], [], 0.001)[0] and drops() == lost_before:
                        if time.monotonic() >= deadline:
                            raise Verdict(f"no answer within {TIMEOUT:g} s")
                    if drops() == lost_before:
                        break
                    retries += 1
                _judge(target, client.recv(65536))
        # Every lost datagram cost exactly one retry, and no answer came twice.
        if not retries == drops() > 0:
            raise Verdict(f"{retries} retries for {drops()} lost datagrams")


def check_abrupt_shutdown(target: Target, *, seed: int | None = None) -> None:
    """The server is shut down abruptly as it starts reading the first request:
    the client is answered, cut off or refused -- never left hanging --, and the
    server stops and closes its socket."""
    baseline(target)
    with serving(target, [AbruptShutdown(connections=0)], seed=seed) as srv:
        layer = srv.layer
        assert layer is not None  # (served with faults)
        with contextlib.suppress(TimeoutError, ConnectionError):
            exchange(srv, target.request)  # answered, cut off or refused: but never hung
        if not layer.shutdown_triggered.wait(TIMEOUT):
            raise Verdict(f"the shutdown never came (within {TIMEOUT:g} s)")
        if not srv.wait_stopped(TIMEOUT * 2):
            raise Verdict(f"shutdown()/server_close() did not finish within {TIMEOUT * 2:g} s")
        if srv.server.socket.fileno() != -1:
            raise Verdict("the server stopped with its listening socket still open")


def _synchronous(kind: ServerKind) -> str | None:
    return (
        "a synchronous server serves one client at a time" if kind.concurrency == "sync" else None
    )


@dataclass(frozen=True)
class Check:
    """One check of the matrix.

    Attributes:
        name: its column in ``sockshock run``'s matrix.
        function: the check.
        transport: ``"stream"`` or ``"datagram"``: the servers it applies to
            (None: all).
        expected_failure: for a server kind the check is known to fail on, why
            (the failure is then ``expected``, and passing is a failure).
        faults: whether it injects faults (and so takes a fault seed).
    """

    name: str
    function: Callable[..., None]
    transport: str | None = None
    expected_failure: Callable[[ServerKind], str | None] = lambda kind: None
    faults: bool = True

    def applies_to(self, kind: ServerKind) -> bool:
        return self.transport is None or self.transport == kind.transport


#: The checks, in the order of ``sockshock run``'s matrix.
CHECKS: tuple[Check, ...] = (
    Check("echo", check_echo, faults=False),
    Check("partial reads", check_partial_reads, "stream"),
    Check("partial writes", check_partial_writes, "stream"),
    Check("slow client", check_slow_client, "stream", _synchronous),
    Check("lost datagrams", check_lost_datagrams, "datagram"),
    Check("abrupt shutdown", check_abrupt_shutdown),
)


def with_reply(target: Target) -> Target:
    """``target`` with its reply without faults worked out (:func:`baseline`)."""
    return replace(target, reply=baseline(target))

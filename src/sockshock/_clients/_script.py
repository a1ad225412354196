"""Client scripts: what a client does, as data that real sockets and ``drive()`` run alike.

A :class:`ClientScript` is a sequence of steps -- :class:`Send`, :class:`Pause`,
:class:`Read`, :class:`HalfClose`, :class:`Reset`, :class:`Close` -- with one
bound for every read. :class:`ScriptRun` carries it out on a real socket, step
by step (the stateful machine interleaves several); ``drive()`` carries it out
in memory, in virtual time. Each step ends in a :class:`StepResult`: what the step
met (``"ok"``, ``"eof"``, ``"timeout"``, ``"closed"``, or the name of the error
the socket raised, such as ``"ECONNRESET"``) and, for a read, the bytes it got.
A script that ends with its socket open closes it.
"""

from __future__ import annotations

import errno
import hashlib
import socket
import struct
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Union, cast

from sockshock._util import (
    MAX_SECONDS,
    MAX_UDP_PAYLOAD,
    InvalidArgument,
    check_number,
    check_type,
    exported_by,
)

__all__ = [
    "ABBREVIATE_OVER",
    "MAX_READ",
    "ClientScript",
    "Close",
    "HalfClose",
    "Pause",
    "Read",
    "Reset",
    "ScriptRun",
    "ScriptStep",
    "Send",
    "Step",
    "StepResult",
    "abbreviate",
    "as_script",
    "check_steps",
    "outcome_of",
    "steps_of",
    "wanted",
]

#: The most a read takes in one go (a datagram read: the largest datagram).
MAX_READ = 65536
#: Payloads longer than this are abbreviated in reprs and reports (:func:`abbreviate`).
ABBREVIATE_OVER = 100
_SHOWN = 32  # the bytes (or characters) an abbreviation keeps from the start


def abbreviate(value: bytes | bytearray | memoryview | str, limit: int = ABBREVIATE_OVER) -> str:
    """The repr of ``value`` -- bytes, or a string (a repr already) -- or, past
    ``limit``, its start (a string: ``limit`` characters), its length and a digest: ``b'GET / HTTP/1.1\\r\\nHost: '...
    (8388608 bytes, sha256 3b1f0c2a9e7d)``. Two payloads that differ show
    different digests; a report of an 8 MB payload stays one line."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        digest = hashlib.sha256(value.encode("utf-8", "backslashreplace")).hexdigest()[:12]
        return f"{value[:limit]}...({len(value)} characters, sha256 {digest})"
    data = bytes(value)
    if len(data) <= limit:
        return repr(data)
    digest = hashlib.sha256(data).hexdigest()[:12]
    return f"{data[:_SHOWN]!r}...({len(data)} bytes, sha256 {digest})"


class ScriptStep:
    """What every step of a client script is: one base, so that a list of steps
    (``[Send(...), Read(...)]``) has one type and type-checks as a client."""

    __slots__ = ()


@exported_by("sockshock.scripts")
@dataclass(frozen=True, slots=True)
class Send(ScriptStep):
    """Send ``data``, all of it (a datagram, on a datagram socket).

    Args:
        data: the bytes to send.
    """

    data: bytes

    def __post_init__(self) -> None:
        if type(self.data) is not bytes:
            check_type("data", self.data, bytes, source="Send()")

    def __repr__(self) -> str:
        return f"Send({abbreviate(self.data)})"


@exported_by("sockshock.scripts")
@dataclass(frozen=True, slots=True)
class Pause(ScriptStep):
    """Do nothing for ``seconds`` (real seconds on a real socket, virtual ones in
    ``drive()``, where the server takes the datagrams sent so far meanwhile).

    Args:
        seconds: how long, at most 3600.
    """

    seconds: float

    def __post_init__(self) -> None:
        check_number("seconds", self.seconds, low=0, high=MAX_SECONDS, source="Pause()")

    def __repr__(self) -> str:
        return f"Pause({self.seconds!r})"


@exported_by("sockshock.scripts")
@dataclass(frozen=True, slots=True)
class Read(ScriptStep):
    """Receive until ``size`` bytes came in this step, or until what came ends with
    ``until`` (exactly: nothing past it is taken), or end of file, an error, or the
    script's timeout. Neither: until end of file. On a datagram socket: one
    datagram, cut to ``size`` (default 65536).

    Args:
        size: the most bytes to receive in this step (None: no limit).
        until: stop once what came ends with these bytes.
    """

    size: int | None = None
    until: bytes | None = None

    def __post_init__(self) -> None:
        if self.size is not None:
            check_number("size", self.size, low=1, integer=True, source="Read()")
        if self.until is not None:
            check_type("until", self.until, bytes, source="Read()")
            if not self.until:
                raise InvalidArgument(
                    "until=b'' (from Read()) would end the read at once; "
                    "give a marker such as b'\\n', or leave it out"
                )

    def __repr__(self) -> str:
        args = [f"size={self.size!r}"] if self.size is not None else []
        args += [f"until={self.until!r}"] if self.until is not None else []
        return f"Read({', '.join(args)})"


@exported_by("sockshock.scripts")
@dataclass(frozen=True, slots=True)
class HalfClose(ScriptStep):
    """Shut the writing side down (``shutdown(SHUT_WR)``): the server reads end of
    file; the client can still read."""


@exported_by("sockshock.scripts")
@dataclass(frozen=True, slots=True)
class Reset(ScriptStep):
    """Close with an RST instead of a FIN (``SO_LINGER`` zero): the server's next
    read fails with ``ECONNRESET``."""


@exported_by("sockshock.scripts")
@dataclass(frozen=True, slots=True)
class Close(ScriptStep):
    """Close the socket (a FIN; an RST if data the server sent is still unread)."""


Step = Union[Send, Pause, Read, HalfClose, Reset, Close]
_STEPS = (Send, Pause, Read, HalfClose, Reset, Close)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step met: ``"ok"``, ``"eof"`` (a read reached end of file),
    ``"timeout"``, ``"closed"`` (the socket was closed by an earlier step), or an
    errno name (``"ECONNRESET"``, ``"EPIPE"``...); ``data``: what a read got."""

    step: Step
    outcome: str
    data: bytes = b""

    def __repr__(self) -> str:
        data = f", {abbreviate(self.data)}" if self.data else ""
        return f"StepResult({self.step!r}, {self.outcome!r}{data})"


def outcome_of(exc: OSError) -> str:
    """A socket error as a step's outcome: ``"timeout"`` or its errno name."""
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "timeout"
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


_STEP_NAMES = "Send, Pause, Read, HalfClose, Reset, Close"


def steps_of(steps: object, *, source: str) -> tuple[Step, ...]:
    """``steps`` -- a list, a tuple, any other ordered iterable (a generator: read
    once) -- as a tuple of steps, each checked; one error naming the first bad
    element and its index. Byte strings, text and sets are refused whole: they
    iterate, but not into steps (a set: in no fixed order)."""
    if type(steps) is tuple:
        found: tuple[object, ...] = steps
    elif isinstance(steps, (list, tuple)):
        found = tuple(steps)
    elif isinstance(steps, (str, bytes, bytearray, memoryview, AbstractSet)) or not isinstance(
        steps, Iterable
    ):
        hint = ""
        if isinstance(steps, (bytes, bytearray, memoryview)):
            hint = f"; to send bytes, wrap them: [Send({abbreviate(bytes(steps))})]"
        elif isinstance(steps, AbstractSet):
            hint = "; a set has no order: give a list"
        elif isinstance(steps, _STEPS):
            hint = f"; one step is a list of one: [{steps!r}]"
        raise InvalidArgument(
            f"expected a list of steps ({_STEP_NAMES}) but got steps={abbreviate(repr(steps))} "
            f"(type={type(steps).__name__}) (from {source}){hint}"
        )
    else:
        found = tuple(steps)  # a one-shot iterable is read here, once
    for index, step in enumerate(found):
        if type(step) not in _STEPS and not isinstance(step, _STEPS):
            raise InvalidArgument(
                f"expected a step ({_STEP_NAMES}) but got steps[{index}]="
                f"{abbreviate(repr(step))} (type={type(step).__name__}) (from {source})"
            )
    return cast("tuple[Step, ...]", found)


@exported_by("sockshock.scripts")
@dataclass(frozen=True, init=False)
class ClientScript:
    """What one client does, step by step.

    Args:
        steps: the steps, in order: a list, a tuple, or any other iterable of them
            (a generator is read once, here); kept as a tuple.
        timeout: how long each :class:`Read` (and each send on a real socket) may
            wait, in seconds.
        intended: the whole request the client means to send (default: what its
            sends send, :attr:`request`); more for a client that stops midway.
            Not compared: scripts with the same steps are equal.
    """

    steps: tuple[Step, ...]
    timeout: float = 5.0
    # Not compared: two scripts with the same steps do the same on the wire.
    intended: bytes | None = field(default=None, compare=False)

    # Written out, not generated: ``steps`` is taken as any iterable of steps --
    # ``[Send(...), Read()]`` in a variable is a ``list[ScriptStep]`` to mypy (the
    # join of its items' types), a function may return ``Sequence[Send | Read]`` --
    # and kept as the tuple the field's type says.
    def __init__(
        self,
        steps: Iterable[ScriptStep],
        timeout: float = 5.0,
        intended: bytes | None = None,
    ) -> None:
        object.__setattr__(self, "steps", steps_of(steps, source="ClientScript()"))
        if intended is not None and isinstance(intended, (bytearray, memoryview)):
            intended = bytes(intended)
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "intended", intended)
        if intended is not None:
            check_type("intended", intended, bytes, source="ClientScript()")
        check_number(
            "timeout", timeout, low=0, low_open=True, high=MAX_SECONDS, source="ClientScript()"
        )

    @property
    def request(self) -> bytes:
        """Everything the script sends, joined."""
        return b"".join(step.data for step in self.steps if isinstance(step, Send))

    @property
    def complete(self) -> bool:
        """Whether the script sends the whole request it means to (:attr:`intended`)."""
        return self.intended is None or self.request == self.intended

    @property
    def ending(self) -> str:
        """How the script ends: ``"reset"`` (its last step that is not a read or a
        pause is a :class:`Reset`), ``"half_close"`` (a :class:`HalfClose`, then
        reads), ``"stop_midway"`` (it closes without sending all it means to), or
        ``"close"`` (a :class:`Close`, or the end of the script)."""
        last = next(
            (step for step in reversed(self.steps) if not isinstance(step, (Read, Pause))),
            None,
        )
        if isinstance(last, Reset):
            return "reset"
        if isinstance(last, HalfClose):
            return "half_close"
        return "close" if self.complete else "stop_midway"

    def __repr__(self) -> str:
        timeout = "" if self.timeout == 5.0 else f", timeout={self.timeout!r}"
        intended = "" if self.complete else f", intended={abbreviate(self.intended or b'')}"
        return f"ClientScript([{', '.join(map(repr, self.steps))}]{timeout}{intended})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis (and IPython) print a script: as its repr."""
        printer.text(repr(self))


_HALF_CLOSE, _READ = HalfClose(), Read()  # steps are values: one of each will do


def as_script(value: Any, transport: str, *, source: str) -> ClientScript:
    """What a user gave as a client -> a script. Bytes: send them, then (stream)
    half-close and read to end of file, or (datagram) read one reply. A list of
    bytes: each one sent on its own (one read each, in ``drive()``; one datagram
    each), then the same. A list of steps: those."""
    if isinstance(value, ClientScript):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = [bytes(value)]
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(item, (bytes, bytearray)) for item in value):
            sends: list[Step] = [Send(bytes(item)) for item in value]
            if transport == "stream":
                return ClientScript((*sends, _HALF_CLOSE, _READ))
            return ClientScript((*sends, *[_READ for _ in value]))
        return ClientScript(steps_of(value, source=source))
    raise InvalidArgument(
        f"expected bytes, a list of byte strings, a list of steps or a "
        f"ClientScript but got {source}={value!r} (type={type(value).__name__})"
    )


def wanted(step: Read, got: bytes | bytearray, chunk: bytes) -> tuple[int, bool]:
    """How many bytes of ``chunk`` (waiting to be read) a read that has ``got`` so
    far takes, and whether it is then complete."""
    take, complete = len(chunk), False
    if step.until is not None:
        start = max(0, len(got) - len(step.until) + 1)
        found = (bytes(got[start:]) + chunk).find(step.until)
        if found >= 0:
            take = min(take, start + found + len(step.until) - len(got))
            complete = True
    if step.size is not None and len(got) + take >= step.size:
        take, complete = step.size - len(got), True
    return take, complete


@exported_by("sockshock.scripts")
class ScriptRun:
    """A :class:`ClientScript` carried out on a real, connected socket.

    Args:
        script: the script.
        sock: a connected socket (stream or datagram); the run closes it.
        sleep: how a :class:`Pause` waits (default ``time.sleep``).
    """

    def __init__(
        self,
        script: ClientScript,
        sock: socket.socket,
        *,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not isinstance(script, ClientScript):
            raise InvalidArgument(
                f"expected a ClientScript (e.g. ClientScript((Send(b'hi\\n'), Read()))) but got "
                f"script={script!r} (type={type(script).__name__}) (from ScriptRun())"
            )
        missing = [
            name
            for name in ("type", "settimeout", "recv", "sendall", "close")
            if not hasattr(sock, name)
        ]
        if missing:
            raise InvalidArgument(
                f"expected a connected socket (srv.connect(), say) but got sock={sock!r} "
                f"(type={type(sock).__name__}), which has no {', '.join(missing)} "
                "(from ScriptRun())"
            )
        if not callable(sleep):
            raise InvalidArgument(
                f"expected a function of seconds but got sleep={sleep!r} "
                f"(type={type(sleep).__name__}) (from ScriptRun())"
            )
        self.script = script
        self.sock = sock
        self.results: list[StepResult] = []
        self._sleep = sleep
        self._next = 0
        self._closed = False
        self._stream = sock.type == socket.SOCK_STREAM
        sock.settimeout(script.timeout)

    @property
    def done(self) -> bool:
        """Whether every step has run (or the run has ended early)."""
        return self._next >= len(self.script.steps)

    @property
    def received(self) -> bytes:
        """Everything the script's reads got, joined."""
        return b"".join(result.data for result in self.results)

    def step(self) -> StepResult | None:
        """Carry out the next step (``None`` once there is none; the socket is then
        closed).

        Returns:
            The step's StepResult (the step, what it met, the bytes it received),
            or None when no step is left.
        """
        if self.done:
            self.close()
            return None
        step = self.script.steps[self._next]
        self._next += 1
        result = self._carry_out(step)
        self.results.append(result)
        if self.done:
            self.close()
        return result

    def run(self) -> list[StepResult]:
        """Carry out every step left; return all the results.

        Returns:
            The StepResults of every step carried out, this call's and earlier ones'.
        """
        while self.step() is not None:
            pass
        return self.results

    def close(self) -> None:
        """Close the socket the script runs on."""
        if not self._closed:
            self._closed = True
            self.sock.close()

    def _carry_out(self, step: Step) -> StepResult:
        if isinstance(step, Pause):
            self._sleep(step.seconds)
            return StepResult(step, "ok")
        if self._closed:
            return StepResult(step, "closed")
        sock = self.sock
        got = bytearray()
        try:
            if isinstance(step, Send):
                sock.settimeout(self.script.timeout)
                sock.sendall(step.data)
            elif isinstance(step, Read):
                return StepResult(step, self._read(step, got), bytes(got))
            elif isinstance(step, HalfClose):
                sock.shutdown(socket.SHUT_WR)
            elif isinstance(step, Reset):
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close()
            else:
                self.close()
        except OSError as exc:
            return StepResult(step, outcome_of(exc), bytes(got))
        return StepResult(step, "ok")

    def _read(self, step: Read, got: bytearray) -> str:
        sock = self.sock
        if not self._stream:
            got += sock.recv(min(step.size or MAX_READ, MAX_READ))  # one datagram
            return "ok"
        deadline = time.monotonic() + self.script.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            sock.settimeout(remaining)
            chunk = sock.recv(MAX_READ, socket.MSG_PEEK)
            if not chunk:
                return "eof"
            take, complete = wanted(step, got, chunk)
            got += sock.recv(take)
            if complete:
                return "ok"


def check_steps(steps: Iterable[Step], transport: str, *, source: str) -> None:
    """Half-closes and resets are stream steps."""
    if transport == "datagram":
        for step in steps:
            if isinstance(step, (HalfClose, Reset)):
                raise InvalidArgument(
                    f"{step!r} (from {source}) is a stream step; a datagram "
                    "client can send, read, pause and close"
                )
            if isinstance(step, Send) and len(step.data) > MAX_UDP_PAYLOAD:
                raise InvalidArgument(
                    f"a datagram of {len(step.data)} bytes (from {source}): one UDP "
                    f"datagram carries at most {MAX_UDP_PAYLOAD} bytes (sendto() fails "
                    "with EMSGSIZE); split it into several"
                )

"""``drive(..., sockets="real")``: a handler on a real connected socket pair.

For handlers that use their descriptor -- ``fileno()``, ``fcntl`` (``O_NONBLOCK``),
``select.select`` on the connection -- which in-memory sockets cannot give. The
handler runs in the caller's thread on the server's end of a loopback TCP
connection, a :class:`~sockshock._wire.FaultySocket` of the same fault layer
(in virtual time: injected delays cost nothing); the client's script runs on the
other end in a thread of its own, with :class:`~sockshock._clients.ScriptRun`.

So that a run looks like one in memory, the client's first steps (up to its first
read or pause) happen before the handler starts, and -- each send arriving as
reads of its own -- the client lets the handler take what it sent (the kernel's receive queue
empty, at most :data:`SETTLE` seconds) before each of its next steps. Pauses and
reads wait for real (a read up to the script's ``timeout``), as a handler's own
socket timeouts do: keep them short. Injected delays are virtual, as in memory. A handler still running :data:`SETTLE` seconds
plus the script's timeout after the client's script ended has its socket shut
down (blocked reads return) and gets :class:`~sockshock.errors.HandlerHangs`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import socket
import struct
import termios
import threading
import time
from typing import Any

from sockshock._clients import ClientScript, Pause, Read, ScriptRun
from sockshock._util import HandlerHangs
from sockshock._wire import FaultLayer, FaultySocket, os_error

__all__ = ["SETTLE", "RealPair"]

#: How long (real seconds) the client lets the handler take what it sent before
#: its next step, at most.
SETTLE = 0.05
_SPIN_LIMIT = 1000  # fruitless reads in a row, after the client finished: spinning


class _DriveSocket(FaultySocket):
    """The handler's end: a FaultySocket that also records what crossed it and
    what the handler did to it itself."""

    def _sockshock_record(self) -> None:
        self.written = bytearray()
        self.taken = bytearray()
        self.closed_by_handler = False
        self.half_closed_by_handler = False
        self.client_done = threading.Event()
        self._fruitless = 0

    def _raw_send(self, data: Any, flags: int = 0, /) -> int:
        n = socket.socket.send(self, data, flags)
        self.written += memoryview(data).cast("B")[:n]
        return n

    def _raw_recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        data = socket.socket.recv(self, bufsize, flags)
        self._took(data, flags, bufsize)
        return data

    def _raw_recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        n = socket.socket.recv_into(self, buffer, nbytes, flags)
        self._took(memoryview(buffer).cast("B")[:n], flags, nbytes or memoryview(buffer).nbytes)
        return n

    def _took(self, data: Any, flags: int, size: int) -> None:
        if flags & socket.MSG_PEEK:
            return
        if len(data) or size <= 0:
            self._fruitless = 0
            self.taken += data
        elif self.client_done.is_set():
            self._fruitless += 1
            if self._fruitless > _SPIN_LIMIT:
                raise HandlerHangs(
                    f"the handler read {_SPIN_LIMIT} times in a row after its peer had "
                    "finished (end of file each time): it would spin forever"
                )

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self._sockshock_stream and not self._closed:
            super().sendall(data, flags)
            return
        view = memoryview(data).cast("B")
        sent = 0
        while sent < view.nbytes:  # socket.sendall, through _raw_send (recorded)
            sent += self._raw_send(view[sent:], flags)

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.half_closed_by_handler = True
        super().shutdown(how)

    def close(self) -> None:
        if self.fileno() != -1:
            self.closed_by_handler = True
        super().close()


def _unread(sock: socket.socket) -> int:
    """Bytes in the kernel's receive queue of ``sock`` (0 once it is closed)."""
    fd = sock.fileno()
    if fd < 0:
        return 0
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0


class RealPair:
    """One run: the pair, the client's thread, and what they did.

    Args:
        script: the client's script.
        layer: the fault layer (a virtual clock).
    """

    def __init__(self, script: ClientScript, layer: FaultLayer) -> None:
        self.script = script
        self.layer = layer
        self.handler_done = threading.Event()
        self.hang: HandlerHangs | None = None
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            client = socket.create_connection(listener.getsockname())
            try:
                fd, self.address = listener._accept()  # type: ignore[attr-defined]
            except BaseException:
                client.close()
                raise
        finally:
            listener.close()
        self.sock = _DriveSocket(socket.AF_INET, socket.SOCK_STREAM, 0, fileno=fd)
        self.sock._sockshock_attach(layer, layer.new_connection(self.address))
        self.sock._sockshock_record()
        self.sock.setblocking(True)
        self.run = ScriptRun(script, client, sleep=self._pause)
        self._thread = threading.Thread(
            target=self._client, name="sockshock-drive-client", daemon=True
        )

    def _pause(self, seconds: float) -> None:
        """A pause is real here (a handler's socket timeouts are), and counts on
        the virtual clock too."""
        time.sleep(seconds)
        self.layer.clock.sleep(seconds)

    def _settle(self) -> None:
        """Let the handler take what the client sent (at most SETTLE seconds)."""
        end = time.monotonic() + SETTLE
        while _unread(self.sock) and not self.handler_done.is_set():
            if time.monotonic() >= end:
                return
            self.handler_done.wait(0.0005)

    def _client(self) -> None:
        run = self.run
        try:
            while not run.done:
                step = self.script.steps[len(run.results)]
                if not isinstance(step, Pause):
                    self._settle()
                run.step()
        finally:
            run.close()
            self.sock.client_done.set()
        if not self.handler_done.wait(SETTLE + self.script.timeout):
            self.hang = HandlerHangs(
                f"the handler was still running {SETTLE + self.script.timeout:g} s after "
                "its client's script ended; drive() shut its socket down (a handler "
                "that never returns on a real socket)"
            )
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def start(self) -> None:
        """The client's first steps -- up to its first read or pause, right after
        connecting, before the handler starts (as in memory) -- then its thread."""
        run = self.run
        while not run.done and not isinstance(self.script.steps[len(run.results)], (Read, Pause)):
            run.step()
        self._thread.start()

    def finish(self) -> None:
        """After the handler: the connection shut down and closed as ``TCPServer``
        does, then the rest of the script (bounded: each step is)."""
        self.handler_done.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        FaultySocket.close(self.sock)
        if self.sock.fileno() != -1:  # rfile/wfile still open: the descriptor all the same
            self.sock._real_close()  # type: ignore[attr-defined]
        steps = len(self.script.steps) - len(self.run.results)
        self._thread.join(steps * (self.script.timeout + SETTLE) + 1.0)
        if self._thread.is_alive():  # cannot happen: every step is bounded
            self.run.close()
            raise os_error(errno.ETIMEDOUT)

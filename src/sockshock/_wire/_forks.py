"""The channel through which forked children report to the parent process.

A forking server's handlers run in children. Their fault decisions (and a request
for an abrupt shutdown) must reach the parent, where the plan's log lives. A
datagram socket pair is made just before the first fork; children send pickled
messages; a reader thread in the parent drains it as they come, so that a child
never blocks on a full queue. :meth:`ForkChannel.collect` drains what is waiting
now, for callers that need the log complete at a known moment (the harness, when
it stops a server).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ForkChannel"]

_MAX_MESSAGE = 60_000  # bytes; a larger message is not sent (datagram limits)
_STOP = "stop"


class ForkChannel:
    """Messages ``(kind, value)`` from forked children to ``deliver`` in the parent.

    Args:
        deliver: called in the parent (on the reader thread, or in the thread
            calling :meth:`collect`) for each message.
    """

    def __init__(self, deliver: Callable[[str, Any], None]) -> None:
        self._deliver = deliver
        self._pid = os.getpid()
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one drainer at a time
        self._closed = False

    @property
    def in_child(self) -> bool:
        """Whether this process is a child forked after the channel was made."""
        return os.getpid() != self._pid

    def open(self) -> None:
        """Make the socket pair and start the reader (before a fork; idempotent)."""
        if self._thread is not None or self._closed or self.in_child:
            return
        self._reader, self._writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._reader.setblocking(False)
        self._thread = threading.Thread(
            target=self._read, daemon=True, name="sockshock fork channel"
        )
        self._thread.start()

    def after_fork_in_child(self) -> None:
        """Locks held by other threads at fork time are unusable in the child."""
        self._lock = threading.Lock()

    def send(self, kind: str, value: Any) -> None:
        """From a child: send one message (dropped if the channel is not open)."""
        payload = pickle.dumps((kind, value))
        if self._writer is not None and len(payload) <= _MAX_MESSAGE:
            with contextlib.suppress(OSError):
                self._writer.send(payload)

    def collect(self) -> None:
        """In the parent: deliver every message waiting now."""
        if not self.in_child and not self._closed:
            self._deliver_waiting()

    def _deliver_waiting(self) -> bool:
        """Deliver what is waiting; False once the stop message came."""
        with self._lock:
            while self._reader is not None:
                try:
                    payload = self._reader.recv(_MAX_MESSAGE + 1024)
                except OSError:
                    return True
                kind, value = pickle.loads(payload)
                if kind == _STOP:
                    return False
                self._deliver(kind, value)
            return True

    def _read(self) -> None:
        assert self._reader is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._reader, selectors.EVENT_READ)
            while True:
                selector.select()
                if not self._deliver_waiting():
                    return

    def close(self) -> None:
        """In the parent: deliver what is left, stop the reader, close the pair."""
        if self.in_child or self._closed:
            return
        self._closed = True
        if self._thread is None:
            return
        assert self._writer is not None
        assert self._reader is not None
        self._writer.send(pickle.dumps((_STOP, None)))
        self._thread.join()
        self._deliver_waiting()  # anything a child sent after the stop message
        self._reader.close()
        self._writer.close()

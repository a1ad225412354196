"""Forked children: the channel through which they report to the parent process,
and the test's sockets they must not keep open.

A forking server's handlers run in children. Their fault decisions (and a request
for an abrupt shutdown) must reach the parent, where the plan's log lives. A
datagram socket pair is made just before the first fork; children send pickled
messages; a reader thread in the parent drains it as they come, so that a child
never blocks on a full queue. :meth:`ForkChannel.collect` drains what is waiting
now, for callers that need the log complete at a known moment (the harness, when
it stops a server).

A child inherits every descriptor of the test process, the test's client sockets
included: while a child holds a copy of a client's socket, closing that client in
the test never reaches the server as end of file, and a handler waiting for it
waits until the stop kills it. So, in a child:

* every socket a sockshock client made (:func:`note_client_socket`, called as the
  socket is made, before it connects: a server may fork as soon as the kernel
  completes the handshake) is released;
* when the child was forked by a server sockshock serves (its serving thread, or
  one of its handler threads), so is every other inherited socket connected *to
  that server's address* -- the client end of a connection to the server, which
  no handler has any use for: plain sockets the test opened.

Nothing else is touched: a handler's files, logs and connections to other
servers (a backend the server connected to before forking) stay usable, as with
the standard library. "Released" means the descriptor number is pointed at
``/dev/null`` (``dup2``), not closed: the socket object that still holds the
number in the child closes that, never a descriptor that took the number since.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "ForkChannel",
    "die_with_parent",
    "forks",
    "note_client_socket",
    "prepare_die_with_parent",
    "release_inherited_clients",
    "wait_for_fork",
]

_FD_DIRECTORY = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"

# Client sockets made by sockshock (the handle's connect(), sockshock.clients, the
# scenario load): {descriptor: (st_dev, st_ino)} -- the inode tells the socket from
# whatever takes the number after it is closed. Pruned as it grows.
_CLIENTS: dict[int, tuple[int, int]] = {}
_CLIENTS_LOCK = threading.Lock()
_PRUNE_AT = 256


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        status = os.fstat(fd)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def note_client_socket(sock: socket.socket) -> None:
    """``sock`` is the test side of a connection (a client sockshock made): a child
    forked from now on releases its copy. Call it before ``connect()``."""
    fd = sock.fileno()
    identity = _identity(fd)
    if identity is None:
        return
    with _CLIENTS_LOCK:
        if len(_CLIENTS) >= _PRUNE_AT:  # forget the ones closed since
            for old, known in list(_CLIENTS.items()):
                if _identity(old) != known:
                    del _CLIENTS[old]
        _CLIENTS[fd] = identity


def _release(fd: int, placeholder: int) -> None:
    with contextlib.suppress(OSError):
        os.dup2(placeholder, fd)


def _same_address(peer: Any, addresses: list[Any]) -> bool:
    if isinstance(peer, tuple):
        return any(isinstance(a, tuple) and tuple(a[:2]) == tuple(peer[:2]) for a in addresses)
    return bool(peer) and peer in addresses


def _connected_to(fd: int, addresses: list[Any]) -> bool:
    """Whether the socket ``fd`` is connected to one of ``addresses``."""
    try:
        sock = socket.socket(fileno=fd)
    except (OSError, ValueError):  # a family or type Python does not know
        return False
    try:
        peer = sock.getpeername()
    except OSError:
        return False  # not connected: a listening socket, an unbound one
    finally:
        sock.detach()
    return _same_address(peer, addresses)


_FORKS = [0]  # forks this process made (counted in the parent, by the at-fork hook)


def _count_fork() -> None:
    _FORKS[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_parent=_count_fork)


def forks() -> int:
    """How many times this process has forked so far."""
    return _FORKS[0]


def wait_for_fork(before: int, bound: float) -> bool:
    """Wait (at most ``bound`` seconds) until this process has forked since
    :func:`forks` said ``before``; whether it has.

    A TLS client in this process must not start its handshake while a forking
    server forks the child for its connection: a child forked while another thread
    holds one of OpenSSL's locks (they are held for a moment inside each handshake
    step) waits for it for ever. ``connect(tls=...)`` waits for the fork first."""
    deadline = time.monotonic() + bound
    while _FORKS[0] <= before:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.0005)
    return True


_PR_SET_PDEATHSIG = 1
_PRCTL: list[Any] = []  # libc's prctl(), looked up in the parent (never in a child)


def prepare_die_with_parent() -> None:
    """In the parent, before a forking server starts: look ``prctl()`` up now (a
    child must not load libraries: another thread may have held the loader's lock
    at the fork)."""
    if _PRCTL or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        _PRCTL.append(ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError):
        pass


def die_with_parent(parent: int) -> None:
    """In a freshly forked child (Linux): be killed (SIGKILL) when the thread that
    forked it ends -- with its process, however abruptly (SIGKILL, ``os._exit()``,
    pytest-timeout), so that the child never sleeps on with parent pid 1. Only for a
    forking server's children, forked by its serving thread, which outlives them."""
    if not _PRCTL:
        return
    _PRCTL[0](_PR_SET_PDEATHSIG, 9, 0, 0, 0)  # 9: SIGKILL
    if os.getppid() != parent:  # the parent ended before prctl(): end now
        os._exit(1)


def release_inherited_clients(server_addresses: Iterable[Any] = ()) -> None:
    """In a freshly forked child: release the copies of sockshock's client sockets
    (:func:`note_client_socket`) and of every socket connected to one of
    ``server_addresses`` (the forking server's: the test's own client sockets)."""
    addresses = [a for a in server_addresses if a]
    try:
        placeholder = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    try:
        for fd, identity in list(_CLIENTS.items()):
            if _identity(fd) == identity:
                _release(fd, placeholder)
        if not addresses:
            return
        try:
            names = os.listdir(_FD_DIRECTORY)
        except OSError:
            return
        for name in names:
            fd = int(name) if name.isdigit() else -1
            if fd <= 2 or fd == placeholder:
                continue
            try:
                is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
            except OSError:
                continue  # the listing's own descriptor
            if is_socket and _connected_to(fd, addresses):
                _release(fd, placeholder)
    finally:
        os.close(placeholder)


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

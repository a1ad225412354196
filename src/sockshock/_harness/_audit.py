"""The leak audit: threads, descriptors, child processes and Unix socket files.

``with sockshock.audit():`` snapshots the process, runs the block, then waits a
bounded grace period for what is already ending (threads finishing their last
lines, children exiting) and raises :class:`LeakError` naming everything that is
still there: thread names with their stacks, descriptors with what they are (a
socket with its local and peer addresses and its TCP state),
child pids with their state, socket files with their paths.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sockshock._harness._stacks import describe_thread
from sockshock._util import (
    LeakError,
    check_number,
    check_type,
    exported_by,
    format_address,
    watch_at_exit,
)

__all__ = [
    "LeakAudit",
    "LeakReport",
    "audit",
    "describe_socket",
    "forget_unix_path",
    "forked_children",
    "kill_children",
    "note_connection",
    "register_unix_path",
    "watch_stray_threads",
]

_GRACE = 1.0  # seconds for ending threads and exiting children to finish

# Unix socket paths bound by servers the harness ran: {path: (order, inode)}, the
# order numbered as they come. An audit reports the ones registered after its
# snapshot that still exist. The harness removes a path it bound when it stops the
# server (the standard library's server_close() leaves it: a second run would find
# the path taken) and forgets it, so the registry only holds leaked ones.
_UNIX_PATHS: dict[str, tuple[int, int | None]] = {}
_UNIX_LOCK = threading.Lock()
_UNIX_COUNTER = itertools.count(1)


def _socket_inode(path: str) -> int | None:
    """The inode of the socket file at ``path``, or None (gone, or not a socket)."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return status.st_ino if stat.S_ISSOCK(status.st_mode) else None


def register_unix_path(path: str) -> None:
    """Note a Unix socket path a server bound (the harness calls this right after
    the bind)."""
    with _UNIX_LOCK:
        _UNIX_PATHS[path] = (next(_UNIX_COUNTER), _socket_inode(path))


def forget_unix_path(path: str) -> None:
    """The server that bound ``path`` has stopped: remove the socket file if it is
    still the one that server bound (the same inode: a file someone put there since
    is left alone), and forget it once it is gone."""
    with _UNIX_LOCK:
        entry = _UNIX_PATHS.get(path)
        if entry is not None and entry[1] is not None and _socket_inode(path) == entry[1]:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if not os.path.lexists(path):
            _UNIX_PATHS.pop(path, None)


_PROC = os.path.isdir("/proc")
_FD_DIRECTORY = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


def _fds() -> dict[int, tuple[int, int]]:
    """Every open descriptor and what it is: ``{fd: (st_dev, st_ino)}`` (``fstat`` is
    a cheap system call; the procfs link is read only to describe a leak)."""
    fds: dict[int, tuple[int, int]] = {}
    try:
        names = os.listdir(_FD_DIRECTORY)
    except OSError:
        return fds
    for name in names:
        try:
            stat = os.fstat(int(name))
        except (OSError, ValueError):
            continue  # the listing's own descriptor, closed by now
        fds[int(name)] = (stat.st_dev, stat.st_ino)
    return fds


# The kernel's TCP states (``tcpi_state`` of ``TCP_INFO``, include/net/tcp_states.h).
_TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT: the peer has closed its side",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}
_TCP_CLOSE = 7
_AF_UNIX = getattr(socket, "AF_UNIX", None)


def _endpoint(address: Any) -> str:
    if address in ("", b"", None):
        return "(unnamed)"
    if isinstance(address, bytes) and address.startswith(b"\0"):
        return f"@{address[1:].decode(errors='replace')} (abstract)"
    return format_address(address)


# Connections servers run by the harness accepted: (st_dev, st_ino) -> the client's
# address. Once a connection is over the kernel forgets its peer; a leaked
# descriptor of it is then described with the address noted here. Bounded: the
# latest _CONNECTIONS_KEPT connections.
_CONNECTIONS: dict[tuple[int, int], str] = {}
_CONNECTIONS_KEPT = 4096


def note_connection(sock: socket.socket, client_address: Any) -> None:
    """Note an accepted connection's client address (the harness calls this)."""
    try:
        stat_ = os.fstat(sock.fileno())
    except (OSError, ValueError):
        return
    with _UNIX_LOCK:
        if len(_CONNECTIONS) >= _CONNECTIONS_KEPT:
            del _CONNECTIONS[next(iter(_CONNECTIONS))]
        _CONNECTIONS[(stat_.st_dev, stat_.st_ino)] = _endpoint(client_address)


def describe_socket(sock: socket.socket) -> str:
    """What a socket is, as a leak report shows it: ``TCP 127.0.0.1:40312 ->
    127.0.0.1:35587 (ESTABLISHED)``, ``TCP listening on 127.0.0.1:35587``, ``UDP
    [::1]:59632``, ``Unix stream listening on /tmp/x/server.sock``, ``TCP, never
    bound or connected``."""
    stream = sock.type == socket.SOCK_STREAM
    if sock.family == _AF_UNIX:
        kind = f"Unix {'stream' if stream else 'datagram'}"
    elif sock.family in (socket.AF_INET, socket.AF_INET6):
        kind = "TCP" if stream else "UDP" if sock.type == socket.SOCK_DGRAM else f"type {sock.type}"
    else:
        kind = f"family {sock.family}, type {sock.type}"
    try:
        address = sock.getsockname()
    except OSError:
        address = None
    # Port 0, or no path: never bound (nor connected, which binds).
    unbound = address in ("", b"") or (isinstance(address, tuple) and address[1] == 0)
    local = "(unknown)" if address is None else _endpoint(address)
    try:
        listening = stream and bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        listening = False
    if listening:
        return f"{kind} listening on {local}"
    state = None
    if stream and kind == "TCP" and hasattr(socket, "TCP_INFO"):
        with contextlib.suppress(OSError):
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    try:
        text = f"{kind} {local} -> {_endpoint(sock.getpeername())}"
    except OSError:  # not connected, or no longer
        if unbound:
            return f"{kind}, never bound or connected"
        if not stream:
            return f"{kind} {local}"
        stat_ = os.fstat(sock.fileno())
        with _UNIX_LOCK:
            peer = _CONNECTIONS.get((stat_.st_dev, stat_.st_ino))
        if peer is not None:  # a connection the harness accepted, over by now
            over = "CLOSE" if state == _TCP_CLOSE else "not connected"
            return f"{kind} {local} -> {peer} ({over}: the connection is over)"
        if state == _TCP_CLOSE:  # the kernel has forgotten the peer
            return f"{kind} {local}, no peer (CLOSE: never connected, or its connection is over)"
        text = f"{kind} {local}, not connected"
    if state is not None:
        text += f" ({_TCP_STATES.get(state, f'state {state}')})"
    return text


def _describe_fd(fd: int) -> str:
    """``fd 16: TCP 127.0.0.1:40312 -> 127.0.0.1:35587 (ESTABLISHED)`` for a
    socket (its addresses read from the descriptor itself), ``fd 9 -> /tmp/f`` (what
    ``/proc/self/fd`` says) for anything else."""
    try:
        is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return f"fd {fd} (closed meanwhile)"
    if is_socket:
        try:
            sock = socket.socket(fileno=fd)  # borrowed: detached below, never closed
        except OSError:
            pass
        else:
            try:
                return f"fd {fd}: {describe_socket(sock)}"
            finally:
                sock.detach()
    try:
        return f"fd {fd} -> {os.readlink(os.path.join(_FD_DIRECTORY, str(fd)))}"
    except OSError:
        return f"fd {fd}"


def _new_descriptors(before: dict[int, tuple[int, int]]) -> list[str]:
    return [_describe_fd(fd) for fd, what in sorted(_fds().items()) if before.get(fd) != what]


def _child_pids() -> list[int] | None:
    """This process's children from ``/proc/self/task/*/children`` (every thread's),
    or None where the kernel does not offer it."""
    pids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as f:
                pids.extend(int(pid) for pid in f.read().split())
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        except OSError:
            return None  # no CONFIG_PROC_CHILDREN
    return pids


def _state(pid: int) -> str | None:
    """The state letter of ``pid`` ('R', 'S', 'Z'...) if it is our child."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) >= 2 and int(fields[1]) == os.getpid():
        return fields[0]
    return None


def _no_children() -> bool:
    """True when this process has no child at all, live or zombie, of any thread: one
    ``waitid(WNOHANG | WNOWAIT)`` (it reaps nothing) answers ECHILD, which spares the
    common case the procfs scan (~4 us against ~70 us and more with more threads)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    except (AttributeError, OSError):  # no waitid here: scan
        return False
    return False


def _children() -> dict[int, str]:
    """Live or zombie child processes of this process: {pid: state}."""
    if not _PROC or _no_children():
        return {}
    pids = _child_pids()
    if pids is None:  # scan every process
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    children = {}
    for pid in pids:
        state = _state(pid)
        if state is not None:
            children[pid] = state
    return children


def _cmdline(pid: int | str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def forked_children(before: Iterable[int] = ()) -> list[int]:
    """This process's live children, not in ``before``, that are forks of it that
    did not exec another program (the same command line): a forking server's
    children, a child a handler forked -- not a program the test ran."""
    own = _cmdline("self")
    return sorted(
        pid
        for pid, state in _children().items()
        if pid not in before and state != "Z" and own is not None and _cmdline(pid) == own
    )


def kill_children(pids: Iterable[int], reap_within: float = 0.5) -> list[str]:
    """SIGKILL each child and reap it (waiting at most ``reap_within`` seconds in
    all); how each ended, for a report."""
    fates: dict[int, str] = {}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            fates[pid] = "killed (SIGKILL)"
        except ProcessLookupError:
            fates[pid] = "had exited"
    deadline = time.monotonic() + reap_within
    for pid in fates:
        while True:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break  # reaped by its owner meanwhile
            if time.monotonic() >= deadline:
                fates[pid] += ", not reaped yet"
                break
            time.sleep(0.002)
    return [f"pid {pid}: {fate}" for pid, fate in fates.items()]


def watch_stray_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Non-daemon threads started since ``before`` that still run: handed to
    :func:`sockshock._util.watch_at_exit`, so that they cannot keep the process
    alive at exit (after a failed test too); returned."""
    stray = [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()]
    watch_at_exit(stray)
    return stray


@dataclass
class LeakReport:
    """What outlived an audited block."""

    threads: list[str] = field(default_factory=list)
    descriptors: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    socket_files: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.threads or self.descriptors or self.children or self.socket_files)

    def _kinds(self) -> list[tuple[str, str, list[str]]]:
        return [
            ("thread", "threads", self.threads),
            ("descriptor", "descriptors", self.descriptors),
            ("child process", "child processes", self.children),
            ("Unix socket file", "Unix socket files", self.socket_files),
        ]

    def summary(self) -> str:
        """One line: ``1 descriptor (fd 16: TCP 127.0.0.1:40312 -> 127.0.0.1:35587
        (ESTABLISHED)), 2 threads ('a' and 1 more)``; ``nothing`` when nothing."""
        parts = []
        for one, many, items in self._kinds():
            if items:
                first = items[0].splitlines()[0].rstrip(":")
                more = f" and {len(items) - 1} more" if len(items) > 1 else ""
                parts.append(f"{len(items)} {one if len(items) == 1 else many} ({first}{more})")
        return ", ".join(parts) or "nothing"

    def __str__(self) -> str:
        parts = ["leaked:"]
        for _, title, items in self._kinds():
            if items:
                parts.append(f"  {len(items)} {title}:")
                parts.extend("    " + line for item in items for line in item.splitlines())
        return "\n".join(parts)


class _Snapshot:
    def __init__(self, descriptors: bool) -> None:
        self.threads = set(threading.enumerate())
        self.fds = _fds() if descriptors else {}
        self.children = _children()
        with _UNIX_LOCK:
            self.unix_paths = max((order for order, _ in _UNIX_PATHS.values()), default=0)


def _check(before: _Snapshot, grace: float, descriptors: bool) -> LeakReport:
    deadline = time.monotonic() + grace
    new_threads = [t for t in threading.enumerate() if t not in before.threads]
    for thread in new_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    report = LeakReport()
    report.threads = [
        describe_thread(t, title="", note=", started by this block")
        for t in new_threads
        if t.is_alive()
    ]
    watch_stray_threads(before.threads)  # a non-daemon one must not hold the exit
    new_children = {}
    while True:
        new_children = {
            pid: state for pid, state in _children().items() if pid not in before.children
        }
        if not new_children or time.monotonic() >= deadline:
            break
        time.sleep(0.005)  # children exiting; the audit itself never reaps them
    # Reported, and nothing left behind: a running child is killed, each reaped.
    running = [pid for pid, state in new_children.items() if state != "Z"]
    fates = dict(zip(running, kill_children(running), strict=True))
    kill_children([pid for pid, state in new_children.items() if state == "Z"])  # reaps
    report.children = [
        f"pid {pid} (zombie, never reaped; reaped now)"
        if state == "Z"
        else f"pid {pid} (running; {fates[pid].split(': ', 1)[1]} by the audit)"
        for pid, state in sorted(new_children.items())
    ]
    if descriptors:
        report.descriptors = _new_descriptors(before.fds)
        if report.descriptors:  # a socket held only by a reference cycle is no leak
            gc.collect()  # (costly: only when something looks leaked)
            report.descriptors = _new_descriptors(before.fds)
    with _UNIX_LOCK:
        paths = [path for path, (order, _) in _UNIX_PATHS.items() if order > before.unix_paths]
    report.socket_files = [path for path in paths if os.path.exists(path)]
    return report


class LeakAudit:
    """A snapshot now, a check later: ``LeakAudit()`` ... ``.check()``.

    Args:
        descriptors: also compare open file descriptors (``/proc/self/fd``).
        grace: seconds to let ending threads and exiting children finish.
    """

    def __init__(self, *, descriptors: bool = True, grace: float = _GRACE) -> None:
        check_number("grace", grace, low=0, high=60, source="LeakAudit()")
        check_type("descriptors", descriptors, bool, source="LeakAudit()")
        self._descriptors = descriptors
        self._grace = grace
        self._before = _Snapshot(descriptors)

    def report(self) -> LeakReport:
        """What outlived the snapshot (after the grace period)."""
        return _check(self._before, self._grace, self._descriptors)

    def check(self) -> None:
        """Raise :class:`LeakError` if anything outlived the snapshot."""
        report = self.report()
        if report:
            raise LeakError(report)


@exported_by("sockshock")
@contextlib.contextmanager
def audit(*, descriptors: bool = True, grace: float = _GRACE) -> Iterator[LeakAudit]:
    """Fail if the block leaves threads, descriptors, child processes or Unix
    socket files behind.

    Args:
        descriptors: also compare open file descriptors (``/proc/self/fd``).
        grace: seconds to let ending threads and exiting children finish.

    Yields:
        The audit (its baseline taken on entry); the check runs on leaving.

    Raises:
        LeakError: (an ``AssertionError``) naming what leaked, unless the block
            itself raised (its exception is not masked).
    """
    leak_audit = LeakAudit(descriptors=descriptors, grace=grace)
    yield leak_audit
    leak_audit.check()

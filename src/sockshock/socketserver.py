"""A drop-in replacement for the standard library's :mod:`socketserver`.

Every public name of CPython 3.13's ``socketserver`` is here, under the same platform
conditions, with the same classes, template methods, class attributes, mix-in order
and constructor signatures, on Python 3.10 to 3.13 alike. Code written for the
standard module runs on this one unmodified; so do the standard library's own
subclasses (``http.server``, ``xmlrpc.server``, ``wsgiref``, ``logging.config``) when
``sys.modules["socketserver"]`` points here before they are imported.

What is different:

* **One seam.** Every socket a server creates comes from its *socket layer*
  (:class:`sockshock.layer.SocketLayer`): the class attribute ``socket_layer`` or the
  keyword-only constructor argument ``socket_layer=``. The default layer hands out
  plain ``socket.socket`` objects, so nothing is wrapped unless you ask for it.
* **Fixed defects** (each has a regression test in ``tests/``):

  - ``shutdown()`` wakes the serving loop through a wake-up descriptor instead of
    waiting for up to ``poll_interval`` (gh-88932); ``poll_interval`` now only sets
    how often ``service_actions()`` runs.
  - ``accept()`` failing with EMFILE, ENFILE, ENOBUFS or ENOMEM backs off
    (5 ms doubling to 100 ms, as Go's ``net/http`` does) instead of spinning at
    100% CPU; the loop keeps running ``service_actions()`` and honours
    ``shutdown()`` meanwhile, and serves the waiting client once descriptors free up.
  - UDP servers receive with ``MSG_DONTWAIT``, so a spurious readiness report
    (select(2), BUGS) can no longer block the serving loop.
  - ``shutdown()`` called from the thread that runs ``serve_forever()`` (or from a
    forked child) raises :class:`sockshock.ShutdownDeadlockError` instead of
    deadlocking forever (gh-83978).
  - ``request_queue_size`` defaults to 4096 (clamped by the kernel to
    ``net.core.somaxconn``) instead of 5, so bursts of connections are absorbed
    instead of waiting for SYN retransmits.
  - Threading (and pool) datagram servers wait for their handlers before
    ``server_close()`` closes the socket those handlers answer through; the
    stdlib closes it first and in-flight replies fail with EBADF.

* **A bounded pool.** :class:`ThreadPoolMixIn` and the ``ThreadPool*Server`` classes
  serve requests on at most ``max_workers`` threads with at most
  ``max_queued_requests`` accepted requests waiting; when both are used up the loop
  stops accepting (the kernel's backlog holds further clients) until a worker frees
  a slot. Nothing accepted is ever dropped.
"""

# The structure and the docstrings below follow CPython's Lib/socketserver.py
# (Python Software Foundation License), whose design -- template methods, mix-ins
# composed by declaration, class attributes as configuration -- we keep on purpose.

from __future__ import annotations

import collections
import os
import selectors
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from io import BufferedIOBase
from time import monotonic as time
from time import sleep
from typing import TYPE_CHECKING, Any, Callable

from sockshock._layer import SYSTEM_LAYER, SocketLayer, validate_layer
from sockshock._util import (
    ACCEPT_BACKOFF_MAX,
    ACCEPT_BACKOFF_MIN,
    ACCEPT_RESOURCE_ERRNOS,
    ShutdownDeadlockError,
    check_number,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__version__ = "0.4"

__all__ = ["BaseServer", "TCPServer", "UDPServer",
           "ThreadingUDPServer", "ThreadingTCPServer",
           "BaseRequestHandler", "StreamRequestHandler",
           "DatagramRequestHandler", "ThreadingMixIn",
           "ThreadPoolMixIn", "ThreadPoolTCPServer", "ThreadPoolUDPServer"]
if hasattr(os, "fork"):
    __all__.extend(["ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"])
if hasattr(socket, "AF_UNIX"):
    __all__.extend(["UnixStreamServer", "UnixDatagramServer",
                    "ThreadingUnixStreamServer",
                    "ThreadingUnixDatagramServer",
                    "ThreadPoolUnixStreamServer",
                    "ThreadPoolUnixDatagramServer"])
    if hasattr(os, "fork"):
        __all__.extend(["ForkingUnixStreamServer", "ForkingUnixDatagramServer"])

# poll/select have the advantage of not requiring any extra file descriptor,
# contrarily to epoll/kqueue (also, they require a single syscall).
_ServerSelector: type[selectors.BaseSelector]
if hasattr(selectors, "PollSelector"):
    _ServerSelector = selectors.PollSelector
else:
    _ServerSelector = selectors.SelectSelector

# accept() errors that mean "out of a resource, try later" (see _util._bounds).
_RESOURCE_ERRNOS = ACCEPT_RESOURCE_ERRNOS
_ACCEPT_BACKOFF_MIN = ACCEPT_BACKOFF_MIN
_ACCEPT_BACKOFF_MAX = ACCEPT_BACKOFF_MAX

# Receive datagrams without blocking even if the selector's report was spurious.
_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))

# Large enough for any burst a test or a real client population throws at a server;
# the kernel silently clamps it to net.core.somaxconn.
_DEFAULT_REQUEST_QUEUE_SIZE = 4096

class BaseServer:

    """Base class for server classes.

    Methods for the caller:

    - __init__(server_address, RequestHandlerClass, *, socket_layer=None)
    - serve_forever(poll_interval=0.5)
    - shutdown()
    - handle_request()  # if you do not use serve_forever()
    - fileno() -> int   # for selector

    Methods that may be overridden:

    - server_bind()
    - server_activate()
    - get_request() -> request, client_address
    - handle_timeout()
    - verify_request(request, client_address)
    - server_close()
    - process_request(request, client_address)
    - shutdown_request(request)
    - close_request(request)
    - service_actions()
    - handle_error()

    Methods for derived classes:

    - finish_request(request, client_address)

    Class variables that may be overridden by derived classes or
    instances:

    - timeout
    - address_family
    - socket_type
    - allow_reuse_address
    - allow_reuse_port
    - socket_layer

    Instance variables:

    - RequestHandlerClass
    - socket

    """

    timeout: float | None = None

    #: Where this server's sockets come from (see :mod:`sockshock.layer`).
    socket_layer: SocketLayer = SYSTEM_LAYER

    def __init__(self, server_address: Any, RequestHandlerClass: Callable[..., Any],
                 *, socket_layer: SocketLayer | None = None) -> None:
        """Constructor.  May be extended, do not override."""
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        if socket_layer is not None:
            self.socket_layer = validate_layer(
                socket_layer, source=f"{type(self).__name__}(socket_layer=...)")
        self.__is_shut_down = threading.Event()
        self.__shutdown_request = False
        # The wake-up socket pair exists while serve_forever() runs; the lock keeps
        # shutdown() from writing to it while the loop closes it.
        self.__wakeup_lock = threading.Lock()
        self.__wakeup: tuple[socket.socket, socket.socket] | None = None
        # (pid, thread ident) of the running serve_forever(), to refuse shutdown()
        # calls that could only deadlock.
        self.__serving: tuple[int, int] | None = None
        self.__accept_backoff = 0.0
        self.__accept_resume_at = 0.0

    def server_activate(self) -> None:
        """Called by constructor to activate the server.

        May be overridden.

        """
        pass

    def serve_forever(self, poll_interval: float | None = 0.5) -> None:
        """Handle one request at a time until shutdown.

        ``shutdown()`` wakes the loop at once; ``poll_interval`` is how often
        ``service_actions()`` runs when nothing happens. Ignores self.timeout.
        If you need to do periodic tasks, do them in another thread or in
        ``service_actions()``.
        """
        self.__is_shut_down.clear()
        try:
            with _ServerSelector() as selector, self.__wakeup_channel() as wakeup:
                if wakeup is not None:
                    selector.register(wakeup, selectors.EVENT_READ)
                listening = False
                while not self.__shutdown_request:
                    pause = self._accept_pause()
                    timeout = poll_interval
                    if pause == 0.0:
                        if not listening:
                            selector.register(self, selectors.EVENT_READ)
                            listening = True
                    else:
                        if listening:
                            selector.unregister(self)
                            listening = False
                        if pause is not None and (timeout is None or pause < timeout):
                            timeout = pause
                    ready = selector.select(timeout)
                    # bpo-35017: shutdown() called during select(), exit immediately.
                    if self.__shutdown_request:
                        break
                    acceptable = False
                    for key, _ in ready:
                        if key.fileobj is wakeup:
                            _drain_wakeups(wakeup)
                        else:
                            acceptable = True
                    if acceptable:
                        self._handle_request_noblock()

                    self.service_actions()
        finally:
            self.__shutdown_request = False
            self.__is_shut_down.set()

    @contextmanager
    def __wakeup_channel(self) -> Iterator[socket.socket | None]:
        pair: tuple[socket.socket, socket.socket] | None
        try:
            pair = socket.socketpair()
        except OSError:
            # Out of descriptors (EMFILE...) right now: serve anyway, polling for
            # shutdown every poll_interval as the stdlib does.
            pair = None
        try:
            if pair is not None:
                for end in pair:
                    end.setblocking(False)
            with self.__wakeup_lock:
                self.__wakeup = pair
                self.__serving = (os.getpid(), threading.get_ident())
            yield pair[0] if pair is not None else None
        finally:
            with self.__wakeup_lock:
                self.__wakeup = None
                self.__serving = None
                if pair is not None:
                    for end in pair:
                        end.close()

    def _wake(self) -> None:
        """Wake serve_forever() from select(); harmless when it is not running."""
        with self.__wakeup_lock:
            if self.__wakeup is not None:
                try:
                    self.__wakeup[1].send(b"\0")
                except OSError:
                    pass  # the buffer is full: a wake-up is already pending

    def shutdown(self) -> None:
        """Stops the serve_forever loop.

        Blocks until the loop has finished. This must be called while
        serve_forever() is running in another thread (or is about to run
        there); called from the thread that runs serve_forever() -- for example
        from a request handler of a synchronous server -- or from a forked child,
        it raises ShutdownDeadlockError instead of waiting forever.
        """
        serving = self.__serving
        if serving is not None:
            pid, ident = serving
            if pid != os.getpid():
                raise ShutdownDeadlockError(
                    f"shutdown() called in process {os.getpid()}, a child forked "
                    f"from process {pid} that runs serve_forever(), cannot stop that "
                    "loop and would wait forever; signal the parent instead (for "
                    "example with os.kill(os.getppid(), signal.SIGTERM)) or stop it "
                    "from the parent")
            if ident == threading.get_ident():
                raise ShutdownDeadlockError(
                    "shutdown() called from the thread running serve_forever() "
                    "(for example from a request handler of a synchronous server) "
                    "would wait for that thread to return, i.e. forever; call it "
                    "from another thread instead, e.g. "
                    "threading.Thread(target=server.shutdown).start()")
        self.__shutdown_request = True
        self._wake()
        self.__is_shut_down.wait()

    def service_actions(self) -> None:
        """Called by the serve_forever() loop.

        May be overridden by a subclass / Mixin to implement any code that
        needs to be run during the loop.
        """
        pass

    # The distinction between handling, getting, processing and finishing a
    # request is fairly arbitrary.  Remember:
    #
    # - handle_request() is the top-level call.  It calls selector.select(),
    #   get_request(), verify_request() and process_request()
    # - get_request() is different for stream or datagram sockets
    # - process_request() is the place that may fork a new process or create a
    #   new thread to finish the request
    # - finish_request() instantiates the request handler class; this
    #   constructor will handle the request all by itself

    def handle_request(self) -> None:
        """Handle one request, possibly blocking.

        Respects self.timeout.
        """
        # Support people who used socket.settimeout() to escape
        # handle_request before self.timeout was available.
        timeout = self.socket.gettimeout()
        if timeout is None:
            timeout = self.timeout
        elif self.timeout is not None:
            timeout = min(timeout, self.timeout)
        if timeout is not None:
            deadline = time() + timeout

        # Wait until a request arrives or the timeout expires - the loop is
        # necessary to accommodate early wakeups due to EINTR.
        with _ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)

            while True:
                pause = self._accept_pause()
                if pause:
                    # Wait out the back-off after an accept() resource error.
                    sleep(pause if timeout is None
                          else max(0.0, min(pause, deadline - time())))
                elif selector.select(timeout):
                    return self._handle_request_noblock()
                if timeout is not None:
                    timeout = deadline - time()
                    if timeout < 0:
                        return self.handle_timeout()

    def _handle_request_noblock(self) -> None:
        """Handle one request, without blocking.

        I assume that selector.select() has returned that the socket is
        readable before this function was called, so there should be no risk of
        blocking in get_request().
        """
        try:
            request, client_address = self.get_request()
        except OSError as exc:
            if exc.errno in _RESOURCE_ERRNOS:
                self.__back_off()
            return
        if self.__accept_backoff:
            self.__accept_backoff = 0.0
        if self.verify_request(request, client_address):
            try:
                self.process_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
                self.shutdown_request(request)
            except:
                self.shutdown_request(request)
                raise
        else:
            self.shutdown_request(request)

    def __back_off(self) -> None:
        delay = self.__accept_backoff * 2 or _ACCEPT_BACKOFF_MIN
        self.__accept_backoff = min(delay, _ACCEPT_BACKOFF_MAX)
        self.__accept_resume_at = time() + self.__accept_backoff

    def _accept_pause(self) -> float | None:
        """How long to leave the listening socket alone before accepting again.

        ``0.0`` means accept now; a positive number is the rest of a back-off after
        an accept() resource error; ``None`` means "until _wake() is called"
        (used by ThreadPoolMixIn while its queue is full).
        """
        if self.__accept_resume_at:
            remaining = self.__accept_resume_at - time()
            if remaining > 0:
                return remaining
            self.__accept_resume_at = 0.0
        return 0.0

    def handle_timeout(self) -> None:
        """Called if no new request arrives within self.timeout.

        Overridden by ForkingMixIn.
        """
        pass

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Verify the request.  May be overridden.

        Return True if we should proceed with this request.

        """
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        """Call finish_request.

        Overridden by ForkingMixIn and ThreadingMixIn.

        """
        self.finish_request(request, client_address)
        self.shutdown_request(request)

    def server_close(self) -> None:
        """Called to clean-up the server.

        May be overridden.

        """
        pass

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Finish one request by instantiating RequestHandlerClass."""
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request: Any) -> None:
        """Called to shutdown and close an individual request."""
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Called to clean up an individual request."""
        pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Handle an error gracefully.  May be overridden.

        The default is to print a traceback and continue.

        """
        print('-'*40, file=sys.stderr)
        print('Exception occurred during processing of request from',
            client_address, file=sys.stderr)
        import traceback
        traceback.print_exc()
        print('-'*40, file=sys.stderr)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        self.server_close()

    if TYPE_CHECKING:
        # Provided by the socket-based subclasses.
        socket: socket.socket

        def fileno(self) -> int: ...

        def get_request(self) -> tuple[Any, Any]: ...


def _drain_wakeups(reader: socket.socket) -> None:
    try:
        while reader.recv(4096):
            pass
    except OSError:
        pass  # BlockingIOError: nothing left


class TCPServer(BaseServer):

    """Base class for various socket-based server classes.

    Defaults to synchronous IP stream (i.e., TCP).

    Methods for the caller:

    - __init__(server_address, RequestHandlerClass, bind_and_activate=True,
               *, socket_layer=None)
    - serve_forever(poll_interval=0.5)
    - shutdown()
    - handle_request()  # if you don't use serve_forever()
    - fileno() -> int   # for selector

    Methods that may be overridden:

    - server_bind()
    - server_activate()
    - get_request() -> request, client_address
    - handle_timeout()
    - verify_request(request, client_address)
    - process_request(request, client_address)
    - shutdown_request(request)
    - close_request(request)
    - handle_error()

    Methods for derived classes:

    - finish_request(request, client_address)

    Class variables that may be overridden by derived classes or
    instances:

    - timeout
    - address_family
    - socket_type
    - request_queue_size (only for stream sockets)
    - allow_reuse_address
    - allow_reuse_port
    - socket_layer

    Instance variables:

    - server_address
    - RequestHandlerClass
    - socket

    """

    address_family: int = socket.AF_INET

    socket_type: int = socket.SOCK_STREAM

    request_queue_size: int = _DEFAULT_REQUEST_QUEUE_SIZE

    allow_reuse_address: bool = False

    allow_reuse_port: bool = False

    def __init__(self, server_address: Any, RequestHandlerClass: Callable[..., Any],
                 bind_and_activate: bool = True,
                 *, socket_layer: SocketLayer | None = None) -> None:
        """Constructor.  May be extended, do not override."""
        BaseServer.__init__(self, server_address, RequestHandlerClass,
                            socket_layer=socket_layer)
        self.socket = self.socket_layer.socket(self.address_family,
                                               self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except:
                self.server_close()
                raise

    def server_bind(self) -> None:
        """Called by constructor to bind the socket.

        May be overridden.

        """
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.allow_reuse_port and hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Called by constructor to activate the server.

        May be overridden.

        """
        self.socket.listen(self.request_queue_size)

    def server_close(self) -> None:
        """Called to clean-up the server.

        May be overridden.

        """
        self.socket.close()

    def fileno(self) -> int:
        """Return socket file number.

        Interface required by selector.

        """
        return self.socket.fileno()

    def get_request(self) -> tuple[Any, Any]:
        """Get the request and client address from the socket.

        May be overridden.

        """
        return self.socket.accept()

    def shutdown_request(self, request: Any) -> None:
        """Called to shutdown and close an individual request."""
        try:
            #explicitly shutdown.  socket.close() merely releases
            #the socket and waits for GC to perform the actual close.
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass #some platforms may raise ENOTCONN here
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Called to clean up an individual request."""
        request.close()


class UDPServer(TCPServer):

    """UDP server class."""

    allow_reuse_address = False

    allow_reuse_port = False

    socket_type = socket.SOCK_DGRAM

    max_packet_size = 8192

    def get_request(self) -> tuple[Any, Any]:
        # MSG_DONTWAIT: after a spurious readiness report the loop gets
        # BlockingIOError (and moves on) instead of blocking in recvfrom().
        data, client_addr = self.socket.recvfrom(self.max_packet_size, _DONTWAIT)
        return (data, self.socket), client_addr

    def server_activate(self) -> None:
        # No need to call listen() for UDP.
        pass

    def shutdown_request(self, request: Any) -> None:
        # No need to shutdown anything.
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        # No need to close anything.
        pass

# Type checkers see the mix-ins as servers; at run time they derive from object only,
# exactly like the standard library's, so the MRO of every combination is unchanged.
if TYPE_CHECKING:
    _MixInBase = TCPServer
else:
    _MixInBase = object

if hasattr(os, "fork"):
    class ForkingMixIn(_MixInBase):
        """Mix-in class to handle each request in a new process."""

        timeout: float | None = 300
        active_children: set[int] | None = None
        max_children = 40
        # If true, server_close() waits until all child processes complete.
        block_on_close = True

        def collect_children(self, *, blocking: bool = False) -> None:
            """Internal routine to wait for children that have exited."""
            if self.active_children is None:
                return

            # If we're above the max number of children, wait and reap them until
            # we go back below threshold. Note that we use waitpid(-1) below to be
            # able to collect children in size(<defunct children>) syscalls instead
            # of size(<children>): the downside is that this might reap children
            # which we didn't spawn, which is why we only resort to this when we're
            # above max_children.
            while len(self.active_children) >= self.max_children:
                try:
                    pid, _ = os.waitpid(-1, 0)
                    self.active_children.discard(pid)
                except ChildProcessError:
                    # we don't have any children, we're done
                    self.active_children.clear()
                except OSError:
                    break

            # Now reap all defunct children.
            for pid in self.active_children.copy():
                try:
                    flags = 0 if blocking else os.WNOHANG
                    pid, _ = os.waitpid(pid, flags)
                    # if the child hasn't exited yet, pid will be 0 and ignored by
                    # discard() below
                    self.active_children.discard(pid)
                except ChildProcessError:
                    # someone else reaped it
                    self.active_children.discard(pid)
                except OSError:
                    pass

        def handle_timeout(self) -> None:
            """Wait for zombies after self.timeout seconds of inactivity.

            May be extended, do not override.
            """
            self.collect_children()

        def service_actions(self) -> None:
            """Collect the zombie child processes regularly in the ForkingMixIn.

            service_actions is called in the BaseServer's serve_forever loop.
            """
            self.collect_children()

        def process_request(self, request: Any, client_address: Any) -> None:
            """Fork a new subprocess to process the request."""
            pid = os.fork()
            if pid:
                # Parent process
                if self.active_children is None:
                    self.active_children = set()
                self.active_children.add(pid)
                self.close_request(request)
                return
            else:
                # Child process.
                # This must never return, hence os._exit()!
                status = 1
                try:
                    self.finish_request(request, client_address)
                    status = 0
                except Exception:
                    self.handle_error(request, client_address)
                finally:
                    try:
                        self.shutdown_request(request)
                    finally:
                        os._exit(status)

        def server_close(self) -> None:
            super().server_close()
            self.collect_children(blocking=self.block_on_close)


class _Threads(list):  # type: ignore[type-arg]
    """
    Joinable list of all non-daemon threads.
    """
    def append(self, thread: threading.Thread) -> None:
        self.reap()
        if thread.daemon:
            return
        super().append(thread)

    def pop_all(self) -> list[threading.Thread]:
        self[:], result = [], self[:]
        return result

    def join(self) -> None:
        for thread in self.pop_all():
            thread.join()

    def reap(self) -> None:
        self[:] = (thread for thread in self if thread.is_alive())


class _NoThreads:
    """
    Degenerate version of _Threads.
    """
    def append(self, thread: threading.Thread) -> None:
        pass

    def join(self) -> None:
        pass


class ThreadingMixIn(_MixInBase):
    """Mix-in class to handle each request in a new thread."""

    # Decides how threads will act upon termination of the
    # main process
    daemon_threads = False
    # If true, server_close() waits until all non-daemonic threads terminate.
    block_on_close = True
    # Threads object
    # used by server_close() to wait for all threads completion.
    _threads: _Threads | _NoThreads = _NoThreads()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Same as in BaseServer but as a thread.

        In addition, exception handling is done here.

        """
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a new thread to process the request."""
        if self.block_on_close and '_threads' not in vars(self):
            self._threads = _Threads()
        t = threading.Thread(target = self.process_request_thread,
                             args = (request, client_address))
        t.daemon = self.daemon_threads
        self._threads.append(t)
        t.start()

    def server_close(self) -> None:
        if self.socket_type == socket.SOCK_DGRAM:
            # Datagram handlers answer through the server's own socket: let them
            # finish before it is closed (the stdlib closes it under them: EBADF).
            self._threads.join()
            super().server_close()
        else:
            super().server_close()
            self._threads.join()


class _WorkerPool:
    """At most ``max_workers`` threads serving a queue of at most ``max_queued``."""

    def __init__(self, server: ThreadPoolMixIn, max_workers: int, max_queued: int,
                 daemon: bool) -> None:
        self._server = server
        self._max_workers = max_workers
        self._max_queued = max_queued
        self._daemon = daemon
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._has_room = threading.Condition(self._lock)
        self._queue: collections.deque[tuple[Any, Any]] = collections.deque()
        self._workers: list[threading.Thread] = []
        self._idle = 0
        self._closing = False
        self._room_wanted = False

    @property
    def workers(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._workers)

    def wait_for_room(self) -> bool:
        """True (and arrange a wake-up of the serving loop) if the queue is full."""
        if len(self._queue) < self._max_queued:  # only the serving loop adds
            return False
        with self._lock:
            if len(self._queue) < self._max_queued:
                return False
            self._room_wanted = True
            return True

    def submit(self, request: Any, client_address: Any) -> None:
        with self._lock:
            while len(self._queue) >= self._max_queued and not self._closing:
                self._has_room.wait()  # only handle_request() gets here
            self._queue.append((request, client_address))
            if len(self._queue) > self._idle and len(self._workers) < self._max_workers:
                self._start_worker()
            else:
                self._has_work.notify()

    def _start_worker(self) -> None:
        number = len(self._workers) + 1
        thread = threading.Thread(
            target=self._work, daemon=self._daemon,
            name=f"{type(self._server).__name__} worker {number}")
        self._workers.append(thread)
        # As ThreadingMixIn does with its handler threads: whoever replaced
        # _threads (a test harness) hears of every worker before it starts.
        self._server._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        server = self._server
        try:
            while True:
                with self._lock:
                    while not self._queue:
                        if self._closing:
                            return
                        self._idle += 1
                        try:
                            self._has_work.wait()
                        finally:
                            self._idle -= 1
                    request, client_address = self._queue.popleft()
                    self._has_room.notify()
                    wake, self._room_wanted = self._room_wanted, False
                if wake:
                    server._wake()
                server.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._workers.remove(threading.current_thread())
                # A BaseException (SystemExit...) ended this worker: keep the
                # queue moving.
                if self._queue and not self._workers:
                    self._start_worker()

    def close(self, wait: bool) -> None:
        """Let the workers finish everything queued, then end; join them if ``wait``."""
        with self._lock:
            self._closing = True
            workers = list(self._workers)
            self._has_work.notify_all()
            self._has_room.notify_all()
        if wait:
            for thread in workers:
                thread.join()


class ThreadPoolMixIn(_MixInBase):
    """Mix-in class to handle requests on a bounded pool of threads.

    At most ``max_workers`` threads run handlers; at most ``max_queued_requests``
    accepted requests wait for a free worker. While both are used up,
    ``serve_forever()`` stops accepting -- further clients wait in the kernel's
    listen backlog (``request_queue_size``) -- and resumes as soon as a worker
    takes the next request. ``handle_request()`` blocks instead. No accepted
    request is ever dropped: ``server_close()`` lets the workers finish the queue.

    ``daemon_threads`` and ``block_on_close`` mean what they mean for
    ThreadingMixIn: workers are daemon threads if ``daemon_threads`` is true, and
    ``server_close()`` waits for the queue to drain and the (non-daemon) workers
    to end if ``block_on_close`` is true.
    """

    max_workers = 16
    max_queued_requests = 64
    daemon_threads = False
    block_on_close = True
    _pool: _WorkerPool | None = None
    # The pool joins its own workers; this only hears of them (see _start_worker).
    _threads: _Threads | _NoThreads = _NoThreads()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Run one request on a worker thread, exactly as ThreadingMixIn does."""
        ThreadingMixIn.process_request_thread(self, request, client_address)  # type: ignore[arg-type]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._check_pool_settings()
        super().__init__(*args, **kwargs)

    def _check_pool_settings(self) -> None:
        source = type(self).__name__
        check_number("max_workers", self.max_workers, low=1, integer=True,
                     source=source)
        check_number("max_queued_requests", self.max_queued_requests, low=1,
                     integer=True, source=source)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Queue the request for the next free worker thread."""
        pool = self._pool
        if pool is None:
            self._check_pool_settings()  # they may have changed since __init__
            pool = self._pool = _WorkerPool(
                self, self.max_workers, self.max_queued_requests,
                daemon=self.daemon_threads)
        pool.submit(request, client_address)

    def _accept_pause(self) -> float | None:
        pool = self._pool
        if pool is not None and pool.wait_for_room():
            return None
        return super()._accept_pause()

    def server_close(self) -> None:
        pool = self._pool
        wait = self.block_on_close and not self.daemon_threads
        if self.socket_type == socket.SOCK_DGRAM and pool is not None:
            # As ThreadingMixIn: datagram handlers need the server's socket.
            pool.close(wait=wait)
            super().server_close()
            return
        super().server_close()
        if pool is not None:
            pool.close(wait=wait)


if hasattr(os, "fork"):
    class ForkingUDPServer(ForkingMixIn, UDPServer): pass
    class ForkingTCPServer(ForkingMixIn, TCPServer): pass

class ThreadingUDPServer(ThreadingMixIn, UDPServer): pass
class ThreadingTCPServer(ThreadingMixIn, TCPServer): pass

class ThreadPoolUDPServer(ThreadPoolMixIn, UDPServer): pass
class ThreadPoolTCPServer(ThreadPoolMixIn, TCPServer): pass

if hasattr(socket, 'AF_UNIX'):

    class UnixStreamServer(TCPServer):
        address_family = socket.AF_UNIX

    class UnixDatagramServer(UDPServer):
        address_family = socket.AF_UNIX

    class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer): pass

    class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer): pass

    class ThreadPoolUnixStreamServer(ThreadPoolMixIn, UnixStreamServer): pass

    class ThreadPoolUnixDatagramServer(ThreadPoolMixIn, UnixDatagramServer): pass

    if hasattr(os, "fork"):
        class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer): pass

        class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer): pass

class BaseRequestHandler:

    """Base class for request handler classes.

    This class is instantiated for each request to be handled.  The
    constructor sets the instance variables request, client_address
    and server, and then calls the handle() method.  To implement a
    specific service, all you need to do is to derive a class which
    defines a handle() method.

    The handle() method can find the request as self.request, the
    client address as self.client_address, and the server (in case it
    needs access to per-server information) as self.server.  Since a
    separate instance is created for each request, the handle() method
    can define other arbitrary instance variables.

    """

    def __init__(self, request: Any, client_address: Any, server: BaseServer) -> None:
        self.request = request
        self.client_address = client_address
        self.server = server
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self) -> None:
        pass

    def handle(self) -> None:
        pass

    def finish(self) -> None:
        pass


# The following two classes make it possible to use the same service
# class for stream or datagram servers.
# Each class sets up these instance variables:
# - rfile: a file object from which receives the request is read
# - wfile: a file object to which the reply is written
# When the handle() method returns, wfile is flushed properly


class StreamRequestHandler(BaseRequestHandler):

    """Define self.rfile and self.wfile for stream sockets."""

    # Default buffer sizes for rfile, wfile.
    # We default rfile to buffered because otherwise it could be
    # really slow for large data (a getc() call per byte); we make
    # wfile unbuffered because (a) often after a write() we want to
    # read and we need to flush the line; (b) big writes to unbuffered
    # files are typically optimized by stdio even when big reads
    # aren't.
    rbufsize = -1
    wbufsize = 0

    # A timeout to apply to the request socket, if not None.
    timeout: float | None = None

    # Disable nagle algorithm for this socket, if True.
    # Use only when wbufsize != 0, to avoid small packets.
    disable_nagle_algorithm = False

    connection: Any
    rfile: Any
    wfile: Any

    def setup(self) -> None:
        self.connection = self.request
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP,
                                       socket.TCP_NODELAY, True)
        self.rfile = self.connection.makefile('rb', self.rbufsize)
        if self.wbufsize == 0:
            self.wfile = _SocketWriter(self.connection)
        else:
            self.wfile = self.connection.makefile('wb', self.wbufsize)

    def finish(self) -> None:
        if not self.wfile.closed:
            try:
                self.wfile.flush()
            except OSError:
                # A final socket error may have occurred here, such as
                # the local error ECONNABORTED.
                pass
        self.wfile.close()
        self.rfile.close()

class _SocketWriter(BufferedIOBase):
    """Simple writable BufferedIOBase implementation for a socket

    Does not hold data in a buffer, avoiding any need to call flush()."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._sock.sendall(b)
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._sock.fileno()

class DatagramRequestHandler(BaseRequestHandler):

    """Define self.rfile and self.wfile for datagram sockets."""

    packet: bytes
    socket: socket.socket
    rfile: Any
    wfile: Any

    def setup(self) -> None:
        from io import BytesIO
        self.packet, self.socket = self.request
        self.rfile = BytesIO(self.packet)
        self.wfile = BytesIO()

    def finish(self) -> None:
        self.socket.sendto(self.wfile.getvalue(), self.client_address)

"""A conformance kit for socket layers, in the spirit of ``trio.testing.check_one_way_stream``.

:func:`check_socket_layer` exercises a layer through real loopback sockets (and Unix
sockets in a private temporary directory) the way sockshock servers and the
standard library's request handlers use them. It does not depend on pytest: call it
from any test. A failure raises :class:`LayerConformanceError` naming the check.

The checks assume the layer passes data through unchanged: run them on a layer
with its faults switched off (for a fault layer: an empty plan).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from sockshock._layer._protocol import SocketLayer, validate_layer
from sockshock._util import LayerConformanceError, check_seconds, check_type, exported_by

__all__ = ["LayerConformanceError", "check_socket_layer"]

_PAYLOAD = bytes(range(256)) * 64  # 16 KiB, every byte value


def _expect(condition: bool, check: str, detail: str) -> None:
    if not condition:
        raise LayerConformanceError(f"{check}: {detail}")


def _recv_exactly(sock: Any, n: int) -> bytes:
    """Up to ``n`` bytes: fewer if the peer closes or the socket's timeout expires."""
    chunks = []
    while n:
        try:
            chunk = sock.recv(n)
        except TimeoutError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def _closing_all() -> Iterator[list[Any]]:
    opened: list[Any] = []
    try:
        yield opened
    finally:
        for sock in reversed(opened):
            with contextlib.suppress(OSError):
                sock.close()


def _stream_checks(layer: SocketLayer, family: int, address: Any, timeout: float) -> None:
    name = "AF_UNIX" if family == getattr(socket, "AF_UNIX", None) else "AF_INET"
    with _closing_all() as opened:
        listener = layer.socket(family, socket.SOCK_STREAM)
        opened.append(listener)
        for method in (
            "bind",
            "listen",
            "accept",
            "fileno",
            "close",
            "settimeout",
            "gettimeout",
            "setblocking",
            "getsockname",
            "setsockopt",
            "makefile",
            "recv",
            "recv_into",
            "send",
            "sendall",
            "shutdown",
            "getpeername",
            "__enter__",
            "__exit__",
        ):
            _expect(
                callable(getattr(listener, method, None)),
                f"{name} stream socket API",
                f"{type(listener).__name__} has no {method}()",
            )
        _expect(
            listener.family == family and listener.type == socket.SOCK_STREAM,
            f"{name} stream socket attributes",
            f"family/type are {listener.family!r}/{listener.type!r}",
        )
        listener.bind(address)
        listener.listen(8)
        bound = listener.getsockname()

        # A selector sees a pending connection on the layer's listening socket.
        client = socket.socket(family, socket.SOCK_STREAM)
        opened.append(client)
        client.settimeout(timeout)
        client.connect(bound)
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            _expect(
                bool(selector.select(timeout)),
                f"{name} selector on listener",
                "a pending connection was not reported readable",
            )

        conn, peer = listener.accept()
        opened.append(conn)
        _expect(
            isinstance(conn, type(listener)),
            f"{name} accept() stays in the layer",
            f"accept() returned {type(conn).__name__}, not {type(listener).__name__}",
        )
        if family == socket.AF_INET:
            _expect(
                peer == client.getsockname(),
                f"{name} accept() address",
                f"accept() gave {peer!r}, the client is {client.getsockname()!r}",
            )
            _expect(
                conn.getpeername() == client.getsockname(),
                f"{name} getpeername()",
                f"{conn.getpeername()!r} != {client.getsockname()!r}",
            )
        conn.settimeout(timeout)
        _expect(
            conn.gettimeout() == timeout,
            f"{name} settimeout()/gettimeout()",
            f"gettimeout() returned {conn.gettimeout()!r} after settimeout({timeout})",
        )

        # Bytes in both directions, through every API the handlers use.
        client.sendall(_PAYLOAD)
        got = _recv_exactly(conn, len(_PAYLOAD))
        _expect(
            got == _PAYLOAD, f"{name} recv()", f"got {len(got)} of {len(_PAYLOAD)} bytes intact"
        )
        conn.sendall(_PAYLOAD)
        got = _recv_exactly(client, len(_PAYLOAD))
        _expect(got == _PAYLOAD, f"{name} sendall()", f"client got {len(got)} bytes intact")
        client.sendall(b"abc")
        buffer = bytearray(3)
        view = memoryview(buffer)
        filled = 0
        while filled < 3:
            n = conn.recv_into(view[filled:])
            _expect(n > 0, f"{name} recv_into()", "returned 0 before the data arrived")
            filled += n
        _expect(bytes(buffer) == b"abc", f"{name} recv_into()", f"filled {bytes(buffer)!r}")
        sent = conn.send(b"xyz")
        _expect(
            isinstance(sent, int) and 1 <= sent <= 3,
            f"{name} send()",
            f"returned {sent!r} for 3 bytes",
        )
        _recv_exactly(client, sent)

        # makefile(), as StreamRequestHandler uses it.
        client.sendall(b"line one\nline two\n")
        with conn.makefile("rb") as rfile, conn.makefile("wb") as wfile:
            _expect(
                rfile.readline() == b"line one\n",
                f"{name} makefile('rb')",
                "readline() did not return the first line",
            )
            _expect(
                rfile.readline() == b"line two\n",
                f"{name} makefile('rb')",
                "readline() did not return the second line",
            )
            wfile.write(b"reply\n")
            wfile.flush()
        _expect(
            _recv_exactly(client, 6) == b"reply\n",
            f"{name} makefile('wb')",
            "the client did not get what was written",
        )

        # A selector sees data waiting on a connection socket.
        client.sendall(b"!")
        with selectors.DefaultSelector() as selector:
            selector.register(conn, selectors.EVENT_READ)
            _expect(
                bool(selector.select(timeout)),
                f"{name} selector on connection",
                "waiting data was not reported readable",
            )
        _expect(conn.recv(1) == b"!", f"{name} recv() after select()", "lost a byte")

        # Timeouts and non-blocking mode raise what the OS raises.
        conn.settimeout(0.01)
        try:
            conn.recv(1)
        except TimeoutError:
            pass
        except OSError as exc:
            raise LayerConformanceError(
                f"{name} recv() timeout: raised {exc!r}, expected TimeoutError"
            ) from exc
        else:
            raise LayerConformanceError(f"{name} recv() timeout: returned with no data")
        conn.setblocking(False)
        try:
            conn.recv(1)
        except BlockingIOError:
            pass
        else:
            raise LayerConformanceError(
                f"{name} non-blocking recv(): expected BlockingIOError with no data"
            )
        conn.settimeout(timeout)

        # Half-close and end of file.
        conn.shutdown(socket.SHUT_WR)
        _expect(
            client.recv(10) == b"",
            f"{name} shutdown(SHUT_WR)",
            "the client did not see end of file",
        )
        client.close()
        _expect(
            conn.recv(10) == b"",
            f"{name} end of file",
            "recv() did not return b'' after the peer closed",
        )

        # close() is final and idempotent; the context manager closes.
        conn.close()
        _expect(conn.fileno() == -1, f"{name} close()", "fileno() is not -1 after close()")
        conn.close()
        with layer.socket(family, socket.SOCK_STREAM) as extra:
            pass
        _expect(extra.fileno() == -1, f"{name} context manager", "__exit__ did not close")


def _datagram_checks(
    layer: SocketLayer, family: int, address: Any, client_address: Any, timeout: float
) -> None:
    name = "AF_UNIX" if family == getattr(socket, "AF_UNIX", None) else "AF_INET"
    with _closing_all() as opened:
        server = layer.socket(family, socket.SOCK_DGRAM)
        opened.append(server)
        for method in ("bind", "recvfrom", "recvfrom_into", "sendto", "fileno", "close"):
            _expect(
                callable(getattr(server, method, None)),
                f"{name} datagram socket API",
                f"{type(server).__name__} has no {method}()",
            )
        server.bind(address)
        server.settimeout(timeout)
        client = socket.socket(family, socket.SOCK_DGRAM)
        opened.append(client)
        client.settimeout(timeout)
        client.bind(client_address)
        client.sendto(b"ping", server.getsockname())
        with selectors.DefaultSelector() as selector:
            selector.register(server, selectors.EVENT_READ)
            _expect(
                bool(selector.select(timeout)),
                f"{name} selector on datagram socket",
                "a waiting datagram was not reported readable",
            )
        data, peer = server.recvfrom(8192)
        _expect(data == b"ping", f"{name} recvfrom()", f"got {data!r}")
        _expect(
            peer == client.getsockname(),
            f"{name} recvfrom() address",
            f"{peer!r} != {client.getsockname()!r}",
        )
        sent = server.sendto(b"pong", peer)
        _expect(sent == 4, f"{name} sendto()", f"returned {sent!r} for 4 bytes")
        _expect(client.recvfrom(100)[0] == b"pong", f"{name} sendto()", "client got no reply")
        client.sendto(b"into", server.getsockname())
        buffer = bytearray(16)
        n, peer = server.recvfrom_into(buffer)
        _expect(
            bytes(buffer[:n]) == b"into", f"{name} recvfrom_into()", f"filled {bytes(buffer[:n])!r}"
        )
        flags = getattr(socket, "MSG_DONTWAIT", 0)
        if flags:
            # In blocking mode (a server's), MSG_DONTWAIT must not wait.
            server.settimeout(None)
            try:
                server.recvfrom(100, flags)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise LayerConformanceError(
                    f"{name} recvfrom(MSG_DONTWAIT): raised {exc!r}, expected "
                    "BlockingIOError at once"
                ) from exc
            else:
                raise LayerConformanceError(
                    f"{name} recvfrom(MSG_DONTWAIT): expected BlockingIOError with no datagram"
                )
        server.close()
        _expect(server.fileno() == -1, f"{name} datagram close()", "fileno() is not -1")


@exported_by("sockshock.layer")
def check_socket_layer(
    layer: SocketLayer, *, unix: bool | None = None, timeout: float = 5.0
) -> None:
    """Check that ``layer`` behaves like the operating system's sockets.

    Exercises TCP and UDP on 127.0.0.1 and, where available (or when ``unix`` is
    true), Unix stream and datagram sockets in a private temporary directory:
    creation, ``bind``/``listen``/``accept`` (which must return sockets of the same
    layer), selectors, ``recv``/``recv_into``/``send``/``sendall``, ``makefile``,
    timeouts (``TimeoutError``) and non-blocking mode (``BlockingIOError``),
    ``shutdown``, end of file, ``close`` and the context manager, ``recvfrom``/
    ``recvfrom_into``/``sendto`` and ``MSG_DONTWAIT``.

    Args:
        layer: the socket layer to check, with any fault injection switched off.
        unix: check Unix sockets too; default: where ``socket.AF_UNIX`` exists.
        timeout: the bound on every wait for data (loopback answers in
            microseconds; a broken layer fails a check after this long).

    Raises:
        LayerConformanceError: (an ``AssertionError``) naming the first check that
            failed and what was observed.
    """
    validate_layer(layer, source="check_socket_layer()")
    check_seconds("timeout", timeout, source="check_socket_layer()")
    checks: list[tuple[str, Callable[[], None]]] = [
        (
            "AF_INET stream",
            lambda: _stream_checks(layer, socket.AF_INET, ("127.0.0.1", 0), timeout),
        ),
        (
            "AF_INET datagram",
            lambda: _datagram_checks(
                layer, socket.AF_INET, ("127.0.0.1", 0), ("127.0.0.1", 0), timeout
            ),
        ),
    ]
    if unix is None:
        unix = hasattr(socket, "AF_UNIX")
    check_type("unix", unix, bool, source="check_socket_layer()")
    directory = tempfile.mkdtemp(prefix="sockshock-layercheck-") if unix else ""
    try:
        if unix:
            af_unix = socket.AF_UNIX
            checks += [
                (
                    "AF_UNIX stream",
                    lambda: _stream_checks(
                        layer, af_unix, os.path.join(directory, "stream"), timeout
                    ),
                ),
                (
                    "AF_UNIX datagram",
                    lambda: _datagram_checks(
                        layer,
                        af_unix,
                        os.path.join(directory, "dgram"),
                        os.path.join(directory, "client"),
                        timeout,
                    ),
                ),
            ]
        for label, check in checks:
            try:
                check()
            except LayerConformanceError:
                raise
            except Exception as exc:
                raise LayerConformanceError(f"{label} sockets: unexpected {exc!r}") from exc
    finally:
        if directory:
            shutil.rmtree(directory, ignore_errors=True)

"""The fault-proxy benchmark's two outside processes (so that neither competes with
the proxy for its GIL).

``python _proxy_peer.py server``: a threaded TCP server on 127.0.0.1 that prints
its port. A connection's first byte picks what it does: ``S`` (sink) reads until
end of file and answers with the byte count (8 bytes, big-endian); ``E`` (echo)
sends back everything it reads.

``python _proxy_peer.py client``: reads one JSON command per line on stdin and
answers one JSON number per line on stdout:

* ``{"name": "bulk", "address": [host, port], "nbytes": N}`` -> seconds to push N
  bytes through a sink connection and get the count back.
* ``{"name": "latency", "address": [host, port], "count": N}`` -> the median
  seconds of N one-byte round trips on an echo connection.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time

_BLOCK = 256 * 1024


def serve() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    print(listener.getsockname()[1], flush=True)

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            mode = conn.recv(1)
            if mode == b"S":
                total = 0
                buffer = bytearray(_BLOCK)
                while n := conn.recv_into(buffer):
                    total += n
                conn.sendall(total.to_bytes(8, "big"))
            elif mode == b"E":
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=lambda: sys.stdin.read() and None, daemon=True).start()
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def bulk(address: tuple[str, int], nbytes: int) -> float:
    block = b"x" * _BLOCK
    with socket.create_connection(address, timeout=30) as client:
        start = time.perf_counter()
        client.sendall(b"S")
        sent = 0
        while sent < nbytes:
            client.sendall(block)
            sent += len(block)
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while len(reply) < 8:
            chunk = client.recv(8 - len(reply))
            if not chunk:
                raise ConnectionError("the sink closed early")
            reply += chunk
        seconds = time.perf_counter() - start
    assert int.from_bytes(reply, "big") == sent, "bytes were lost on the way"
    return seconds


def latency(address: tuple[str, int], count: int) -> float:
    with socket.create_connection(address, timeout=30) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.sendall(b"E")
        times = []
        for _ in range(count):
            start = time.perf_counter()
            client.sendall(b"x")
            if client.recv(1) != b"x":
                raise ConnectionError("the echo closed early")
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def client() -> None:
    for line in sys.stdin:
        command = json.loads(line)
        host, port = command["address"]
        assert host in ("127.0.0.1", "::1"), "the benchmark only talks to loopback"
        if command["name"] == "bulk":
            result = bulk((host, port), command["nbytes"])
        else:
            result = latency((host, port), command["count"])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    serve() if sys.argv[1:] == ["server"] else client()

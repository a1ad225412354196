"""The benchmark's load generator: a separate process, so that clients and servers
do not compete for one GIL. Reads one JSON command per line on stdin, answers one
JSON number (seconds taken) per line on stdout."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time


def connections(address: tuple[str, int], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        with socket.create_connection(address, timeout=10) as client:
            client.sendall(b"ping\n")
            client.recv(10)
    return time.perf_counter() - start


def round_trips(address: tuple[str, int], count: int) -> float:
    with socket.create_connection(address, timeout=10) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        for _ in range(count):
            client.sendall(b"ping\n")
            client.recv(10)
        return time.perf_counter() - start


def datagrams(address: tuple[str, int], count: int) -> float:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(10)
        client.connect(address)
        start = time.perf_counter()
        for _ in range(count):
            client.send(b"ping")
            client.recv(10)
        return time.perf_counter() - start


_TLS: list[ssl.SSLContext] = []  # the client context, once a command brought the CA


def _tls_client(address: tuple[str, int]) -> ssl.SSLSocket:
    client = socket.create_connection(address, timeout=10)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _TLS[0].wrap_socket(client, server_hostname="localhost")


def tls_handshakes(address: tuple[str, int], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        with _tls_client(address) as client:
            client.sendall(b"ping\n")
            client.recv(10)
    return time.perf_counter() - start


def tls_round_trips(address: tuple[str, int], count: int) -> float:
    with _tls_client(address) as client:
        start = time.perf_counter()
        for _ in range(count):
            client.sendall(b"ping\n")
            client.recv(10)
        return time.perf_counter() - start


COMMANDS = {
    "connections": connections,
    "round_trips": round_trips,
    "datagrams": datagrams,
    "tls_handshakes": tls_handshakes,
    "tls_round_trips": tls_round_trips,
}

for line in sys.stdin:
    command = json.loads(line)
    host, port = command["address"]
    assert host in ("127.0.0.1", "::1"), "the benchmark only talks to loopback"
    if "ca" in command and not _TLS:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=command["ca"])
        _TLS.append(context)
    seconds = COMMANDS[command["name"]]((host, port), command["count"])
    print(json.dumps(seconds), flush=True)

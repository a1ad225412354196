"""A server in another process, for the fault-proxy tests (standard library only).

    python _echo_peer.py tcp|udp|unix [PATH]

Listens on 127.0.0.1 port 0 (or on PATH for ``unix``), prints its address as one
JSON line, and echoes: each stream connection gets back every line it sends (and is
closed after the client's end of file), each datagram is answered with itself. Runs
until its stdin is closed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading


def echo_lines(conn: socket.socket) -> None:
    with conn, conn.makefile("rb") as lines:
        for line in lines:
            conn.sendall(line)


def main() -> None:
    transport = sys.argv[1]
    if transport == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
    elif transport == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(sys.argv[2])
        sock.listen()
    else:
        sock = socket.create_server(("127.0.0.1", 0))
    print(json.dumps(sock.getsockname()), flush=True)

    def serve() -> None:
        while True:
            try:
                if transport == "udp":
                    data, peer = sock.recvfrom(65535)
                    sock.sendto(data, peer)
                else:
                    conn, _ = sock.accept()
                    threading.Thread(target=echo_lines, args=(conn,), daemon=True).start()
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    sys.stdin.read()  # until the test closes our stdin
    sock.close()
    if transport == "unix":
        os.unlink(sys.argv[2])


if __name__ == "__main__":
    main()

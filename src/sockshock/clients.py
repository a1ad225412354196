"""Real misbehaving clients over real sockets, against any server on this machine.

Each client takes an address -- ``(host, port)`` on loopback or a Unix socket
path; anything else is refused -- and returns a :class:`ClientRun` that has not
started: ``.result()`` runs it in the calling thread, ``with ... as run:`` runs it
in the background for the length of the block (stopped, joined and closed on the
way out). Every run is bounded in time and size (see :data:`LIMITS`).

Stream clients (TCP, Unix stream), giving a :class:`StreamResult`:

* :func:`slowloris` -- an HTTP-style request whose headers drip in forever.
* :func:`drip_feed` -- a payload sent a few bytes at a time, with pauses.
* :func:`never_reads` -- requests sent, replies never read: the server's writes back up.
* :func:`half_close` -- a request, ``shutdown(SHUT_WR)``, the reply read to end of file.
* :func:`rst_on_close` -- part of a request, then a reset (``SO_LINGER`` {1, 0}).
* :func:`connect_and_idle` -- connections that send nothing.
* :func:`connection_flood` -- many connections as fast as possible, bounded concurrency.

Datagram client (UDP, Unix datagram), giving a :class:`DatagramResult`:

* :func:`datagram_burst` -- many datagrams as fast as possible, replies counted.

:class:`ClientSpec` is the same clients as plain data, for scenario files.
"""

from sockshock._clients import (
    connect_and_idle,
    connection_flood,
    datagram_burst,
    drip_feed,
    half_close,
    never_reads,
    rst_on_close,
    slowloris,
)

__all__ = [
    "connect_and_idle",
    "connection_flood",
    "datagram_burst",
    "drip_feed",
    "half_close",
    "never_reads",
    "rst_on_close",
    "slowloris",
]

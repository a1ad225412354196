"""Faults carried out on real sockets: ``FaultLayer`` (``_layer``), ``FaultySocket`` (``_socket``) with its stream and datagram paths (``_stream``, ``_datagram``), forked children's decisions (``_forks``), and what they share (``_common``: a connection's record, the kernel's errors)."""

from sockshock._wire._common import DONTWAIT, PEEK, Connection, os_error, timed_out
from sockshock._wire._datagram import DatagramFaults, mangle
from sockshock._wire._forks import (
    die_with_parent,
    forks,
    note_client_socket,
    prepare_die_with_parent,
    release_inherited_clients,
    wait_for_fork,
)
from sockshock._wire._layer import FaultLayer
from sockshock._wire._socket import FaultySocket
from sockshock._wire._stream import StreamFaults

__all__ = [
    "DONTWAIT",
    "PEEK",
    "Connection",
    "DatagramFaults",
    "FaultLayer",
    "FaultySocket",
    "StreamFaults",
    "die_with_parent",
    "forks",
    "mangle",
    "note_client_socket",
    "os_error",
    "prepare_die_with_parent",
    "release_inherited_clients",
    "timed_out",
    "wait_for_fork",
]

"""In-memory sockets with the kernel's semantics, for ``drive()``: buffers (``_buffers``), ``MemorySocket`` and ``MemoryLayer`` (``_socket``), and a client script carried out in memory (``_client``)."""

from sockshock._memory._buffers import MemoryEndpoint, never
from sockshock._memory._client import MemoryClient
from sockshock._memory._socket import MemoryLayer, MemorySocket

__all__ = [
    "MemoryClient",
    "MemoryEndpoint",
    "MemoryLayer",
    "MemorySocket",
    "never",
]

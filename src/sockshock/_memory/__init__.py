"""In-memory sockets with the kernel's semantics, for ``drive()``: buffers (``_buffers``), ``MemorySocket`` and ``MemoryLayer`` (``_socket``), and a client script carried out in memory (``_client``)."""

from sockshock._memory._buffers import MAX_OUTPUT, SEND_BUFFER, MemoryEndpoint, never
from sockshock._memory._client import MemoryClient
from sockshock._memory._socket import MemoryLayer, MemorySocket, WantsDescriptor

__all__ = [
    "MAX_OUTPUT",
    "SEND_BUFFER",
    "MemoryClient",
    "MemoryEndpoint",
    "MemoryLayer",
    "MemorySocket",
    "WantsDescriptor",
    "never",
]

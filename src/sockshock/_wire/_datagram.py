"""The datagram data path: lost, duplicated, reordered, corrupted, cut datagrams.

Incoming datagrams that are duplicated or held back for reordering are put back
into the kernel's queue through a private loopback socket (a Unix one for Unix
sockets), so that the server's selector sees them like any other datagram; held
ones are released as soon as nothing else is waiting, so reordering happens within
bursts, as on a real network.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import shutil
import socket
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from sockshock._faults import DATAGRAM_IN, DATAGRAM_OUT, DROP, Decision
from sockshock._wire._common import DONTWAIT, PEEK, LayerView, os_error

__all__ = ["DatagramFaults"]


def mangle(data: bytes, decision: Decision) -> bytes:
    """Cut and corrupt a datagram as ``decision`` says."""
    if decision.truncate is not None:
        data = data[: decision.truncate]
    if decision.corrupt and data:
        flipped = bytearray(data)
        for bit in decision.corrupt:
            position = bit % (len(flipped) * 8)
            flipped[position // 8] ^= 1 << (position % 8)
        data = bytes(flipped)
    return data


class DatagramFaults:
    """Receives and sends of a datagram socket that obey a FaultLayer (a mix-in for
    :class:`~sockshock.FaultySocket`)."""

    _sockshock_layer: LayerView
    _sockshock_datagram: bool
    _sockshock_closing: threading.Event

    if TYPE_CHECKING:
        _closed: bool

        @property
        def family(self) -> socket.AddressFamily: ...
        def _raw_recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]: ...
        def _raw_recvfrom_into(
            self, buffer: Any, nbytes: int = 0, flags: int = 0, /
        ) -> tuple[int, Any]: ...
        def _raw_sendto(self, data: Any, *args: Any) -> int: ...
        def getsockname(self) -> Any: ...
        def gettimeout(self) -> float | None: ...
        def _sockshock_delay(
            self, kind: str, decision: Decision, timeout: float | None
        ) -> Decision: ...

    def _sockshock_datagram_init(self) -> None:
        self._sockshock_helper: socket.socket | None = None
        self._sockshock_helper_dir: str | None = None
        self._sockshock_reinjected: collections.deque[Any] = collections.deque()
        self._sockshock_held_in: list[list[Any]] = []  # [countdown, data, address]
        self._sockshock_held_out: list[list[Any]] = []  # [countdown, data, address, flags]

    # -- putting datagrams back into the queue ---------------------------------------

    def _sockshock_helper_socket(self) -> socket.socket:
        """A private socket that puts datagrams back into this socket's queue."""
        if self._sockshock_helper is None:
            helper = socket.socket(self.family, socket.SOCK_DGRAM)
            try:
                if self.family == getattr(socket, "AF_UNIX", None):
                    self._sockshock_helper_dir = tempfile.mkdtemp(prefix="sockshock-reinject-")
                    helper.bind(os.path.join(self._sockshock_helper_dir, "helper"))
                else:
                    helper.bind(("::1", 0) if self.family == socket.AF_INET6 else ("127.0.0.1", 0))
            except BaseException:
                helper.close()
                raise
            self._sockshock_helper = helper
        return self._sockshock_helper

    def _sockshock_reinject(self, data: bytes, address: Any) -> None:
        helper = self._sockshock_helper_socket()
        self._sockshock_reinjected.append(address)
        try:
            helper.sendto(data, self.getsockname())
        except OSError:
            self._sockshock_reinjected.pop()

    def _sockshock_was_reinjected(self, address: Any) -> bool:
        """Whether a datagram from ``address`` is one this socket put back."""
        helper = self._sockshock_helper
        return helper is not None and address == helper.getsockname()

    def _sockshock_queue_empty(self) -> bool:
        if not DONTWAIT:
            return True
        try:
            self._raw_recvfrom(1, PEEK | DONTWAIT)
        except OSError:
            return True
        return False

    def _sockshock_release_held(self, everything: bool) -> None:
        """Count down held datagrams; put the due ones (or all) back in the queue."""
        keep = []
        for item in self._sockshock_held_in:
            item[0] -= 1
            if everything or item[0] <= 0:
                self._sockshock_reinject(item[1], item[2])
            else:
                keep.append(item)
        self._sockshock_held_in = keep

    # -- receiving ---------------------------------------------------------------------

    def _sockshock_recvfrom(self, bufsize: int, flags: int) -> tuple[bytes, Any]:
        layer = self._sockshock_layer
        while True:
            data, address = self._raw_recvfrom(bufsize, flags)
            if self._sockshock_reinjected and self._sockshock_was_reinjected(address):
                address = self._sockshock_reinjected.popleft()  # decided already
                if self._sockshock_held_in:
                    self._sockshock_release_held(everything=self._sockshock_queue_empty())
                return data, address
            peer = layer.datagram_peer(address)
            decision = layer.ask(DATAGRAM_IN, peer, len(data))
            peer.offset["in"] += len(data)
            if decision.delay:
                self._sockshock_delay(DATAGRAM_IN, decision, self.gettimeout())
            if decision.action == DROP or decision.hold:
                if decision.hold and decision.action != DROP:
                    self._sockshock_held_in.append([decision.hold, data, address])
                    if self._sockshock_queue_empty():
                        self._sockshock_release_held(everything=True)
                if flags & DONTWAIT or self.gettimeout() == 0.0:
                    raise os_error(errno.EAGAIN)  # what a spurious wake-up looks like
                continue  # a blocking receive waits for the next datagram
            data = mangle(data, decision)
            for _ in range(decision.duplicate):
                self._sockshock_reinject(data, address)
            if self._sockshock_held_in:
                self._sockshock_release_held(everything=self._sockshock_queue_empty())
            return data, address

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        if not self._sockshock_datagram or flags & PEEK or self._closed:
            return self._raw_recvfrom(bufsize, flags)
        return self._sockshock_recvfrom(bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        if not self._sockshock_datagram or flags & PEEK or self._closed:
            return self._raw_recvfrom_into(buffer, nbytes, flags)
        view = memoryview(buffer).cast("B")
        size = nbytes or view.nbytes
        data, address = self._sockshock_recvfrom(size, flags)
        view[: len(data)] = data
        return len(data), address

    # -- sending ---------------------------------------------------------------------

    def sendto(self, data: Any, *args: Any) -> int:
        if not self._sockshock_datagram or self._closed:
            return self._raw_sendto(data, *args)
        flags, address = (0, args[0]) if len(args) == 1 else args
        payload = bytes(data)
        peer = self._sockshock_layer.datagram_peer(address)
        decision = self._sockshock_layer.ask(DATAGRAM_OUT, peer, len(payload))
        peer.offset["out"] += len(payload)
        if decision.delay:
            self._sockshock_delay(DATAGRAM_OUT, decision, self.gettimeout())
        if decision.action != DROP:
            payload = mangle(payload, decision)
            if decision.hold:
                self._sockshock_held_out.append([decision.hold, payload, address, flags])
            else:
                for _ in range(1 + decision.duplicate):
                    self._raw_sendto(payload, flags, address)
        self._sockshock_release_held_out(everything=False)
        return len(data) if not isinstance(data, memoryview) else data.nbytes

    def _sockshock_release_held_out(self, everything: bool) -> None:
        keep = []
        for item in self._sockshock_held_out:
            item[0] -= 1
            if everything or item[0] < 0:
                with contextlib.suppress(OSError):
                    self._raw_sendto(item[1], item[3], item[2])
            else:
                keep.append(item)
        self._sockshock_held_out = keep

    def _sockshock_datagram_cleanup(self) -> None:
        if self._sockshock_held_out:
            self._sockshock_release_held_out(everything=True)
        if self._sockshock_helper is not None:
            self._sockshock_helper.close()
            self._sockshock_helper = None
        if self._sockshock_helper_dir is not None:
            shutil.rmtree(self._sockshock_helper_dir, ignore_errors=True)
            self._sockshock_helper_dir = None

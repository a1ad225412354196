"""The socket layer: where every socket of a sockshock server comes from.

* :class:`SocketLayer` -- the protocol every layer implements; :data:`SYSTEM_LAYER`
  -- the default (plain ``socket.socket`` objects, no wrapper, no overhead).
* :func:`check_socket_layer` -- the conformance kit any implementation can run
  (it raises ``AssertionError`` on a difference from the kernel's sockets).
* :class:`FaultLayer` -- the layer that carries a :class:`~sockshock.faults.FaultPlan`
  out: ``socketserver.TCPServer(address, Handler, socket_layer=FaultLayer(plan))``.
* :class:`VirtualClock` -- time that passes only when slept through, for the
  layer's latencies and timeouts (``serving(..., clock=VirtualClock())``).
"""

from sockshock._layer import SYSTEM_LAYER, SocketLayer, check_socket_layer
from sockshock._util import VirtualClock
from sockshock._wire import FaultLayer

__all__ = ["SYSTEM_LAYER", "FaultLayer", "SocketLayer", "VirtualClock", "check_socket_layer"]

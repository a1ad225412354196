"""Small request handlers for demonstrations, checks and tests.

``LineEcho`` and ``DatagramEcho`` are correct; the ``Naive*`` handlers carry the
classic bugs that sockshock's faults expose (one ``recv`` is not one message; one
``send`` is not the whole buffer).
"""

from sockshock._harness import DatagramEcho, LineEcho, NaiveRecvEcho, NaiveSendEcho

__all__ = ["DatagramEcho", "LineEcho", "NaiveRecvEcho", "NaiveSendEcho"]

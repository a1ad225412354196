"""Small request handlers for demonstrations, checks and tests.

``LineEcho`` and ``DatagramEcho`` are correct; the ``Naive*`` handlers carry the
classic bugs that sockshock's faults expose (one ``recv`` is not one message; one
``send`` is not the whole buffer): ``sockshock run --handler
sockshock.handlers:NaiveRecvEcho`` shows what a failing check looks like.
"""

from sockshock._harness import DatagramEcho, LineEcho, NaiveRecvEcho, NaiveSendEcho

__all__ = ["DatagramEcho", "LineEcho", "NaiveRecvEcho", "NaiveSendEcho"]

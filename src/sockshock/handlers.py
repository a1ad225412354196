"""Small request handlers for demonstrations, checks and tests.

``LineEcho`` and ``DatagramEcho`` are correct; the ``Naive*`` handlers carry the
classic bugs that sockshock's faults expose (one ``recv`` is not one message; one
``send`` is not the whole buffer): ``sockshock run --handler
sockshock.handlers:NaiveRecvEcho`` shows what a failing check looks like.
"""

from sockshock._harness import DatagramEcho, LineEcho, NaiveRecvEcho, NaiveSendEcho
from sockshock._util import publish

__all__ = ["DatagramEcho", "LineEcho", "NaiveRecvEcho", "NaiveSendEcho"]

publish(__name__, globals(), __all__)

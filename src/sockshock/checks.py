"""sockshock's built-in robustness checks, from Python -- what ``sockshock run`` runs.

In the spirit of ``trio.testing.check_one_way_stream``: one call runs every check
against a server class and raises ``AssertionError`` naming each failure::

    from sockshock.checks import check_server

    def test_my_server_holds_up():
        check_server(MyServer, MyHandler, request=b"GET / HTTP/1.0\\r\\n\\r\\n")

The checks: an echo round trip; partial reads; partial writes; a slow client
while another is served; lost datagrams with client retries; an abrupt shutdown
mid-request -- each under its faults with its own seed, the server's stop bounded,
and a leak audit. No pytest needed.
"""

from sockshock._checks import check_server

__all__ = ["check_server"]

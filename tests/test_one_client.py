"""One client for every in-process connection to a server under test
(``sockshock._clients.connect`` and ``request``): the handle's ``connect()``, the
scenario runner's load, the built-in checks and scripted runs use it -- TCP, UDP,
Unix stream and Unix datagram alike."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

import sockshock
from sockshock import faults as F
from sockshock import scenarios
from sockshock._clients import ClientSocket, connect, request
from sockshock.errors import InvalidArgument
from sockshock.handlers import DatagramEcho, LineEcho
from sockshock.scripts import ClientScript, Read, ScriptRun, Send

SERVERS = [
    ("ThreadingTCPServer", LineEcho, "stream"),
    ("ThreadingUDPServer", DatagramEcho, "datagram"),
    ("ThreadingUnixStreamServer", LineEcho, "stream"),
    ("ThreadingUnixDatagramServer", DatagramEcho, "datagram"),
]


@pytest.mark.parametrize(
    ("server", "handler", "transport"), SERVERS, ids=[name for name, _, _ in SERVERS]
)
def test_one_client_reaches_every_kind_of_server(server: str, handler: Any, transport: str) -> None:
    with sockshock.serving(server, handler) as srv:
        with connect(srv.address, transport, timeout=2) as client:
            assert request(client, b"ping\n", until=b"\n") == b"ping\n"
        with srv.connect(timeout=2) as client:  # the handle's connect() is that client
            assert isinstance(client, ClientSocket)
            assert request(client, b"pong\n", until=b"\n") == b"pong\n"


def test_a_unix_datagram_clients_own_path_goes_when_it_closes() -> None:
    with sockshock.serving("UnixDatagramServer", DatagramEcho) as srv:
        with connect(srv.address, "datagram", timeout=2) as client:
            path = client.getsockname()
            assert os.path.exists(path)
            assert request(client, b"x") == b"x"
        assert not os.path.exists(os.path.dirname(path))  # closed: its directory is gone
        with srv.connect() as kept:  # the handle's: removed at the block's end
            path = kept.getsockname()
    assert not os.path.exists(os.path.dirname(path))


def test_the_scenario_load_is_answered_by_a_unix_datagram_server() -> None:
    # Before the one client: "answered: 0 of 10" (its load client had no path to be
    # answered on).
    result = scenarios.run(scenarios.load("lossy-udp"), server_class="ThreadingUnixDatagramServer")
    answered = next(check for check in result.checks if check.name == "answered")
    assert answered.passed, answered.detail
    assert answered.detail.startswith("10 of 10 requests answered")


def test_request_reads_to_a_marker_to_the_end_or_sends_a_lost_datagram_again() -> None:
    with sockshock.serving("ThreadingTCPServer", LineEcho) as srv:
        with srv.connect() as client:
            client.sendall(b"first\n")
            assert request(client, b"second\n", until=b"second\n") == b"first\nsecond\n"
        with srv.connect() as client:  # to the end: the handler answers, then closes
            assert request(client, b"line\n", half_close=True) == b"line\n"
    with sockshock.serving(
        "ThreadingUDPServer", DatagramEcho, faults=[F.DropDatagrams(first_ops=1)]
    ) as srv:
        with srv.connect(timeout=2) as client:
            assert request(client, b"again", resend=0.01) == b"again"
        assert [event.decision.action for event in srv.plan.log] == ["drop"]


def test_no_reply_in_time_is_a_timeout_error() -> None:
    with (
        sockshock.serving("ThreadingTCPServer", LineEcho) as srv,
        srv.connect() as client,
        pytest.raises(TimeoutError),
    ):
        request(client, b"no end of line", until=b"\n", timeout=0.05)


def test_a_scripted_run_goes_over_the_one_client() -> None:
    with sockshock.serving("ThreadingUnixDatagramServer", DatagramEcho) as srv:
        run = ScriptRun(ClientScript((Send(b"a"), Read())), srv.connect())
        assert run.run()[-1].data == b"a"


def test_the_client_speaks_tls_when_asked() -> None:
    pytest.importorskip("trustme")
    with (
        sockshock.serving("ThreadingTCPServer", LineEcho, tls=True) as srv,
        connect(srv.address, tls=srv.client_context()) as client,
    ):
        assert client.version() is not None
        assert request(client, b"secret\n", until=b"\n") == b"secret\n"


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((("10.0.0.1", 80),), {}, r"address=\('10\.0\.0\.1', 80\) is not a loopback address"),
        ((("127.0.0.1", 80), "tcp"), {}, r"transport='tcp' must be one of 'stream', 'datagram'"),
        (("/tmp/" + "x" * 200,), {}, r"Unix socket paths are at most \d+ bytes"),
        ((("127.0.0.1", 80),), {"timeout": 0}, r"timeout=0"),
        ((("127.0.0.1", 80), "datagram"), {"tls": "yes"}, r"expected an ssl.SSLContext"),
    ],
)
def test_bad_input_gets_one_clear_error_before_any_socket(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with sockshock.audit(), pytest.raises(InvalidArgument, match=match):
        connect(*args, **kwargs)


def test_tls_over_datagrams_is_refused() -> None:
    import ssl

    context = ssl.create_default_context()
    with pytest.raises(InvalidArgument, match="TLS runs over stream connections"):
        connect(("127.0.0.1", 53), "datagram", tls=context)


def test_a_refused_connection_is_the_oss_error_and_leaves_nothing_open() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused
        with sockshock.audit(), pytest.raises(ConnectionRefusedError):
            connect(("127.0.0.1", port), timeout=1)

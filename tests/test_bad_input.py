"""One clear error per bad input, up front, across the API, the plugin and the CLI.

Every case gets a ``sockshock.errors.InvalidArgument`` (a ``ValueError``/``TypeError``)
-- or, from pytest and the command line, a usage error -- whose message names the
value. ``python tests/test_bad_input.py`` prints the table kept in
``tests/README.md`` (a test checks that it is current).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sockshock
import sockshock.socketserver as ss
from sockshock import _harness
from sockshock import faults as F
from sockshock.handlers import DatagramEcho, LineEcho

pytest_plugins = ["pytester"]


def serve(
    server_class: Any = "ThreadingTCPServer", handler: Any = LineEcho, **kwargs: Any
) -> Callable[[], None]:
    def call() -> None:
        with sockshock.serving(server_class, handler, **kwargs):
            raise AssertionError("started anyway")

    return call


def _instance_and_handler() -> None:
    server = ss.TCPServer(("127.0.0.1", 0), LineEcho)
    try:
        with sockshock.serving(server, LineEcho):
            raise AssertionError("started anyway")
    finally:
        server.server_close()


def _stops_within(*args: Any, **kwargs: Any) -> Callable[[], None]:
    def call() -> None:
        with sockshock.serving("TCPServer", LineEcho) as srv:
            srv.assert_stops_within(*args, **kwargs)

    return call


def _on_handle(
    use: Callable[[sockshock.ServerHandle], Any], server_class: str = "TCPServer"
) -> Callable[[], None]:
    def call() -> None:
        with sockshock.serving(server_class, LineEcho) as srv:
            use(srv)

    return call


def _stopped_then_measured() -> None:
    with sockshock.serving("TCPServer", LineEcho) as srv:
        srv.server.shutdown()
        srv.thread.join(5)
        assert not srv.thread.is_alive()
        srv.assert_stops_within(1)


def _proxy_stop(timeout: Any) -> Callable[[], None]:
    def call() -> None:
        proxy = sockshock.FaultProxy(("127.0.0.1", 9)).start()
        try:
            proxy.stop(timeout=timeout)
        finally:
            proxy.stop()

    return call


def _script_run_without_socket() -> None:
    from sockshock.scripts import ClientScript, ScriptRun, Send

    ScriptRun(ClientScript([Send(b"x")]), None)  # type: ignore[arg-type]


def _clients() -> Any:
    import sockshock.clients

    return sockshock.clients


def _tls() -> Any:
    import sockshock.tls

    return sockshock.tls


def _strategies() -> Any:
    import sockshock.strategies

    return sockshock.strategies


# (where, what was given, the call, a fragment the message must contain)
API_CASES: list[tuple[str, str, Callable[[], Any], str]] = [
    (
        "serving()",
        "server_class='ThreadingTCPServr'",
        serve("ThreadingTCPServr"),
        "did you mean 'ThreadingTCPServer'?",
    ),
    ("serving()", "server_class=42", serve(42), "server_class=42 (type=int)"),
    ("serving()", "server_class=BaseServer", serve(ss.BaseServer), "has no socket"),
    (
        "serving()",
        "server_class='no_such_module:X'",
        serve("no_such_module:X"),
        "cannot import 'X' from 'no_such_module'",
    ),
    (
        "serving()",
        "server_class='.rel:X'",
        serve(".rel:X"),
        "server_class='.rel:X': cannot import 'X' from '.rel': a relative module name has no "
        "package",
    ),
    ("serving()", "handler_class=None", serve(handler=None), "handler_class=None"),
    (
        "serving()",
        "a stream handler on a datagram server",
        serve("UDPServer", LineEcho),
        "LineEcho is a StreamRequestHandler, but UDPServer is a datagram server",
    ),
    (
        "serving()",
        "a datagram handler on a stream server",
        serve("TCPServer", DatagramEcho),
        "DatagramEcho is a DatagramRequestHandler, but TCPServer is a stream server",
    ),
    (
        "serving()",
        "address=('0.0.0.0', 0)",
        serve(address=("0.0.0.0", 0)),
        "loopback addresses only",
    ),
    (
        "serving()",
        "address=('::1', 0) on an IPv4 server",
        serve(address=("::1", 0)),
        "is an IPv6 address but ThreadingTCPServer listens on IPv4",
    ),
    (
        "serving()",
        "address='127.0.0.1:0'",
        serve(address="127.0.0.1:0"),
        "must be a (host, port) tuple",
    ),
    (
        "serving()",
        "address=('127.0.0.1', 70000)",
        serve(address=("127.0.0.1", 70000)),
        "port=70000 must be in [0, 65535]",
    ),
    (
        "serving()",
        "a Unix path in a missing directory",
        serve("UnixStreamServer", address="/no/such/dir/s.sock"),
        "the directory '/no/such/dir' does not exist",
    ),
    ("serving()", "shutdown_timeout='5'", serve(shutdown_timeout="5"), "shutdown_timeout='5'"),
    (
        "serving()",
        "shutdown_timeout=0",
        serve(shutdown_timeout=0),
        "shutdown_timeout=0 must be in (0, 3600]",
    ),
    ("serving()", "shutdown_timeout=-1", serve(shutdown_timeout=-1), "shutdown_timeout=-1"),
    (
        "serving()",
        "shutdown_timeout=nan",
        serve(shutdown_timeout=math.nan),
        "shutdown_timeout=nan must be a finite number",
    ),
    (
        "serving()",
        "shutdown_timeout=inf",
        serve(shutdown_timeout=math.inf),
        "shutdown_timeout=inf must be a finite number",
    ),
    (
        "serving()",
        "poll_interval=-1",
        serve(poll_interval=-1),
        "poll_interval=-1 must be in (0, 3600]",
    ),
    ("serving()", "poll_interval=0", serve(poll_interval=0), "poll_interval=0"),
    (
        "serving()",
        "faults='PartialReads'",
        serve(faults="PartialReads"),
        "faults='PartialReads' (type=str)",
    ),
    (
        "serving()",
        "faults=[PartialReads(3)] on a UDP server",
        serve("UDPServer", DatagramEcho, faults=[F.PartialReads(3)]),
        "PartialReads(max_chunk=3) cannot fire on UDPServer: it acts on stream connections only",
    ),
    (
        "serving()",
        "faults=[DropDatagrams()] on a TCP server",
        serve(faults=[F.DropDatagrams()]),
        "DropDatagrams() cannot fire on ThreadingTCPServer: it acts on datagrams only",
    ),
    ("serving()", "seed=1.5", serve(faults=[], seed=1.5), "seed=1.5"),
    ("serving()", "seed=-1", serve(faults=[], seed=-1), "seed=-1 must be in [0,"),
    ("serving()", "seed= without faults", serve(seed=1), "only apply with faults="),
    (
        "serving()",
        "a plan and another seed",
        serve(faults=F.FaultPlan(seed=1), seed=2),
        "seed=2 conflicts with the plan's own seed=1",
    ),
    ("serving()", "clock='fast'", serve(faults=[], clock="fast"), "clock='fast'"),
    (
        "serving()",
        "request_queue=4 (a near miss)",
        serve(request_queue=4),
        "did you mean 'request_queue_size'?",
    ),
    (
        "serving()",
        "verify_request=... (a method)",
        serve(verify_request=lambda *a: True),
        "verify_request is a method of ThreadingTCPServer; subclass the server to change it",
    ),
    ("serving()", "server_kwargs=[]", serve(server_kwargs=[]), "server_kwargs=[]"),
    (
        "serving()",
        "max_children=0 on a forking server",
        serve("ForkingTCPServer", max_children=0),
        "max_children=0 must be in [1, inf] (from serving())",
    ),
    (
        "serving()",
        "max_children='x'",
        serve("ForkingTCPServer", max_children="x"),
        "max_children='x' (type=str) (from serving())",
    ),
    (
        "serving()",
        "max_children=1.5",
        serve("ForkingTCPServer", max_children=1.5),
        "max_children=1.5 (type=float) (from serving())",
    ),
    (
        "serving()",
        "max_workers=0",
        serve("ThreadPoolTCPServer", max_workers=0),
        "max_workers=0 must be in [1, inf] (from serving())",
    ),
    (
        "serving()",
        "request_queue_size=10**20",
        serve(request_queue_size=10**20),
        "request_queue_size=100000000000000000000 must be in [0, 2147483647] (from serving())",
    ),
    (
        "serving()",
        "timeout=-1",
        serve(timeout=-1),
        "timeout=-1 must be in [0, 3600] (from serving())",
    ),
    (
        "serving()",
        "max_packet_size=0",
        serve("UDPServer", DatagramEcho, max_packet_size=0),
        "max_packet_size=0 must be in [1, 16777216] (from serving())",
    ),
    (
        "serving()",
        "daemon_threads='yes'",
        serve(daemon_threads="yes"),
        "expected True or False but got daemon_threads='yes' (type=str) (from serving())",
    ),
    (
        "serving()",
        "allow_reuse_port=1",
        serve(allow_reuse_port=1),
        "expected True or False but got allow_reuse_port=1 (type=int) (from serving())",
    ),
    (
        "serving()",
        "socket_layer='x'",
        serve(socket_layer="x"),
        "socket_layer='x' (type=str) from serving() has no callable socket(",
    ),
    (
        "serving()",
        "socket=None",
        serve(socket=None),
        "socket=None (from serving()): socket is not a setting, the server sets it itself",
    ),
    (
        "serving()",
        "timed_out=False (a near miss)",
        serve(timed_out=False),
        "did you mean 'timeout'? (To give it an attribute of that name all the same, subclass it: "
        "class MyThreadingTCPServer(ThreadingTCPServer): timed_out = ...)",
    ),
    (
        "serving()",
        "server_kwargs={'foo': 1}",
        serve(server_kwargs={"foo": 1}),
        "ThreadingTCPServer() takes no keyword argument 'foo'; it takes bind_and_activate, "
        "socket_layer",
    ),
    (
        "serving()",
        "server_kwargs={'server_address': ...}",
        serve(server_kwargs={"server_address": ("127.0.0.1", 0)}),
        "serving() passes ThreadingTCPServer's 'server_address' itself; give address= instead",
    ),
    (
        "serving()",
        "address=('127.0.0.1', 0, 0, 0)",
        serve(address=("127.0.0.1", 0, 0, 0)),
        "address=('127.0.0.1', 0, 0, 0) for ThreadingTCPServer must be a (host, port) tuple",
    ),
    (
        "serving()",
        "a Unix path over the platform's limit",
        serve("UnixStreamServer", address="/tmp/" + "x" * 200),
        "is 205 bytes long; Unix socket paths are at most",
    ),
    (
        "serving()",
        "a Unix path that is a directory",
        serve("UnixStreamServer", address="/tmp"),
        "'/tmp' is a directory that exists already",
    ),
    (
        "serving()",
        "a Unix path with NUL",
        serve("UnixStreamServer", address="/tmp/a\0b"),
        "cannot contain a NUL byte",
    ),
    (
        "serving()",
        "clock=VirtualClock (the class)",
        serve(faults=[], clock=sockshock.layer.VirtualClock),
        "a class (from serving()); give an instance: clock=VirtualClock()",
    ),
    (
        "serving()",
        "seed=2**64 without faults",
        serve(seed=2**64),
        "seed=18446744073709551616 (from serving()): clock= and seed= only apply with faults=",
    ),
    (
        "serving()",
        "clock='fast' without faults",
        serve(clock="fast"),
        "clock='fast' (from serving()): clock= and seed= only apply with faults=",
    ),
    (
        "serving()",
        "expect_errors='OSError'",
        serve(expect_errors="OSError"),
        "expect_errors='OSError'",
    ),
    (
        "serving()",
        "an instance and a handler",
        lambda: _instance_and_handler(),
        "a ready-made server already has its handler",
    ),
    (
        "models",
        "Latency(1e10)",
        lambda: F.Latency(1e10),
        "seconds=10000000000.0 must be in [0, 3600]",
    ),
    ("models", "Latency(inf)", lambda: F.Latency(math.inf), "seconds=inf must be a finite"),
    (
        "models",
        "SlowClient(pause=1e6)",
        lambda: F.SlowClient(pause=1e6),
        "pause=1000000.0 must be in [0, 3600]",
    ),
    (
        "models",
        "Bandwidth(1e-300)",
        lambda: F.Bandwidth(1e-300),
        "bytes_per_second=1e-300 must be in [1, 1e+12]",
    ),
    (
        "models",
        "DuplicateDatagrams(copies=10**7)",
        lambda: F.DuplicateDatagrams(copies=10**7),
        "copies=10000000 must be in [1, 100]",
    ),
    (
        "models",
        "CorruptDatagrams(bits=10**9)",
        lambda: F.CorruptDatagrams(bits=10**9),
        "bits=1000000000 must be in [1, 1024]",
    ),
    (
        "models",
        "ReorderDatagrams(window=10**9)",
        lambda: F.ReorderDatagrams(window=10**9),
        "window=1000000000 must be in [1, 1000]",
    ),
    (
        "models",
        "TruncateDatagrams(10**6)",
        lambda: F.TruncateDatagrams(10**6),
        "max_size=1000000 must be in [0, 65535]",
    ),
    (
        "models",
        "AcceptErrors(times=10**9)",
        lambda: F.AcceptErrors(times=10**9),
        "times=1000000000 must be in [1, 1000000]",
    ),
    (
        "models",
        "EOFAfter(0, side='out')",
        lambda: F.EOFAfter(0, side="out"),
        "EOFAfter() takes no argument side='out'; its arguments: nbytes, direction",
    ),
    (
        "models",
        "connections=range(-1, 10**18)",
        lambda: F.PartialReads(3, connections=range(-1, 10**18)),
        "connections=-1 must be in [0, inf] (from PartialReads)",
    ),
    (
        "models",
        "AcceptErrors(after_bytes=5)",
        lambda: F.AcceptErrors(after_bytes=5),
        "after_bytes=5 cannot scope accept()",
    ),
    (
        "models",
        "AcceptErrors('ENOENT')",
        lambda: F.AcceptErrors("ENOENT"),
        "errno='ENOENT' is not an error accept() gives; it can give EAGAIN,",
    ),
    (
        "models",
        "connections=[]",
        lambda: F.PartialReads(3, connections=[]),
        "connections=[] selects no connection at all",
    ),
    ("models", "address=5", lambda: F.PartialReads(3, address=5), "address=5 (type=int)"),
    ("FaultPlan", "seed=2**70", lambda: F.FaultPlan(seed=2**70), "seed=1180591620717411303424"),
    ("FaultPlan", "log_limit=-1", lambda: F.FaultPlan(log_limit=-1), "log_limit=-1"),
    (
        "FaultProxy",
        "faults='PartialReads(3)'",
        lambda: sockshock.FaultProxy(("127.0.0.1", 9), faults="PartialReads(3)"),
        "faults='PartialReads(3)' (type=str) (from FaultProxy)",
    ),
    (
        "FaultProxy",
        "listen='/tmp/a\\0b' (a NUL byte)",
        lambda: sockshock.FaultProxy("/tmp/up.sock", listen="/tmp/a\0b"),
        "a Unix socket path cannot contain a NUL byte (from FaultProxy)",
    ),
    (
        "FaultProxy",
        "upstream='127.0.0.1:80' with transport='unix'",
        lambda: sockshock.FaultProxy("127.0.0.1:80"),
        "upstream='127.0.0.1:80' looks like HOST:PORT, not a Unix socket path",
    ),
    (
        "FaultProxy.stop()",
        "timeout='x'",
        _proxy_stop("x"),
        "timeout='x' (type=str) (from FaultProxy.stop())",
    ),
    (
        "FaultProxy.stop()",
        "timeout=nan",
        _proxy_stop(math.nan),
        "timeout=nan must be a finite number (from FaultProxy.stop())",
    ),
    (
        "FaultProxy.stop()",
        "timeout=-1",
        _proxy_stop(-1),
        "timeout=-1 must be in (0, 3600] (from FaultProxy.stop())",
    ),
    (
        "drive()",
        "server_attrs={1: 2}",
        lambda: sockshock.drive(LineEcho, b"x", server_attrs={1: 2}),
        "expected attribute names (str) as the keys of server_attrs but got 1 (type=int)",
    ),
    (
        "drive()",
        "faults=[AcceptErrors()]",
        lambda: sockshock.drive(LineEcho, b"x", faults=[F.AcceptErrors()]),
        "AcceptErrors() cannot fire on drive() of a TCPServer handler (a connection already accepted, no TLS): it fails accept() calls, and none happen here",
    ),
    (
        "drive()",
        "faults=[PartialReads(3, layer='plaintext')]",
        lambda: sockshock.drive(LineEcho, b"x", faults=[F.PartialReads(3, layer="plaintext")]),
        "layer='plaintext' faults act above TLS, and this runs without TLS",
    ),
    (
        "ScriptRun()",
        "sock=None",
        lambda: _script_run_without_socket(),
        "expected a connected socket (srv.connect(), say) but got sock=None",
    ),
    (
        "strategies",
        "fault_models('PartialReads')",
        lambda: _strategies().fault_models("PartialReads"),
        "model='PartialReads' (type=str) (the class itself: sockshock.faults.PartialReads)",
    ),
    (
        "strategies",
        "client_scripts(endings='read')",
        lambda: _strategies().client_scripts(endings="read"),
        "expected a list of endings ('half_close', 'close', 'reset', 'stop_midway') but got "
        "endings='read'",
    ),
    (
        "strategies",
        "datagram_schedules(max_window=0)",
        lambda: _strategies().datagram_schedules([b"x"], max_window=0),
        "max_window=0 must be in [1, 1000] (from datagram_schedules())",
    ),
    (
        "sockshock.tls",
        "client_context(minimum_version='TLSv9')",
        lambda: _tls().client_context(minimum_version="TLSv9"),
        "minimum_version='TLSv9' is not a TLS version",
    ),
    (
        "sockshock.tls",
        "client_context(alpn_protocols='h2')",
        lambda: _tls().client_context(alpn_protocols="h2"),
        "alpn_protocols='h2' (type=str); for this one alone, ['h2']",
    ),
    (
        "sockshock.tls",
        "a minimum version above the maximum",
        lambda: _tls().server_context(minimum_version="TLSv1_3", maximum_version="TLSv1_2"),
        "minimum_version=TLSv1_3 is above maximum_version=TLSv1_2",
    ),
    (
        "clients",
        "slowloris('127.0.0.1:80')",
        lambda: _clients().slowloris("127.0.0.1:80"),
        "looks like HOST:PORT, not a Unix socket path; for TCP pass a (host, port) tuple: "
        "address=('127.0.0.1', 80)",
    ),
    (
        "clients",
        "drip_feed(('::1', 80, 'x', 0))",
        lambda: _clients().drip_feed(("::1", 80, "x", 0)),
        "flowinfo='x' (type=str)",
    ),
    (
        "clients",
        "a Unix path with a NUL byte",
        lambda: _clients().half_close("/tmp/a\0b"),
        "a Unix socket path cannot contain a NUL byte (from half_close())",
    ),
    (
        "FaultLayer",
        "clock='fast'",
        lambda: sockshock.layer.FaultLayer(clock="fast"),
        "clock='fast'",
    ),
    (
        "FaultLayer",
        "plan='PartialReads'",
        lambda: sockshock.layer.FaultLayer("PartialReads"),
        "'PartialReads' (type=str)",
    ),
    ("VirtualClock", "start=-1", lambda: sockshock.layer.VirtualClock(-1), "start=-1"),
    (
        "VirtualClock",
        "sleep('x')",
        lambda: sockshock.layer.VirtualClock().sleep("x"),  # type: ignore[arg-type]
        "seconds='x' (type=str) (from VirtualClock.sleep())",
    ),
    (
        "VirtualClock",
        "sleep(inf)",
        lambda: sockshock.layer.VirtualClock().sleep(math.inf),
        "seconds=inf must be a finite number (from VirtualClock.sleep())",
    ),
    (
        "VirtualClock",
        "sleep(-1)",
        lambda: sockshock.layer.VirtualClock().sleep(-1),
        "seconds=-1 must be in [0, inf] (from VirtualClock.sleep())",
    ),
    (
        "server_kinds()",
        "transport='streem'",
        lambda: sockshock.server_kinds(transport="streem"),
        "transport='streem' must be one of 'stream', 'datagram'",
    ),
    (
        "server_kinds()",
        "concurrency=5",
        lambda: sockshock.server_kinds(concurrency=5),
        "concurrency=5 (type=int)",
    ),
    ("assert_stops_within()", "seconds=-1", _stops_within(-1), "seconds=-1 must be in (0,"),
    ("assert_stops_within()", "busy=-1", _stops_within(1, busy=-1), "busy=-1 must be in [0,"),
    (
        "assert_stops_within()",
        "tolerance=0.5",
        _stops_within(1, tolerance=0.5),
        "tolerance=0.5 must be in [1, 100]",
    ),
    (
        "assert_stops_within()",
        "request='str'",
        _stops_within(1, busy=1, request="str"),
        "expected bytes but got request='str' (type=str) (from assert_stops_within())",
    ),
    (
        "assert_stops_within()",
        "after the server stopped",
        _stopped_then_measured,
        "TCPServer has stopped already, so there is no stop left to measure",
    ),
    (
        "connect()",
        "tls='yes'",
        _on_handle(lambda srv: srv.connect(tls="yes")),
        "expected True, False or an ssl.SSLContext but got tls='yes' (type=str) (from connect())",
    ),
    (
        "connect()",
        "tls=True on a server without TLS",
        _on_handle(lambda srv: srv.connect(tls=True)),
        "tls=True (from connect()): TCPServer was not served with tls=, so sockshock runs no TLS",
    ),
    (
        "connect()",
        "timeout=-1",
        _on_handle(lambda srv: srv.connect(timeout=-1)),
        "timeout=-1 must be in (0, 3600] (from connect())",
    ),
    (
        "connect()",
        "timeout='x'",
        _on_handle(lambda srv: srv.connect(timeout="x")),
        "timeout='x' (type=str) (from connect())",
    ),
    (
        "connect()",
        "timeout=nan",
        _on_handle(lambda srv: srv.connect(timeout=math.nan)),
        "timeout=nan must be a finite number (from connect())",
    ),
    (
        "wait_stopped()",
        "timeout='x'",
        _on_handle(lambda srv: srv.wait_stopped("x")),
        "timeout='x' (type=str) (from wait_stopped())",
    ),
    (
        "wait_stopped()",
        "timeout=inf",
        _on_handle(lambda srv: srv.wait_stopped(math.inf)),
        "timeout=inf must be a finite number (from wait_stopped())",
    ),
    (
        "temporary_path()",
        "'/etc/passwd'",
        _on_handle(lambda srv: srv.temporary_path("/etc/passwd")),
        "name='/etc/passwd' (from temporary_path()) must be a plain file name",
    ),
    (
        "temporary_path()",
        "'../../etc/x'",
        _on_handle(lambda srv: srv.temporary_path("../../etc/x")),
        "name='../../etc/x' (from temporary_path()) must be a plain file name",
    ),
    ("audit()", "grace=-1", lambda: _harness.LeakAudit(grace=-1), "grace=-1 must be in [0,"),
]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [(c, f) for _, _, c, f in API_CASES],
    ids=[f"{where}: {given}" for where, given, _, _ in API_CASES],
)
def test_api_bad_input_gets_one_clear_error(call: Callable[[], Any], fragment: str) -> None:
    with sockshock.audit(), pytest.raises(sockshock.errors.InvalidArgument) as info:
        call()
    assert isinstance(info.value, (ValueError, TypeError))
    assert fragment in str(info.value)


# (what was given, test-file source or None, pytest arguments, a fragment the output
# must contain)
PLUGIN_CASES: list[tuple[str, str | None, list[str], str]] = [
    (
        "@pytest.mark.sockshock(seed=1.5)",
        "@pytest.mark.sockshock(seed=1.5)\ndef test_x(sockshock): pass",
        [],
        "seed=1.5 from @pytest.mark.sockshock(seed=...) on test_case.py::test_x: expected an "
        "integer",
    ),
    (
        "@pytest.mark.sockshock(shutdown_timeout='inf')",
        "@pytest.mark.sockshock(shutdown_timeout='inf')\ndef test_x(sockshock): pass",
        [],
        "shutdown_timeout='inf' from @pytest.mark.sockshock(shutdown_timeout=...)",
    ),
    (
        "@pytest.mark.sockshock(bogus=1)",
        "@pytest.mark.sockshock(bogus=1)\ndef test_x(sockshock): pass",
        [],
        "@pytest.mark.sockshock on test_case.py::test_x: unknown ['bogus']",
    ),
    (
        "@pytest.mark.sockshock_servers(concurrency=5)",
        "@pytest.mark.sockshock_servers(concurrency=5)\ndef test_x(server_class): pass",
        [],
        "concurrency=5 (type=int)",
    ),
    (
        "@pytest.mark.sockshock_servers(kind='stream')",
        "@pytest.mark.sockshock_servers(kind='stream')\ndef test_x(server_class): pass",
        [],
        "kind='stream' is not a filter; did you mean",
    ),
    (
        "@pytest.mark.faults('PartialReads')",
        "@pytest.mark.faults('PartialReads')\ndef test_x(sockshock):\n"
        "    sockshock.serve('ThreadingTCPServer', LineEcho)",
        [],
        "@pytest.mark.faults on test_case.py::test_x='PartialReads' is neither a scenario file "
        "nor a name in the library",
    ),
    (
        "@pytest.mark.faults(3)",
        "@pytest.mark.faults(3)\ndef test_x(sockshock):\n    sockshock.serve('ThreadingTCPServer', LineEcho)",
        [],
        "3 (type=int) is not a fault model (sockshock.faults.PartialReads(3), ...) or a "
        "scenario's name",
    ),
    (
        "@pytest.mark.shutdown_within('fast')",
        "@pytest.mark.shutdown_within('fast')\ndef test_x(sockshock):\n"
        "    sockshock.serve('ThreadingTCPServer', LineEcho)",
        [],
        "seconds='fast'",
    ),
    (
        "@pytest.mark.sockshock(seed=-1) without the fixture",
        "@pytest.mark.sockshock(seed=-1)\ndef test_x(): pass",
        [],
        "seed=-1 from @pytest.mark.sockshock(seed=...) on test_case.py::test_x: expected an "
        "integer in [0, 18446744073709551615]",
    ),
    (
        "@pytest.mark.shutdown_within(-1) without the fixture",
        "@pytest.mark.shutdown_within(-1)\ndef test_x(): pass",
        [],
        "seconds=-1 must be in (0, 3600] (from @pytest.mark.shutdown_within on "
        "test_case.py::test_x)",
    ),
    (
        "@pytest.mark.faults('nosuch') without the fixture",
        "@pytest.mark.faults('nosuch')\ndef test_x(): pass",
        [],
        "@pytest.mark.faults on test_case.py::test_x='nosuch' is neither a scenario file nor a "
        "name in the library",
    ),
    (
        "@pytest.mark.faults(PartialReads(1), seed=3)",
        "from sockshock import faults as F\n@pytest.mark.faults(F.PartialReads(1), seed=3)\n"
        "def test_x(sockshock): pass",
        [],
        "@pytest.mark.faults on test_case.py::test_x: takes fault models and scenario names only, "
        "no keywords: seed=3 (the fault seed is @pytest.mark.sockshock(seed=...))",
    ),
    (
        "--sockshock-scenario=nosuch",
        None,
        ["--sockshock-scenario=nosuch"],
        "sockshock: --sockshock-scenario='nosuch' is neither a scenario file nor a name in the "
        "library",
    ),
    (
        "--sockshock-scenario=",
        None,
        ["--sockshock-scenario="],
        "scenario='' from --sockshock-scenario: expected a scenario's name",
    ),
    (
        "--sockshock-shutdown-timeout=inf",
        None,
        ["--sockshock-shutdown-timeout=inf"],
        "shutdown_timeout='inf' from --sockshock-shutdown-timeout: expected a number in (0, 3600]",
    ),
    (
        "--sockshock-seed=1.5",
        None,
        ["--sockshock-seed=1.5"],
        "seed='1.5' from --sockshock-seed: expected an integer",
    ),
    (
        "--sockshock-session-seed=-3",
        None,
        ["--sockshock-session-seed=-3"],
        "session_seed='-3' from --sockshock-session-seed: expected an integer",
    ),
    (
        "--sockshock-audit=maybe",
        None,
        ["--sockshock-audit=maybe"],
        "audit='maybe' from --sockshock-audit: expected on or off",
    ),
    (
        "--sockshock-shutdown-tolerance=0.5",
        None,
        ["--sockshock-shutdown-tolerance=0.5"],
        "shutdown_tolerance='0.5' from --sockshock-shutdown-tolerance: expected a number in [1,",
    ),
    (
        "ini sockshock_clock = fast",
        None,
        ["-o", "sockshock_clock=fast"],
        "clock='fast' from ini setting sockshock_clock: expected 'real' or 'virtual'",
    ),
]


@pytest.mark.parametrize(
    ("source", "args", "fragment"),
    [(s, a, f) for _, s, a, f in PLUGIN_CASES],
    ids=[given for given, _, _, _ in PLUGIN_CASES],
)
def test_plugin_bad_input_gets_one_clear_error(
    pytester: pytest.Pytester, source: str | None, args: list[str], fragment: str
) -> None:
    header = "import pytest\nfrom sockshock.handlers import LineEcho\n\n"
    pytester.makepyfile(test_case=header + (source or "def test_x(): pass"))
    result = pytester.runpytest_inprocess(
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-p",
        "no:hypothesispytest",
        *args,
    )
    assert result.ret != 0
    output = result.stdout.str() + result.stderr.str()
    assert fragment in output.replace("\n", " ") or fragment in output, output


CLI_CASES: list[tuple[str, list[str], str]] = [
    (
        "--server ThreadingTCPServr",
        ["--server", "ThreadingTCPServr"],
        "--server='ThreadingTCPServr' is not a server class of sockshock.socketserver",
    ),
    ("--request '\\x'", ["--request", "\\x"], "--request='\\\\x': not a valid escaped byte string"),
    ("--expect ''", ["--expect", ""], "--expect='' is empty"),
    (
        "--json into a missing directory",
        ["--json", "/no/such/dir/out.json"],
        "--json='/no/such/dir/out.json': the directory '/no/such/dir' does not exist",
    ),
    ("--seed -1", ["--seed", "-1"], "--seed=-1 must be in [0, 18446744073709551615]"),
    (
        "--handler no_such_module:X",
        ["--handler", "no_such_module:X"],
        "--handler='no_such_module:X': cannot import",
    ),
    (
        "--handler os:path",
        ["--handler", "os:path"],
        "--handler='os:path' is the module 'posixpath', not a request handler class",
    ),
    (
        "--handler sockshock.handlers:LineEcho --server UDPServer",
        ["--handler", "sockshock.handlers:LineEcho", "--server", "UDPServer"],
        "--handler=LineEcho is a StreamRequestHandler, but UDPServer is a datagram server",
    ),
    (
        "--server .x:Y",
        ["--server", ".x:Y"],
        "--server='.x:Y': cannot import 'Y' from '.x': a relative module name",
    ),
    ("--server ''", ["--server", ""], "--server='' is not a server class"),
    (
        "--target 127.0.0.1:1 without a scenario",
        ["--target", "127.0.0.1:1"],
        "--target='127.0.0.1:1' applies to scenarios only",
    ),
    ("--target ''", ["--target", ""], "--target='' applies to scenarios only"),
    ("--udp without a scenario", ["--udp"], "--udp applies to scenarios with --target"),
    ("--json /proc/x.json", ["--json", "/proc/x.json"], "--json='/proc/x.json': cannot write it"),
    ("partial-io --target ''", ["partial-io", "--target", ""], "--target='': expected HOST:PORT"),
    (
        "partial-io --target 10.1.2.3:80",
        ["partial-io", "--target", "10.1.2.3:80"],
        "--target='10.1.2.3:80': the fault proxy forwards to loopback addresses only",
    ),
    ("partial-io --udp", ["partial-io", "--udp"], "--udp applies with --target HOST:PORT only"),
    (
        "partial-io --expect x",
        ["partial-io", "--expect", "x"],
        "--expect='x' applies to the built-in checks and to scenarios run with --target only",
    ),
    (
        "partial-io --json /proc/x.json",
        ["partial-io", "--json", "/proc/x.json"],
        "--json='/proc/x.json': cannot write it",
    ),
    (
        "lossy-udp --target 127.0.0.1:9",
        ["lossy-udp", "--target", "127.0.0.1:9"],
        "lossy-udp.toml:10: DropDatagrams(probability=0.3, direction='both') cannot fire on "
        "--target='127.0.0.1:9': it acts on datagrams only",
    ),
    ("--bogus", ["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(a, f) for _, a, f in CLI_CASES],
    ids=[given for given, _, _ in CLI_CASES],
)
def test_cli_bad_input_gets_one_clear_error(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sockshock._cli import main

    with pytest.raises(SystemExit) as info:
        sys.exit(main(["run", *args]))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback


def table() -> str:
    """The Markdown table of every case, for tests/README.md."""
    rows = ["| where | bad input | the error says |", "|---|---|---|"]
    rows += [f"| {w} | `{g}` | {f} |" for w, g, _, f in API_CASES]
    rows += [f"| pytest | `{g}` | {f} |" for g, _, _, f in PLUGIN_CASES]
    rows += [f"| `sockshock run` | `{g}` | {f} (exit 2) |" for g, _, f in CLI_CASES]
    return "\n".join(row.replace("|`", "| `") for row in rows)


def test_the_table_in_tests_readme_is_current() -> None:
    readme = Path(__file__).with_name("README.md").read_text(encoding="utf-8")
    assert table() in readme, "run `python tests/test_bad_input.py` and paste its table"


if __name__ == "__main__":
    print(table())

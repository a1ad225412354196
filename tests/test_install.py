"""sockshock.install(), --sockshock-install and sockshock.inject(): servers built
where a test cannot reach them. Each install runs in a subprocess (it changes what
`import socketserver` means for the whole process)."""

from __future__ import annotations

import pytest

import sockshock
from sockshock import faults as F
from tests._support import WAIT, run_pytest, run_python

pytest_plugins = ["pytester"]


def test_install_builds_later_imports_on_ours_and_undoes_itself() -> None:
    proc = run_python("""
        import sys, sockshock
        assert "socketserver" not in sys.modules  # sockshock never imports it itself
        with sockshock.install():
            import http.server, socketserver
            assert socketserver is sockshock.socketserver
            assert issubclass(http.server.HTTPServer, sockshock.socketserver.TCPServer)
        import http.server, socketserver
        assert socketserver is not sockshock.socketserver  # the standard one again
        assert not issubclass(http.server.HTTPServer, sockshock.socketserver.TCPServer)
        print("ok")
    """)
    assert proc.stdout == "ok\n", proc.stderr


def test_install_after_a_consumer_was_imported_names_it() -> None:
    proc = run_python("""
        import xmlrpc.server, sockshock
        try:
            sockshock.install()
        except sockshock.errors.InvalidArgument as exc:
            print(exc)
    """)
    assert proc.stdout.startswith(
        "socketserver was imported before sockshock.install(): 'http.server' is built on "
        "the standard library's (and 'xmlrpc.server')"
    ), proc.stderr
    assert "pytest --sockshock-install" in proc.stdout


def test_the_install_error_is_a_value_error_with_sensible_advice_for_a_script() -> None:
    proc = run_python("""
        import socketserver

        class Mine(socketserver.TCPServer):
            pass

        import sockshock
        try:
            sockshock.install()
        except ValueError as exc:
            assert isinstance(exc, sockshock.errors.InvalidArgument)
            print(exc)
    """)
    assert proc.stdout.startswith(
        "socketserver was imported before sockshock.install(): your script ('__main__') is "
        "built on the standard library's"
    ), proc.stderr
    assert proc.stdout.rstrip().endswith(
        "otherwise call sockshock.install() at the top of your script, before it imports "
        "socketserver or a module built on it."
    ), proc.stdout


INSTALLED_TEST = """
import http.server
import socketserver
import sockshock.socketserver as ours

def test_built_on_ours(sockshock):
    assert socketserver is ours
    assert issubclass(http.server.ThreadingHTTPServer, ours.TCPServer)
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_pytest(pytester, *args)


def test_the_plugin_installs_before_conftest_and_test_modules(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import http.server  # imported by a conftest: built on ours too")
    pytester.makepyfile(test_installed=INSTALLED_TEST)
    run(pytester, "--sockshock-install=on").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nsockshock_install = true\n")
    run(pytester, "-n", "2").assert_outcomes(passed=1)  # on every xdist worker too
    pytester.makeini("[pytest]\n")
    run(pytester).assert_outcomes(failed=1)  # not installed: the standard module


def test_the_plugin_installs_after_a_plugin_imported_http_server(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_installed=INSTALLED_TEST)
    result = run(pytester, "-p", "tests_helper_imports_http", "--sockshock-install=on")
    result.assert_outcomes(passed=1)  # the test's own http.server is built on ours
    result.stdout.fnmatch_lines(
        ["sockshock: installed; *http.server* had been imported*before --sockshock-install*"]
    )


@pytest.fixture
def _helper_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(tests_helper_imports_http="import http.server")


test_the_plugin_installs_after_a_plugin_imported_http_server = pytest.mark.usefixtures(
    "_helper_plugin"
)(test_the_plugin_installs_after_a_plugin_imported_http_server)


def test_inject_reaches_a_server_built_by_other_code() -> None:
    from sockshock import socketserver as ss
    from sockshock.handlers import LineEcho

    def library_code() -> ss.TCPServer:  # builds its server where the test cannot
        return ss.ThreadingTCPServer(("127.0.0.1", 0), LineEcho)

    with sockshock.audit(), sockshock.inject([F.PartialWrites(1)], seed=3) as servers:
        server = library_code()
        import threading

        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            (injected,) = servers.wait(1, timeout=WAIT)
            assert injected.server is server
            import socket

            with socket.create_connection(injected.address, timeout=5) as client:
                client.sendall(b"abc\n")
                reply = b""
                while not reply.endswith(b"\n"):
                    reply += client.recv(10)
            assert reply == b"abc\n"
        finally:
            server.shutdown()  # prompt: sockshock's loop
            server.server_close()
            thread.join(5)
    # 1 byte per send; the last send of 1 byte changes nothing and is not logged.
    assert [e.decision.limit for e in injected.plan.log] == [1, 1, 1]


def test_inject_re_raises_handler_errors_after_the_block() -> None:
    import socket
    import threading

    from sockshock import socketserver as ss

    class Broken(ss.BaseRequestHandler):
        def handle(self) -> None:
            raise LookupError("from the library's handler")

    with pytest.raises(LookupError, match="library's handler"), sockshock.inject() as servers:
        server = ss.TCPServer(("127.0.0.1", 0), Broken)
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        socket.create_connection(server.server_address, timeout=5).close()
        thread.join(5)
        server.server_close()
        assert len(servers) == 1


def test_inject_checks_its_arguments() -> None:
    with (
        pytest.raises(sockshock.errors.InvalidArgument, match="faults='PartialReads'"),
        sockshock.inject("PartialReads"),
    ):
        pass
    with (
        pytest.raises(sockshock.errors.InvalidArgument, match="shutdown_timeout=0"),
        sockshock.inject(shutdown_timeout=0),
    ):
        pass


INJECT_IN_A_TEST = """
import socket, threading
import pytest
from sockshock import faults as F
from sockshock import socketserver as ss
from sockshock.handlers import LineEcho

@pytest.mark.faults(F.PartialWrites(1))
def test_library_server(sockshock):
    with sockshock.inject() as servers:  # the marker's faults, the test's seed
        server = ss.ThreadingTCPServer(("127.0.0.1", 0), LineEcho)  # "library code"
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            (injected,) = servers.wait(1, timeout=30)
            assert injected.plan.seed == sockshock.seed
            with socket.create_connection(injected.address, timeout=5) as client:
                client.sendall(b"abc\\n")
                reply = b""
                while not reply.endswith(b"\\n"):
                    reply += client.recv(10)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
    assert reply == b"wrong"  # fails: the report shows the injected server's log
"""


def test_inject_through_the_fixture_takes_the_tests_seed_and_reports_the_log(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_inject=INJECT_IN_A_TEST)
    result = run(pytester, "--sockshock-seed=1234")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "fault seed: 1234" in text
    assert "--sockshock-seed=1234" in text
    assert "(built inside inject()):" in text
    assert "PartialWrites(max_chunk=1) -> limit=1" in text
    assert "AssertionError: assert b'abc\\n' == b'wrong'" in text  # the seed check held

    with (
        pytest.raises(
            sockshock.errors.InvalidArgument, match=r"give an instance: clock=VirtualClock\(\)"
        ),
        sockshock.inject(clock=sockshock.layer.VirtualClock),
    ):
        pass


@pytest.mark.parametrize("address", [("0.0.0.0", 0), ("", 0)])
def test_inject_refuses_a_server_on_all_interfaces_before_it_binds(
    address: tuple[str, int],
) -> None:
    import http.server
    import socket

    bound: list[object] = []

    class Watched(http.server.HTTPServer):
        def server_bind(self) -> None:
            bound.append(self.server_address)
            super().server_bind()

    with (
        sockshock.audit(),
        sockshock.inject() as servers,
        pytest.raises(sockshock.errors.InvalidArgument) as info,
    ):
        Watched(address, http.server.BaseHTTPRequestHandler)
    assert str(info.value).startswith(
        f"Watched built inside sockshock.inject() would bind {address!r}, refused before "
        f"binding: server_address={address!r}: sockshock serves on loopback addresses only"
    )
    assert bound == []
    assert list(servers) == []
    with sockshock.inject() as servers:  # IPv6's wildcard too

        class Six(http.server.HTTPServer):
            address_family = socket.AF_INET6

        with pytest.raises(sockshock.errors.InvalidArgument, match="loopback addresses only"):
            Six(("::", 0), http.server.BaseHTTPRequestHandler)

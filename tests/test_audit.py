"""The leak audit on its own: each kind of leak is named; a clean block passes."""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import pytest

import sockshock
from sockshock import _harness
from sockshock.handlers import DatagramEcho, LineEcho


def test_a_clean_block_passes() -> None:
    with (
        sockshock.audit(),
        sockshock.serving("ThreadingTCPServer", LineEcho) as srv,
        srv.connect() as client,
    ):
        client.sendall(b"x\n")
        assert client.recv(10) == b"x\n"


def test_a_thread_left_running_is_named_with_its_stack() -> None:
    stop = threading.Event()
    try:
        with pytest.raises(sockshock.errors.LeakError) as info, sockshock.audit(grace=0.01):
            threading.Thread(target=stop.wait, name="forgotten worker", daemon=True).start()
    finally:
        stop.set()
    report = info.value.report
    assert len(report.threads) == 1
    assert report.threads[0].startswith("'forgotten worker' (daemon=True")
    assert "stop.wait" in report.threads[0] or "wait" in report.threads[0]
    assert isinstance(info.value, AssertionError)


def test_an_open_descriptor_is_named_with_its_target(tmp_path: Path) -> None:
    leaked = []
    try:
        with pytest.raises(sockshock.errors.LeakError) as info, sockshock.audit(grace=0.01):
            leaked.append(socket.socket())
            leaked.append(open(tmp_path / "kept-open", "w"))  # noqa: SIM115
    finally:
        for thing in leaked:
            thing.close()
    descriptors = info.value.report.descriptors
    assert any(re.fullmatch(r"fd \d+: TCP, never bound or connected", d) for d in descriptors)
    assert any(d.endswith("kept-open") for d in descriptors)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_an_unreaped_child_is_named() -> None:
    pid = 0
    try:
        with pytest.raises(sockshock.errors.LeakError) as info, sockshock.audit(grace=0.05):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            # Wait for the child to exit without reaping it (WNOWAIT): a zombie.
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    finally:
        if pid:
            os.waitpid(pid, 0)
    assert info.value.report.children == [f"pid {pid} (zombie, never reaped)"]


def test_a_unix_socket_file_left_behind_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "left.sock")
    with (
        pytest.raises(sockshock.errors.LeakError) as info,
        sockshock.audit(grace=0.01),
        sockshock.serving("UnixStreamServer", LineEcho, address=path),
    ):
        pass  # like the stdlib, server_close() does not unlink the path
    assert info.value.report.socket_files == [path]
    assert str(info.value).splitlines()[-1] == f"    {path}"


def test_the_fixture_form(sockshock_audit: None) -> None:
    with sockshock.serving("UDPServer", DatagramEcho) as srv, srv.connect() as client:
        client.send(b"d")
        assert client.recv(10) == b"d"


def test_a_report_is_a_plain_value() -> None:
    """LeakReport is public (LeakAudit.report() returns one): empty is falsy and
    prints nothing leaked; filled, it names what it holds."""
    empty = _harness.LeakReport()
    assert not empty
    assert empty.threads == []
    assert str(empty) == "leaked:"
    report = _harness.LeakReport(descriptors=["fd 9 -> socket:[1]"])
    assert report
    assert "1 descriptors:\n    fd 9 -> socket:[1]" in str(report)
    assert report == _harness.LeakReport(descriptors=["fd 9 -> socket:[1]"])

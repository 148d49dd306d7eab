"""sd_notify against a real unix datagram socket, as systemd listens on one."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from agent.observe.sdnotify import Watchdog, sd_notify


def listening(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + path[1:] if path.startswith("@") else path)
    sock.settimeout(2)
    return sock


def test_ready_reaches_a_socket_at_a_path(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with listening(path) as sock:
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": path})
        assert sock.recv(256) == b"READY=1"


def test_ready_reaches_an_abstract_socket() -> None:
    path = f"@edge-agent-test-{uuid.uuid4().hex}"
    with listening(path) as sock:
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": path})
        assert sock.recv(256) == b"READY=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    assert not sd_notify("READY=1", {})
    assert not sd_notify("READY=1", {"NOTIFY_SOCKET": "relative/path"})


def test_a_gone_manager_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    assert not sd_notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})


def test_the_watchdog_pings_at_half_the_interval_and_not_more_often(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    with listening(path) as sock:
        watchdog = Watchdog(env)
        assert watchdog.interval_s == 1.0
        for _ in range(50):
            watchdog.tick()
        assert sock.recv(256) == b"WATCHDOG=1"
        sock.settimeout(0.2)
        try:
            extra = sock.recv(256)
        except TimeoutError:
            extra = b""
        assert extra == b"", "a second ping within the interval"


def test_the_watchdog_ignores_a_pid_that_is_not_ours() -> None:
    assert Watchdog({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}).interval_s is None
    assert Watchdog({}).interval_s is None

"""What the edge-agent command writes where a person or a log collector reads it: progress bars only on a
terminal, and one line for a stop signal however often it comes."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import yaml

from tests.conftest import REPO, agent_cmd, free_port, make_clip

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
BAR_MARKS = ("s video", "\r", "█")  # the bar's text, its redraws and its block characters


def test_process_writes_no_progress_bar_into_a_pipe(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "pattern.mp4", seconds=4)
    done = subprocess.run(
        agent_cmd("process", str(clip), "--kind", "bodycam"), cwd=tmp_path, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "pattern" in done.stdout  # the summary table is still there
    assert not [mark for mark in BAR_MARKS if mark in done.stderr], done.stderr


def test_process_draws_its_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "pattern.mp4", seconds=4)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty is 0 columns wide
    proc = subprocess.Popen(
        agent_cmd("process", str(clip), "--kind", "bodycam"),
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    terminal = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    proc.stdout.read()
    assert proc.wait(timeout=30) == 0
    assert "s video" in terminal.decode(errors="replace")


def test_a_repeated_sigterm_is_logged_once_and_the_agent_still_stops_cleanly(tmp_path: Path) -> None:
    # the sample clip gives cases that cannot be sent (no broker): the stop drains for drain_timeout_s,
    # and a supervisor or an operator signals again meanwhile
    config = {
        "agent_id": "box-1",
        "state_dir": str(tmp_path / "state"),
        "sources": [
            {"id": "patrol", "kind": "vehicle", "url": "builtin:sample", "telemetry": "builtin:sample-telemetry"},
            {"id": "gate", "kind": "fixed", "url": f"rtsp://127.0.0.1:{free_port()}/live"},
        ],
        "detector": {"model": "builtin:garbage"},
        "uploader": {"mqtt": {"host": "127.0.0.1", "port": free_port()}, "drain_timeout_s": 3},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen(agent_cmd("run", "-c", str(path)), env=ENV, stdout=subprocess.PIPE, stderr=err)
    try:
        assert wait_for(lambda: "accepted" in log.read_text() and "reconnecting in" in log.read_text(), 120)
        proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "received SIGTERM" in log.read_text(), 10)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # it exits by itself, not killed by the signals: 1 because the gate camera was never reached all run
    assert proc.returncode == 1, log.read_text()
    assert log.read_text().count("received SIG") == 1, log.read_text()
    assert "patrol" in out.decode() and "pending" in out.decode()  # the summary after the drain
    assert "unreachable" in out.decode()


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False

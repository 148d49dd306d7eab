"""A real RTSP server (gst-rtsp-server, tests/rtsp_server.py) on 127.0.0.1 that tests can break."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python has gi; the venv's does not
SERVER_SCRIPT = REPO / "tests" / "rtsp_server.py"


@dataclass
class RtspServer:
    """gst-rtsp-server in a subprocess; kill(), start() again on the same port, pause() and resume()."""

    port: int
    log_path: Path
    fps: int = 15
    size: str = "640x360"
    bframes: int = 0  # B-frames between references (main profile); 0: baseline, none
    per_client: bool = False  # a pipeline per client: clients never race on one shared media's preparation
    path: str = "/live"  # the mount point
    image: Path | None = None  # a still picture to show instead of the moving ball
    file: Path | None = None  # a real MP4 (H.264) to serve instead of the test pattern
    process: subprocess.Popen | None = None
    starts: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, timeout_s: float = 15.0) -> None:
        """Start the server and return once its port accepts connections."""
        assert self.process is None or self.process.poll() is not None, "server already running"
        args = ["--port", str(self.port), "--fps", str(self.fps), "--size", self.size, "--bframes", str(self.bframes)]
        args += ["--per-client"] if self.per_client else []
        args += ["--path", self.path, *(["--image", str(self.image)] if self.image else [])]
        args += ["--file", str(self.file)] if self.file else []
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER_SCRIPT), *args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"RTSP server exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    self.starts.append(time.monotonic())
                    return
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"RTSP server did not listen on {self.port} within {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL: connections drop at once, as when a camera loses power."""
        if self.process and self.process.poll() is None:
            self.resume()  # a stopped process dies on SIGKILL too, but resume keeps it simple
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and go silent, as with a hung camera or a dead link."""
        assert self.process and self.process.poll() is None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)


def _need_server_tools() -> None:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail("gst-rtsp-server for /usr/bin/python3 is missing: run scripts/test (it installs it)")


@pytest.fixture
def rtsp_factory(tmp_path: Path) -> Iterator[Callable[..., RtspServer]]:
    """Makes RtspServer objects on free ports (not started); kills every one at the end."""
    _need_server_tools()
    made: list[RtspServer] = []

    def make(
        fps: int = 15,
        size: str = "640x360",
        bframes: int = 0,
        per_client: bool = False,
        path: str = "/live",
        image: Path | None = None,
    ) -> RtspServer:
        log_path = tmp_path / f"rtsp-{len(made)}.log"
        server = RtspServer(
            free_port(), log_path, fps=fps, size=size, bframes=bframes, per_client=per_client, path=path, image=image
        )
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()


@pytest.fixture
def rtsp_server(rtsp_factory: Callable[..., RtspServer]) -> RtspServer:
    """A started server on a free port: rtsp_server.url."""
    server = rtsp_factory()
    server.start()
    return server

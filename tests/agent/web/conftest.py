"""One running `edge-agent run` with the page enabled over TLS, fed by two real RTSP servers (one serving
the sample street footage, so the detectors find boxes and raise cases), and one headless Chromium
(Debian's chromium and chromium-driver, through selenium) for the whole module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec_

from tests.agent.updates.helpers import Agent, write_config
from tests.browser import browser, https_request, log_in_form, self_signed  # noqa: F401 (browser: a fixture)
from tests.conftest import REPO, free_port
from tests.streams.conftest import RtspServer, _need_server_tools
from webauth.passwords import hash_password

USER, PASSWORD = "installer", "kerb-side-2026"


@dataclass
class Box:
    """The running agent, its page's address and configuration file."""

    agent: Agent
    url: str
    config: Path
    port: int

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) of one request to the page."""
        return https_request(self.port, method, path, body, headers)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    _need_server_tools()
    folder = tmp_path_factory.mktemp("web")
    street = RtspServer(
        free_port(), folder / "rtsp-street.log", per_client=True, file=REPO / "samples" / "street-garbage.mp4"
    )
    pattern = RtspServer(free_port(), folder / "rtsp-pattern.log", fps=5, size="320x180", per_client=True)
    street.start()
    pattern.start()
    cert, key = self_signed(folder)
    port = free_port()
    data = {
        "agent_id": "box-1",
        "state_dir": str(folder / "state"),
        "sources": [
            {
                "id": "cam-1",
                "kind": "fixed",
                "url": street.url,
                "sample_fps": 2,
                "idle_every_s": 1,
                "position": {"lat": 30.27, "lon": 120.15},
            },
            {"id": "cam-2", "kind": "fixed", "url": pattern.url, "sample_fps": 1, "idle_every_s": 1},
        ],
        "detector": {"model": "builtin:garbage"},
        "cases": {
            "rules": {
                "garbage_pile": {"min_detections": 3, "window_s": 10},
                "overflowing_bin": {"min_detections": 3, "window_s": 10},
            }
        },
        "evidence": {"clip_pre_s": 2, "clip_post_s": 2},
        "web": {
            "enabled": True,
            "port": port,
            "user": USER,
            "password_hash": hash_password(PASSWORD),
            "tls": {"cert_file": str(cert), "key_file": str(key)},
        },
    }
    config = write_config(folder / "agent.yaml", data)
    agent = Agent(config, folder / "state").start()
    try:
        assert agent.wait_log("web: the box's page on", 60), agent.log()[-3000:]
        assert agent.wait_log("cam-1: reading", 60), agent.log()[-3000:]
        yield Box(agent, f"https://127.0.0.1:{port}", config, port)
    finally:
        agent.stop()
        street.kill()
        pattern.kill()


def log_in(driver: webdriver.Chrome, box: Box) -> None:
    """Through the form, as a person would: the page redirects to /login first."""
    log_in_form(driver, box.url, USER, PASSWORD, ec_.presence_of_element_located((By.ID, "sources")), "live page")


def sources(box: Box, headers: dict[str, str]) -> dict[str, dict]:
    status, _, body = box.request("GET", "/api/sources", headers=headers)
    assert status == 200, body
    return {s["id"]: s for s in json.loads(body)}

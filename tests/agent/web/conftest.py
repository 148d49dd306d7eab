"""One running `edge-agent run` with the page enabled over TLS, fed by two real RTSP servers (one serving
the sample street footage, so the detectors find boxes and raise cases), and one headless Chromium
(Debian's chromium and chromium-driver, through selenium) for the whole module."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec_
from selenium.webdriver.support.ui import WebDriverWait

from tests.agent.updates.helpers import Agent, write_config
from tests.conftest import REPO, free_port
from tests.streams.conftest import RtspServer, _need_server_tools
from webauth.passwords import hash_password

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
USER, PASSWORD = "installer", "kerb-side-2026"


@dataclass
class Box:
    """The running agent, its page's address and configuration file."""

    agent: Agent
    url: str
    config: Path
    port: int

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) of one request to the page; the test certificate is not checked."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=_unverified(), timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 and its key, as a city's own CA would issue for a box."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box-1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "web.crt", folder / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


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


def chromium() -> webdriver.Chrome:
    """Debian's headless Chromium through its chromium-driver (selenium never downloads one)."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail("Debian's chromium and chromium-driver are missing: run scripts/test (it installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--ignore-certificate-errors",
        "--window-size=1400,1000",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: webdriver.Chrome, box: Box) -> None:
    """Through the form, as a person would: the page redirects to /login first."""
    driver.get(box.url + "/")
    WebDriverWait(driver, 20).until(ec_.presence_of_element_located((By.ID, "login")))
    driver.find_element(By.ID, "user").send_keys(USER)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 20).until(
        ec_.presence_of_element_located((By.ID, "sources")),
        f"no live page after the login: at {driver.current_url}: {driver.page_source[:1500]}",
    )


def session_headers(driver: webdriver.Chrome) -> dict[str, str]:
    """The browser's session cookie, for requests made beside the browser."""
    cookie = driver.get_cookie("session")
    assert cookie, "no session cookie after the login"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    return {"Cookie": f"session={cookie['value']}"}


def sources(box: Box, headers: dict[str, str]) -> dict[str, dict]:
    status, _, body = box.request("GET", "/api/sources", headers=headers)
    assert status == 200, body
    return {s["id"]: s for s in json.loads(body)}

"""What the two pages' browser tests share (the box's page in tests/agent/web, the review page in
tests/cityplatform/review): a self-signed certificate for 127.0.0.1, requests beside the browser that do
not check it, Debian's headless Chromium through selenium (one per test module) and the login form."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import ssl
from collections.abc import Callable, Iterator
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

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SHARED_SCRIPT = Path(__file__).resolve().parent.parent / "webauth" / "static" / "page.js"  # both pages serve it


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


def https_request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request to a page on 127.0.0.1; the test certificate is not checked."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


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
    """One Chromium for a test module (a conftest imports this fixture)."""
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def log_in_form(
    driver: webdriver.Chrome, url: str, user: str, password: str, ready: Callable[[webdriver.Chrome], object], what: str
) -> None:
    """Through the form, as a person would: the page redirects to /login first; then wait until `ready`
    holds on the page behind it (`what` names that page in the failure)."""
    driver.get(url + "/")
    WebDriverWait(driver, 20).until(ec_.presence_of_element_located((By.ID, "login")))
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 20).until(
        ready, f"no {what} after the login: at {driver.current_url}: {driver.page_source[:1500]}"
    )


def session_headers(driver: webdriver.Chrome) -> dict[str, str]:
    """The browser's session cookie, for requests made beside the browser."""
    cookie = driver.get_cookie("session")
    assert cookie, "no session cookie after the login"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    return {"Cookie": f"session={cookie['value']}"}

"""Connection failures are named once per change of state and retried with growing, capped delays:
wrong password, untrusted CA, refused port; and TLS with the right CA works."""

from __future__ import annotations

import itertools
import logging
import subprocess
import time
from pathlib import Path

import pytest

from protocol.connection import Connection, MqttSettings
from tests.conftest import Broker, free_port

CAP_S = 1.6


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tls")
    ca_key, ca = make_ca(d, "city-ca")
    _, other_ca = make_ca(d, "other-ca")
    key, csr, cert = d / "server.key", d / "server.csr", d / "server.pem"
    subprocess.run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr],
        check=True,
        capture_output=True,
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            cert,
            "-extfile",
            d / "san.ext",
        ],
        check=True,
        capture_output=True,
    )
    passwords = d / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", passwords, "car-1", "right-password"], check=True)
    return {"ca": ca, "other_ca": other_ca, "key": key, "cert": cert, "passwords": passwords}


@pytest.fixture
def secured_broker(tmp_path: Path, tls_files: dict[str, Path]) -> Broker:
    """A broker that wants a password, on a TLS listener."""
    broker = Broker(free_port(), tmp_path)
    broker.extra_conf = (
        f"allow_anonymous false\npassword_file {tls_files['passwords']}\n"
        f"cafile {tls_files['ca']}\ncertfile {tls_files['cert']}\nkeyfile {tls_files['key']}\n"
    )
    broker.start()
    yield broker
    broker.stop()


def watch(settings: MqttSettings, seconds: float) -> Connection:
    connection = Connection(settings)
    connection.start()
    time.sleep(seconds)
    connection.stop()
    return connection


def assert_backoff_grows_to_cap(connection: Connection) -> None:
    times = list(connection.attempts)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 4, gaps
    # delays double from 0.2 s with +-20 % jitter until the cap; never a tight loop
    expected = [min(0.2 * 2**i, CAP_S) for i in range(len(gaps))]
    for gap, want in zip(gaps, expected, strict=True):
        assert want * 0.75 <= gap <= want * 1.25 + 0.5, (gaps, expected)
    assert max(gaps) <= CAP_S * 1.25 + 0.5


def settings(port: int, **kw) -> MqttSettings:
    return MqttSettings("127.0.0.1", port, client_id="edge-agent-car-1", retry_initial_s=0.2, retry_cap_s=CAP_S, **kw)


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_refused_port(caplog) -> None:
    connection = watch(settings(free_port()), seconds=7)
    assert_backoff_grows_to_cap(connection)
    assert warnings(caplog) == [
        f"mqtt: connection refused by 127.0.0.1:{connection.settings.port}: is the broker running and is the port "
        f"right?; retrying with backoff (up to {CAP_S:g} s)"
    ]
    assert "Traceback" not in caplog.text


def test_wrong_password(secured_broker: Broker, tls_files: dict[str, Path], caplog) -> None:
    connection = watch(settings(secured_broker.port, username="car-1", password="wrong", ca_file=tls_files["ca"]), 7)
    assert_backoff_grows_to_cap(connection)
    (line,) = warnings(caplog)
    assert "wrong username or password" in line
    assert "wrong" not in line.replace("wrong username", "")  # the password itself is never logged


def test_untrusted_ca(secured_broker: Broker, tls_files: dict[str, Path], caplog) -> None:
    connection = watch(
        settings(secured_broker.port, username="car-1", password="right-password", ca_file=tls_files["other_ca"]), 7
    )
    assert_backoff_grows_to_cap(connection)
    (line,) = warnings(caplog)
    assert "TLS certificate is not trusted" in line and "ca_file" in line


def test_right_credentials_over_tls_connect(secured_broker: Broker, tls_files: dict[str, Path], caplog) -> None:
    connection = Connection(
        settings(secured_broker.port, username="car-1", password="right-password", ca_file=tls_files["ca"])
    )
    connection.start()
    try:
        assert connection.connected.wait(10)
        assert warnings(caplog) == []
    finally:
        connection.stop()

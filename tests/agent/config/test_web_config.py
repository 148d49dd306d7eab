"""The `web:` section: off by default and on 127.0.0.1; errors name the key and the fix; the hash and
TLS files are checked; the password hash never appears in an error."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from tests.agent.config.test_config import good, write
from tests.cityplatform.review.test_settings import NOT_AN_ADDRESS
from tests.conftest import agent_cmd
from webauth.passwords import hash_password, verify_password

HASH = hash_password("a long password")


def test_the_page_is_off_by_default_and_local_when_on(tmp_path: Path, sample_clip: Path) -> None:
    web = load_config(write(tmp_path, good(tmp_path, sample_clip))).web
    assert (web.enabled, web.bind, web.language) == (False, "127.0.0.1", "zh-CN")
    data = good(tmp_path, sample_clip) | {"web": {"enabled": True, "user": "admin", "password_hash": HASH}}
    web = load_config(write(tmp_path, data)).web
    assert (web.enabled, web.bind, web.port, web.tls) == (True, "127.0.0.1", 8443, None)


@pytest.mark.parametrize(
    "web, words",
    [
        ({"enabled": True}, "web.enabled needs web.user and web.password_hash; make the hash with"),
        ({"enabled": True, "user": "a", "password_hash": HASH, "bind": "0.0.0.0"}, "give web.tls"),
        ({"password_hash": "hunter2-plain"}, "web.password_hash: not a scrypt password hash"),
        ({"bind": "box.local"}, f"web.bind: {NOT_AN_ADDRESS}"),
        ({"language": "fr"}, "web.language"),
        ({"tls": {"cert_file": "missing.crt", "key_file": "missing.key"}}, "web.tls.cert_file: file not found"),
        ({"port": 0}, "web.port"),
    ],
)
def test_a_bad_web_section_names_its_key_and_the_fix(tmp_path: Path, sample_clip: Path, web: dict, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, good(tmp_path, sample_clip) | {"web": web}))
    assert words in str(err.value), str(err.value)
    assert "hunter2" not in str(err.value) and HASH not in str(err.value)


def test_a_web_port_in_use_stops_the_start_with_the_fix(tmp_path: Path, sample_clip: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        web = {"enabled": True, "user": "admin", "password_hash": HASH, "port": port}
        data = good(tmp_path, sample_clip) | {"web": web, "state_dir": str(tmp_path / "state")}
        done = subprocess.run(
            agent_cmd("run", "-c", str(write(tmp_path, data))), capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 2, done.stderr
    assert f"web: cannot listen on 127.0.0.1:{port}" in done.stderr and "web.port" in done.stderr
    assert HASH not in done.stderr


def test_web_password_prints_a_hash_that_verifies(tmp_path: Path) -> None:
    done = subprocess.run(agent_cmd("web-password"), input="kerb-side-2026\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    assert verify_password("kerb-side-2026", done.stdout.strip())
    short = subprocess.run(agent_cmd("web-password"), input="short\n", capture_output=True, text=True)
    assert short.returncode == 1 and "8 characters" in short.stderr

"""The receiver YAML's `review` section: the page stays on localhost unless it has TLS, takes only a
password hash (never echoed), and `edge-agent platform-review-page` names what is missing."""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, load_receiver_config
from cityplatform.config import PostgresConfig
from tests.agent.test_cli import ENV, run_cli
from tests.conftest import agent_cmd, free_port
from webauth.passwords import hash_password

HASH = hash_password("grid-office-2026", n=2**10)
NOT_AN_ADDRESS = "not an IP address; give 127.0.0.1 (this host only) or one interface's address"  # as web.bind's


def receiver(tmp_path: Path, review: dict | None) -> Path:
    document = {"mqtt": {"host": "127.0.0.1"}, "postgres": {"port": 5432}}
    path = tmp_path / "receiver.yaml"
    path.write_text(yaml.safe_dump(document | ({"review": review} if review is not None else {})))
    return path


def test_the_page_is_local_by_default(tmp_path: Path) -> None:
    review = load_receiver_config(receiver(tmp_path, {"user": "inspector", "password_hash": HASH})).review
    assert review and (review.bind, review.port, review.tls, review.language) == ("127.0.0.1", 8444, None, "zh-CN")


@pytest.mark.parametrize(
    "review, words",
    [
        ({"user": "a", "password_hash": HASH, "bind": "0.0.0.0"}, "review.bind 0.0.0.0 opens the page to the network"),
        ({"user": "a", "password_hash": "hunter2-plain"}, "review.password_hash: not a scrypt password hash"),
        ({"user": "a", "password_hash": HASH, "bind": "box.local"}, f"review.bind: {NOT_AN_ADDRESS}"),
        ({"password_hash": HASH}, "review.user"),
        ({"user": "a", "password_hash": HASH, "tls": {"cert_file": "x.crt", "key_file": "x.key"}}, "file not found"),
    ],
)
def test_a_bad_review_section_names_its_key_and_the_fix(tmp_path: Path, review: dict, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_receiver_config(receiver(tmp_path, review))
    assert words in str(err.value), str(err.value)
    assert "hunter2" not in str(err.value) and HASH not in str(err.value)


def test_the_command_names_the_missing_review_section(tmp_path: Path) -> None:
    done = run_cli("platform-review-page", "-c", str(receiver(tmp_path, None)), cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "no review section" in done.stderr, done.stderr


def status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_command_serves_the_page_until_stopped(tmp_path: Path, postgres: PostgresConfig) -> None:
    port = free_port()
    document = {"mqtt": {"host": "127.0.0.1"}, "postgres": postgres.model_dump(), "store_dir": str(tmp_path / "s"),
                "review": {"user": "inspector", "password_hash": HASH, "port": port}}  # fmt: skip
    (tmp_path / "receiver.yaml").write_text(yaml.safe_dump(document))
    command = agent_cmd("platform-review-page", "-c", str(tmp_path / "receiver.yaml"))
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(150):
            try:
                answers = [status(port, "/api/queue"), status(port, "/healthz")]
                break
            except ConnectionRefusedError:
                time.sleep(0.2)
        assert answers == [401, 200], answers
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert f"review page on http://127.0.0.1:{port}/ (user inspector)" in output and "page stops" in output, output

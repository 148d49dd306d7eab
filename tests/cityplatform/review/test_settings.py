"""The receiver YAML's `review` section: the page stays on localhost unless it has TLS, takes only a
password hash (never echoed), and `edge-agent platform-review-page` names what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, load_receiver_config
from tests.agent.test_cli import run_cli
from webauth.passwords import hash_password

HASH = hash_password("grid-office-2026", n=2**10)


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
        ({"user": "a", "password_hash": HASH, "bind": "box.local"}, "review.bind"),
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

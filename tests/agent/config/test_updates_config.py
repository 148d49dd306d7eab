"""The `updates:` section: a platform key that is no Ed25519 PEM, or none at all, fails the check with
the key and the fix named."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import ConfigError, load_config
from tests.agent.config.test_config import good, write

MQTT = {"mqtt": {"host": "127.0.0.1", "port": 1883}}


def pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(
    "updates, uploader, message",
    [
        # enabled without a key to check signatures against
        ({"enabled": True}, MQTT, "updates: enabled needs platform_key"),
        # a key of another algorithm
        ({"enabled": True, "platform_key": "ec.pem"}, MQTT, "updates.platform_key: not an Ed25519 key"),
        # a file that is no key
        ({"enabled": True, "platform_key": "agent.yaml"}, MQTT, "updates.platform_key: not a PEM public key"),
        # nowhere to receive updates from
        ({"enabled": True, "platform_key": "ed.pem"}, {}, "updates.enabled needs uploader.mqtt"),
    ],
)
def test_bad_updates_sections_are_refused(
    tmp_path: Path, sample_clip: Path, updates: dict, uploader: dict, message: str
) -> None:
    (tmp_path / "ec.pem").write_bytes(pem(generate_private_key(SECP256R1())))
    (tmp_path / "ed.pem").write_bytes(pem(Ed25519PrivateKey.generate()))
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, good(tmp_path, sample_clip) | {"updates": updates, "uploader": uploader}))


def test_an_ed25519_platform_key_is_taken(tmp_path: Path, sample_clip: Path) -> None:
    (tmp_path / "ed.pem").write_bytes(pem(Ed25519PrivateKey.generate()))
    data = good(tmp_path, sample_clip) | {"updates": {"enabled": True, "platform_key": "ed.pem"}, "uploader": MQTT}
    assert load_config(write(tmp_path, data)).updates.platform_key == tmp_path / "ed.pem"

"""The `updates:` section: whether the platform may send this box configurations and models over MQTT,
and the platform key whose signature they must carry (protocol/updates.py)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, field_validator, model_validator

from agent.config.loading import is_file
from agent.config.sources import _Strict


class UpdatesConfig(_Strict):
    """Remote configuration and model updates, signed by the platform."""

    enabled: bool = Field(default=False, description="listen on {prefix}/{agent_id}/updates/ (needs uploader.mqtt)")
    platform_key: Path | None = Field(
        default=None, description="the platform's Ed25519 public key (PEM); updates signed by any other are refused"
    )
    local_dir: Path | None = Field(
        default=None, description="a manifest's local_path must lie inside this folder; without it, chunks only"
    )
    start_check_s: float = Field(
        default=5.0, ge=0.5, le=300, description="a source of a new configuration that fails within this rolls back"
    )

    @field_validator("platform_key")
    @classmethod
    def _ed25519_pem(cls, value: Path | None) -> Path | None:
        if value is None:
            return value
        if not is_file(value):
            raise ValueError("file not found; give the platform's Ed25519 public key as a PEM file")
        try:
            key = serialization.load_pem_public_key(value.read_bytes())
        except ValueError:
            raise ValueError("not a PEM public key; give the platform's Ed25519 public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key; updates are signed with Ed25519 (protocol/signing.py)")
        return value

    @field_validator("local_dir")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError("folder not found; give the folder where update files are put on the box")
        return value

    @model_validator(mode="after")
    def _key_when_enabled(self) -> UpdatesConfig:
        if self.enabled and self.platform_key is None:
            raise ValueError("enabled needs platform_key: the PEM file of the key the platform signs updates with")
        return self

"""The `mqtt:` section of a YAML file: how the agent (`uploader.mqtt`) and the reference receiver
(`mqtt`) reach the broker, checked before anything connects. Both sides read the same keys."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from protocol.connection import MqttSettings


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = Field(default="edge-agent", pattern=r"^[^#+$/][^#+]*$")
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description='use "${MQTT_PASSWORD}" to read it from the environment'
    )
    password_file: Path | None = Field(default=None, description="a file holding the password (a mounted secret)")
    ca_file: Path | None = Field(default=None, description="CA certificate: turns TLS on")
    client_cert: Path | None = None
    client_key: Path | None = None
    retry_cap_s: float = Field(default=30.0, ge=1, le=3600, description="longest wait between reconnections")

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if not value.strip() or re.search(r"[\s/@]", value):
            raise ValueError("give the broker's host name or IP address alone, e.g. mqtt.city-platform.example")
        if value.count(":") == 1:  # one colon is a port; an IPv6 address has more
            raise ValueError("give the host alone and its port under port (e.g. port: 8883)")
        return value

    @field_validator("ca_file", "client_cert", "client_key", "password_file")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found; give a file readable by the agent")
        return value

    def settings(self, client_id: str) -> MqttSettings:
        """The connection settings the uploader and the receiver use."""
        return MqttSettings(
            host=self.host,
            port=self.port,
            client_id=client_id,
            username=self.username,
            password=self.secret(),
            ca_file=self.ca_file,
            client_cert=self.client_cert,
            client_key=self.client_key,
            retry_cap_s=self.retry_cap_s,
        )

    def secret(self) -> str | None:
        """The password, from `password` or `password_file`."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return None

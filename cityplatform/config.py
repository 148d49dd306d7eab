"""The reference receiver's YAML file (`edge-agent receive -c FILE`): broker, store, whom it trusts.
`edge-agent receive` reads it with the agent's config reader (agent/config/schema.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from protocol.broker import MqttConfig


class ReceiverConfig(BaseModel):
    """The receiver's YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mqtt: MqttConfig
    store_dir: Path = Field(default=Path("platform-data"), description="SQLite database and evidence files")
    share_group: str | None = Field(
        default="edge-platform", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="MQTT 5 shared subscription group"
    )
    client_id: str = Field(default_factory=lambda: f"edge-receiver-{socket.gethostname()}", min_length=1)
    keys_dir: Path | None = Field(
        default=None, description="enrolled agent keys, <agent_id>.pem (default: store_dir/agent-keys)"
    )
    trust_first_key: bool = Field(
        default=False, description="LAB ONLY: trust the first key an unenrolled agent publishes (anyone could)"
    )
    case_wait_s: float = Field(
        default=900.0, gt=0, description="how long a complete file waits for its case before it is rejected"
    )

    @property
    def trusted_keys_dir(self) -> Path:
        return self.keys_dir or self.store_dir / "agent-keys"

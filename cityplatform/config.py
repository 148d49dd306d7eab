"""The reference receiver's YAML file (`edge-agent receive -c FILE`): broker, store, whom it trusts, and
with PostgreSQL the platform's rules (joining reports, dispatch). `edge-agent receive` reads it with the
agent's config reader (agent/config/schema.py)."""

from __future__ import annotations

import socket
from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, FilePath

from cityplatform.review.settings import ReviewPageConfig
from protocol.broker import MqttConfig

_STRICT = ConfigDict(extra="forbid", frozen=True)
DEFAULT_JOIN_DISTANCE_M = 30.0


class PostgresConfig(BaseModel):
    """Where the shared store is. The password is never in this file: libpq reads PGPASSWORD or ~/.pgpass."""

    model_config = _STRICT
    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str = Field(default="edge_platform", pattern=r"^[A-Za-z0-9_]{1,63}$")
    user: str = Field(default="edge_platform", pattern=r"^[A-Za-z0-9_.-]{1,63}$")
    sslmode: str = Field(default="prefer", pattern=r"^(disable|allow|prefer|require|verify-ca|verify-full)$")

    def conninfo(self) -> str:
        return f"host={self.host} port={self.port} dbname={self.dbname} user={self.user} sslmode={self.sslmode}"


class CaseCode(BaseModel):
    """A type's code in the city's filing standard (e.g. GB/T 30428.2-2013 01-10 暴露垃圾)."""

    model_config = _STRICT
    standard: str = Field(min_length=1)
    code: str = Field(min_length=1)
    name: str = Field(min_length=1)


class TypeRule(BaseModel):
    """How the platform files one case type."""

    model_config = _STRICT
    join_distance_m: float = Field(
        default=DEFAULT_JOIN_DISTANCE_M,
        gt=0,
        description="a report this close joins an open case (or within both positions' combined uncertainty)",
    )
    code: CaseCode
    due_working_hours: float = Field(gt=0, description="the filing standard's time to fix, in working hours")


class WorkingHours(BaseModel):
    """The city's working time that due times count in (local time of `timezone`)."""

    model_config = _STRICT
    timezone: str = "Asia/Shanghai"
    start: time = time(8, 30)
    end: time = time(17, 30)
    weekdays: tuple[int, ...] = Field(default=(1, 2, 3, 4, 5), description="ISO weekdays: 1 Monday .. 7 Sunday")
    holidays: tuple[str, ...] = Field(default=(), description="dates YYYY-MM-DD that are not worked")


class GridLayer(BaseModel):
    """The city's grid layer, in the agent's format: GeoJSON cells with code, name, street, district."""

    model_config = _STRICT
    file: FilePath


class PlatformConfig(BaseModel):
    """Platform cases (PostgreSQL store only): one per problem across agents, dispatched by the grid layer."""

    model_config = _STRICT
    grid: GridLayer | None = Field(default=None, description="the city's grid layer (configs/example-grid.geojson)")
    unknown_accuracy_m: float = Field(
        default=50.0, ge=0, description="the uncertainty of a position whose accuracy_m is null"
    )
    max_uncertainty_m: float = Field(
        default=50.0, ge=0, description="two reports' combined uncertainty widens the join distance up to this"
    )
    types: dict[str, TypeRule] = Field(default_factory=dict, description="per case type: joining, code, due time")
    working_hours: WorkingHours = Field(default_factory=WorkingHours)


class ReceiverConfig(BaseModel):
    """The receiver's YAML file."""

    model_config = _STRICT
    mqtt: MqttConfig
    store_dir: Path = Field(default=Path("platform-data"), description="evidence files (and SQLite without postgres)")
    postgres: PostgresConfig | None = Field(
        default=None, description="the shared PostgreSQL + PostGIS store of several receivers (else SQLite)"
    )
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    review: ReviewPageConfig | None = Field(default=None, description="the inspectors' review page (postgres only)")
    share_group: str | None = Field(
        default="edge-platform", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="MQTT 5 shared subscription group"
    )
    client_id: str = Field(default_factory=lambda: f"edge-receiver-{socket.gethostname()}", min_length=1)
    keys_dir: Path | None = Field(
        default=None,
        description="key files <agent_id>.pem of receivers from before the store held the keys: imported on start "
        "for agents the store does not know (default: store_dir/agent-keys)",
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

"""The agent's configuration: one YAML file validated into typed models before anything starts.

Errors name the key by its path (`sources[2].url`), show the bad value (passwords masked) and say
what is accepted. `${VAR}` anywhere in a string is replaced from the environment, which is how
secrets stay out of the file. Relative paths are relative to the configuration file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from agent import resources
from streams.video import is_live, mask_url

CaseType = Literal["street_vending", "garbage_pile", "overflowing_bin", "cooking_fumes"]
SourceKind = Literal["vehicle", "fixed", "drone", "bodycam"]
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem, one per line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraPosition(_Strict):
    """Where a fixed camera stands (WGS-84); cases from it carry this position."""

    lat: float = Field(ge=-90, le=90, description="latitude, degrees")
    lon: float = Field(ge=-180, le=180, description="longitude, degrees")
    accuracy_m: float = Field(default=10.0, gt=0, description="how far the problems it sees may be from this point")


class SourceConfig(_Strict):
    """One camera or video file."""

    id: str = Field(pattern=_ID, description="short name used in logs, topics and case records")
    kind: SourceKind = Field(description="vehicle | fixed | drone | bodycam: decides sampling and geolocation")
    url: str = Field(description="rtsp://user:${PASSWORD}@host/path, a video file, or builtin:sample")
    telemetry: Path | None = Field(default=None, description="position sidecar: DJI .SRT or NMEA .nmea")
    position: CameraPosition | None = Field(default=None, description="fixed cameras: where the camera stands")
    sample_fps: float = Field(default=2.0, gt=0, le=30, description="frames per second given to the detector")
    realtime: bool = Field(default=False, description="files: pace at real time, as a camera would")
    rtsp_transport: Literal["tcp", "udp"] = "tcp"

    @field_validator("url")
    @classmethod
    def _url_exists(cls, value: str) -> str:
        if not is_live(value) and not Path(value).is_file():
            raise ValueError("file not found; give an existing video file or an rtsp:// URL")
        return value

    @field_validator("telemetry")
    @classmethod
    def _telemetry_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found; give the .SRT or .nmea file recorded with the video")
        return value


class DetectorConfig(_Strict):
    """The model and how its classes become case types."""

    model: Path = Field(description="an ONNX detection model exported by `edge-agent export`")
    min_score: float = Field(default=0.30, ge=0.01, le=1, description="boxes below this score are dropped")
    iou: float = Field(default=0.5, gt=0, le=1, description="overlap above which NMS keeps only the best box")
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime threads per inference")
    class_map: dict[str, CaseType] = Field(
        default={"garbage": "garbage_pile", "overflow": "overflowing_bin"},
        description="model class name -> case type; classes not listed never make a case",
    )

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError("model file not found; use builtin:garbage or a file made by `edge-agent export`")
        return value


class RuleConfig(_Strict):
    """A case is raised when `min_detections` frames within `window_s` seconds show the type."""

    min_detections: int = Field(default=3, ge=1, le=1000)
    window_s: float = Field(default=10.0, gt=0)
    min_score: float = Field(default=0.35, ge=0, le=1, description="a frame counts when its best box scores this")
    close_after_s: float = Field(default=120.0, gt=0, description="an open case ends after this long unseen")
    max_distance_m: float = Field(default=50.0, gt=0, description="moving cameras: a sighting farther away is new")


class CaseCode(_Strict):
    standard: str
    code: str
    name: str


DEFAULT_CODES: dict[str, list[dict[str, str]]] = {
    "garbage_pile": [
        {"standard": "GB/T 30428.2-2013", "code": "01-10", "name": "暴露垃圾"},
        {"standard": "GB/T 47678.5-2026", "code": "06010", "name": "暴露垃圾"},
    ],
    "overflowing_bin": [{"standard": "GB/T 47678.5-2026", "code": "06042", "name": "垃圾站(箱)满溢"}],
    "street_vending": [
        {"standard": "GB/T 30428.2-2013", "code": "04-06", "name": "占道经营"},
        {"standard": "GB/T 47678.5-2026", "code": "09006", "name": "占道经营"},
    ],
    "cooking_fumes": [{"standard": "CJ/T 214-2007", "code": "16", "name": "油烟污染"}],
}


class CasesConfig(_Strict):
    rules: dict[CaseType, RuleConfig] = Field(default_factory=dict, description="per type; missing types use defaults")
    codes: dict[CaseType, list[CaseCode]] = Field(
        default_factory=lambda: {k: [CaseCode(**c) for c in v] for k, v in DEFAULT_CODES.items()},
        description="the platform's case codes for each type",
    )

    def rule(self, case_type: str) -> RuleConfig:
        return self.rules.get(case_type, RuleConfig())  # type: ignore[call-overload]


class EvidenceConfig(_Strict):
    jpeg_quality: int = Field(default=80, ge=30, le=100)
    max_width_px: int = Field(default=1280, ge=320, le=7680, description="snapshots wider than this are scaled down")


class MqttConfig(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = Field(default="edge-agent", pattern=r"^[^#+]+$")
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description='use "${MQTT_PASSWORD}" to read it from the environment'
    )
    ca_file: Path | None = Field(default=None, description="CA certificate: turns TLS on")
    client_cert: Path | None = None
    client_key: Path | None = None

    @field_validator("ca_file", "client_cert", "client_key")
    @classmethod
    def _tls_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found; give a PEM file readable by the agent")
        return value


class UploaderConfig(_Strict):
    mqtt: MqttConfig | None = Field(default=None, description="without it cases stay in the local outbox")
    drain_timeout_s: float = Field(default=10.0, ge=0, description="on shutdown, how long to keep publishing")


class AgentConfig(_Strict):
    """The whole configuration file."""

    agent_id: str = Field(pattern=_ID, description="this box's name, unique in the city")
    state_dir: Path = Field(default=Path("edge-agent-data"), description="outbox, keys and logs live here")
    sources: list[SourceConfig] = Field(min_length=1)
    detector: DetectorConfig
    cases: CasesConfig = Field(default_factory=CasesConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    uploader: UploaderConfig = Field(default_factory=UploaderConfig)

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} is used twice; give every source its own id")
            seen.add(source.id)
        return sources


_PATH_KEYS = {"url", "telemetry", "model", "state_dir", "ca_file", "client_cert", "client_key"}


def load_config(path: Path) -> AgentConfig:
    """Read and validate a configuration file; raise ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from exc
    return parse_config(text, base_dir=path.resolve().parent, origin=str(path))


def default_config() -> AgentConfig:
    """The embedded demo: the bundled sample clip, the bundled model, a local outbox in ./edge-agent-data."""
    return parse_config(resources.DEFAULT_CONFIG.read_text(encoding="utf-8"), base_dir=Path.cwd(), origin="(built-in)")


def parse_config(text: str, base_dir: Path, origin: str) -> AgentConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys (agent_id, sources, detector, …) at the top")
    problems: list[str] = []
    raw = _prepare(raw, (), base_dir, problems)
    if problems:
        raise ConfigError(_report(origin, problems))
    try:
        config = AgentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_report(origin, [_describe(e) for e in exc.errors()])) from None
    if not config.state_dir.is_absolute():  # the default, which _prepare did not see
        config = config.model_copy(update={"state_dir": base_dir / config.state_dir})
    return config


def _prepare(node: Any, loc: tuple, base_dir: Path, problems: list[str]) -> Any:
    """Expand ${VAR}, resolve builtin: names and relative paths, recursively."""
    if isinstance(node, dict):
        return {k: _prepare(v, (*loc, k), base_dir, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_prepare(v, (*loc, i), base_dir, problems) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    value = _expand_env(node, loc, problems)
    key = loc[-1] if loc else ""
    if key in _PATH_KEYS and not is_live(value):
        if value.startswith("builtin:"):
            found = resources.builtin(value.removeprefix("builtin:"))
            if found is None:
                problems.append(f"{_path(loc)}: unknown built-in {value!r}; accepted: {resources.builtin_names()}")
                return value
            return str(found)
        expanded = Path(value).expanduser()
        return str(expanded if expanded.is_absolute() else base_dir / expanded)
    return value


def _expand_env(value: str, loc: tuple, problems: list[str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            problems.append(
                f"{_path(loc)}: environment variable {name} is not set; export {name}=… before starting the agent"
            )
            return ""
        return os.environ[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", replace, value)


def _describe(error: dict) -> str:
    loc = tuple(error["loc"])
    where = _path(loc)
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; check its spelling against configs/README.md"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message} (got {_show(loc, value)})"


def _show(loc: tuple, value: Any) -> str:
    if any(isinstance(p, str) and ("password" in p or "secret" in p) for p in loc):
        return "***"
    if isinstance(value, str):
        return repr(mask_url(value))
    if isinstance(value, dict | list):
        return type(value).__name__
    return repr(value)


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _report(origin: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{origin}: {len(problems)} problem(s) in the configuration:\n{lines}"

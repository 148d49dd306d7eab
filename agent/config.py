"""The agent's configuration: one YAML file validated into typed models before anything starts.

Errors name the key by its path (`sources[2].url`), show the bad value (passwords masked) and say
what is accepted. `${VAR}` anywhere in a string is replaced from the environment, which is how
secrets stay out of the file. Relative paths are relative to the configuration file.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from agent import resources
from agent.config_loading import ConfigError, parse_model
from agent.geometry import Homography
from agent.grid import DEFAULT_FIELDS, GridIndex
from agent.polygons import pixel_polygon, read_polygon_features
from agent.rules_config import CasesConfig, CaseType, RuleConfig
from streams.video import is_live
from uploader.connection import MqttSettings

SourceKind = Literal["vehicle", "fixed", "drone", "bodycam"]
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraPosition(_Strict):
    """Where a fixed camera stands (WGS-84); cases from it carry this position."""

    lat: float = Field(ge=-90, le=90, description="latitude, degrees")
    lon: float = Field(ge=-180, le=180, description="longitude, degrees")
    accuracy_m: float = Field(default=10.0, gt=0, description="how far the problems it sees may be from this point")


class CameraMount(_Strict):
    """How a camera sits on its vehicle (or person), so that a box can be placed on the ground."""

    hfov_deg: float = Field(gt=1, lt=179, description="horizontal field of view")
    height_m: float | None = Field(default=None, gt=0, description="above the ground; drones: from telemetry")
    pitch_deg: float = Field(default=-10.0, ge=-90, le=30, description="0 looks level, -90 straight down")
    yaw_offset_deg: float = Field(default=0.0, ge=-180, le=360, description="from the vehicle's heading; 90 = right")
    roll_deg: float = Field(default=0.0, ge=-45, le=45)


class ReferencePoint(_Strict):
    """A surveyed point seen by a fixed camera: where it is in the image and on the map."""

    pixel: tuple[float, float] = Field(description="[x, y] in the camera's full-resolution image")
    position: tuple[float, float] = Field(description="[lat, lon] WGS-84")


class ZoneConfig(_Strict):
    """An area of a camera's image, in pixels, where cases of some types are raised (fixed cameras)."""

    name: str = Field(pattern=_ID, description="short name for logs")
    polygon_px: list[tuple[float, float]] = Field(min_length=3, description="corners [[x, y], ...] in image pixels")
    types: list[CaseType] = Field(default_factory=list, description="case types it applies to; empty: every type")

    @field_validator("polygon_px")
    @classmethod
    def _valid_polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        pixel_polygon(value)
        return value


class SourceConfig(_Strict):
    """One camera or video file."""

    id: str = Field(pattern=_ID, description="short name used in logs, topics and case records")
    kind: SourceKind = Field(description="vehicle | fixed | drone | bodycam: decides sampling and geolocation")
    url: str = Field(description="rtsp://user:${PASSWORD}@host/path, a video file, or builtin:sample")
    telemetry: Path | None = Field(
        default=None, description="positions: DJI .SRT, NMEA .nmea, .gpx, MISB KLV .klv or a .ts with KLV"
    )
    gnss: str | None = Field(
        default=None, description="cameras on vehicles: live NMEA from tcp://HOST:PORT, udp://0.0.0.0:PORT or /dev/tty…"
    )
    position: CameraPosition | None = Field(default=None, description="fixed cameras: where the camera stands")
    camera: CameraMount | None = Field(default=None, description="moving cameras: mounting, to place boxes")
    homography: list[ReferencePoint] | None = Field(
        default=None, min_length=4, description="fixed cameras: 4+ reference points mapping pixels to the map"
    )
    sample_fps: float = Field(default=2.0, gt=0, le=30, description="most frames per second given to the detector")
    sample_every_m: float = Field(default=5.0, gt=0, description="moving cameras: one frame per this many metres")
    idle_every_s: float = Field(
        default=5.0, gt=0, description="fixed cameras without motion, or moving ones standing still: one frame per …"
    )
    motion_threshold: float = Field(default=0.002, gt=0, lt=1, description="fixed cameras: share of pixels that moved")
    realtime: bool = Field(default=False, description="files: pace at real time, as a camera would")
    start_time: datetime | None = Field(
        default=None, description="files: when recording began (ISO 8601 with zone), if the file's own time is wrong"
    )
    keyframes_only: bool = Field(
        default=False,
        description="decode keyframes only, many times cheaper: files sampled sparsely, or cameras whose "
        "keyframe interval is about the detection interval (the motion gate then sees one frame per keyframe)",
    )
    zones: list[ZoneConfig] = Field(
        default_factory=list, description="with zones, only boxes whose bottom centre lies in one count"
    )
    masks_px: list[list[tuple[float, float]]] = Field(
        default_factory=list, description="image-pixel polygons; a box whose bottom centre lies in one never counts"
    )
    geo_zones: Path | None = Field(
        default=None, description="moving cameras: GeoJSON of WGS-84 polygons; only frames taken inside one count"
    )
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    stall_s: float = Field(default=10.0, ge=1, le=300, description="cameras: no frame for this long means reconnect")
    reconnect_cap_s: float = Field(default=30.0, ge=1, le=600, description="cameras: longest wait between retries")

    @field_validator("url")
    @classmethod
    def _url_exists(cls, value: str) -> str:
        if not is_live(value) and not Path(value).is_file():
            raise ValueError("file not found; give an existing video file or an rtsp:// URL")
        return value

    @field_validator("start_time")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the time zone too, e.g. 2026-11-20T10:30:00+08:00")
        return value

    @field_validator("homography")
    @classmethod
    def _homography_fits(cls, points: list[ReferencePoint] | None) -> list[ReferencePoint] | None:
        if points is not None:
            Homography([p.pixel for p in points], [p.position for p in points])  # raises ValueError with the fix
        return points

    @field_validator("masks_px")
    @classmethod
    def _valid_masks(cls, value: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for i, corners in enumerate(value):
            try:
                pixel_polygon(corners)
            except ValueError as exc:
                raise ValueError(f"mask {i}: {exc}") from None
        return value

    @field_validator("geo_zones")
    @classmethod
    def _valid_geo_zones(cls, value: Path | None) -> Path | None:
        if value is None:
            return value
        if not value.is_file():
            raise ValueError("file not found; give a GeoJSON FeatureCollection of WGS-84 polygons")
        accepted = get_args(CaseType)
        for feature in read_polygon_features(value):
            types = feature.properties.get("types") or []
            for case_type in [types] if isinstance(types, str) else types:
                if case_type not in accepted:
                    raise ValueError(
                        f"{value}: features[{feature.index}]: unknown case type {case_type!r} in 'types';"
                        f" accepted: {', '.join(accepted)}"
                    )
        return value

    @field_validator("telemetry")
    @classmethod
    def _telemetry_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found; give the .SRT, .nmea, .gpx or .klv file recorded with the video")
        return value


def source_id_for(video: Path) -> str:
    """A source id made from a file name (ids allow letters, digits, '_', '.', '-')."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", video.stem).strip("_.-")[:64]
    return cleaned or "video"


class InboxConfig(_Strict):
    """A folder where operators upload recorded footage (drones, body cams) to be processed once."""

    folder: Path = Field(description="uploads land here; processed files move to done/ or failed/")
    kind: SourceKind = Field(default="drone", description="what recorded the uploads")
    sample_fps: float = Field(default=2.0, gt=0, le=30)
    settle_s: float = Field(default=10.0, ge=0, description="an upload is finished when its size is still this long")
    scan_every_s: float = Field(default=2.0, gt=0)


class TilingConfig(_Strict):
    """Tiled inference for frames much larger than the model input (drone photos and 4K video)."""

    tile_px: int | None = Field(
        default=None, ge=64, le=8192, description="side of a square tile in frame pixels; default: the model input"
    )
    overlap: float = Field(default=0.2, ge=0, lt=0.5, description="share of a tile that neighbouring tiles share")
    full_frame: bool = Field(default=True, description="one more pass over the whole frame, for objects over a tile")
    min_frame_px: int | None = Field(
        default=None, ge=64, description="frames whose longest side is at most this go in one pass; default: tile_px"
    )

    @model_validator(mode="after")
    def _tiles_fit(self) -> TilingConfig:
        if self.tile_px and self.min_frame_px and self.min_frame_px < self.tile_px:
            raise ValueError(
                f"min_frame_px ({self.min_frame_px}) is below tile_px ({self.tile_px}): a frame between them would be"
                " one tile; give min_frame_px at least tile_px, or leave it out"
            )
        return self


class DetectorConfig(_Strict):
    """The model and how its classes become case types."""

    model: Path = Field(description="an ONNX detection model from `edge-agent export` (or .pt with the train extra)")
    min_score: float = Field(default=0.30, ge=0.01, le=1, description="boxes below this score are dropped")
    iou: float = Field(default=0.5, gt=0, le=1, description="overlap above which NMS keeps only the best box")
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime threads per inference")
    class_map: dict[str, CaseType] = Field(
        default={"garbage": "garbage_pile", "overflow": "overflowing_bin"},
        description="model class name -> case type; classes not listed never make a case",
    )
    tiling: TilingConfig | None = Field(default=None, description="large frames: detect on overlapping tiles")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError("model file not found; use builtin:garbage or a file made by `edge-agent export`")
        return value

    @model_validator(mode="after")
    def _tile_size_known(self) -> DetectorConfig:
        if self.tiling and self.tiling.tile_px is None and self.model.suffix.lower() == ".pt":
            raise ValueError("tiling: a .pt model does not state its input size; give tiling.tile_px (e.g. 640)")
        return self


class EvidenceConfig(_Strict):
    jpeg_quality: int = Field(default=80, ge=30, le=100)
    max_width_px: int = Field(default=1280, ge=320, le=7680, description="snapshots wider than this are scaled down")
    clips: bool = Field(default=True, description="add an MP4 clip (no re-encoding) to each case as its revision 2")
    clip_pre_s: float = Field(
        default=5.0, ge=0, le=60, description="seconds before the event; clips start on the keyframe at or before"
    )
    clip_post_s: float = Field(
        default=5.0, ge=0, le=60, description="seconds after the event; revision 2 is stored once they have passed"
    )
    clip_max_bytes: int = Field(
        default=8_000_000, ge=100_000, description="a longer clip starts at a later keyframe or ends sooner (4G budget)"
    )
    ring_max_s: float = Field(
        default=30.0, gt=0, le=600, description="cameras: seconds of encoded video buffered per source for clips"
    )
    ring_max_mb: float = Field(
        default=32.0, gt=0, le=4096, description="cameras: memory cap of that buffer per source; the oldest goes first"
    )

    @model_validator(mode="after")
    def _ring_holds_a_clip(self) -> EvidenceConfig:
        needed = self.clip_pre_s + self.clip_post_s
        if self.clips and self.ring_max_s < needed:
            raise ValueError(
                f"ring_max_s ({self.ring_max_s:g}) is shorter than clip_pre_s + clip_post_s ({needed:g}); "
                "give it at least that plus one keyframe interval"
            )
        return self


class MqttConfig(_Strict):
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


class UploaderConfig(_Strict):
    mqtt: MqttConfig | None = Field(default=None, description="without it cases stay in the local outbox")
    drain_timeout_s: float = Field(default=10.0, ge=0, description="on shutdown, how long to keep publishing")
    kbit_per_s: float | None = Field(default=None, gt=0, description="bandwidth cap for uploads (None: no cap)")
    daily_mb: float | None = Field(default=None, gt=0, description="daily upload budget; evidence waits beyond it")
    ack_timeout_s: float = Field(default=300.0, gt=0, description="send again what the platform has not acknowledged")
    disk_quota_mb: float = Field(default=2000.0, gt=0, description="over it, the oldest clips are evicted")
    disk_hard_limit_mb: float = Field(default=4000.0, gt=0, description="over it, the oldest cases are dropped")


class GridFields(_Strict):
    """The property names a grid file uses for each part of a case's `grid`."""

    code: str = Field(default=DEFAULT_FIELDS["code"], min_length=1, description="the grid code (required in the file)")
    name: str = Field(default=DEFAULT_FIELDS["name"], min_length=1)
    street: str = Field(default=DEFAULT_FIELDS["street"], min_length=1, description="the street office (街道)")
    district: str = Field(default=DEFAULT_FIELDS["district"], min_length=1, description="the district (区)")


class GridConfig(_Strict):
    """The grid layer (网格) that gives every case with a position its grid cell."""

    crs: Literal["WGS84", "GCJ02"] = Field(default="WGS84", description="datum of the file's coordinates")
    fields: GridFields = Field(default_factory=GridFields, description="property names in the file")
    file: Path = Field(description="GeoJSON FeatureCollection of Polygon/MultiPolygon grid cells")

    @field_validator("file")
    @classmethod
    def _loads(cls, value: Path, info: ValidationInfo) -> Path:
        if not value.is_file():
            raise ValueError("file not found; give the grid layer as a GeoJSON file")
        fields = info.data.get("fields") or GridFields()
        GridIndex.load(value, info.data.get("crs", "WGS84"), fields.model_dump())
        return value

    def index(self) -> GridIndex:
        return GridIndex.load(self.file, self.crs, self.fields.model_dump())


class AgentConfig(_Strict):
    """The whole configuration file."""

    agent_id: str = Field(pattern=_ID, description="this box's name, unique in the city")
    state_dir: Path = Field(default=Path("edge-agent-data"), description="outbox, keys and logs live here")
    sources: list[SourceConfig] = Field(default_factory=list, description="cameras and files to process")
    inbox: InboxConfig | None = Field(default=None, description="a folder of uploaded footage to process")
    detector: DetectorConfig
    cases: CasesConfig = Field(default_factory=CasesConfig)
    grid: GridConfig | None = Field(default=None, description="grid layer: sets `grid` on cases with a position")
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    uploader: UploaderConfig = Field(default_factory=UploaderConfig)

    @model_validator(mode="after")
    def _something_to_watch(self) -> AgentConfig:
        if not self.sources and self.inbox is None:
            raise ValueError("give at least one entry under sources, or an inbox folder")
        return self

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} is used twice; give every source its own id")
            seen.add(source.id)
        return sources


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
    config = parse_model(AgentConfig, text, base_dir, origin)
    if not config.state_dir.is_absolute():  # the default, which the loader did not see
        config = config.model_copy(update={"state_dir": base_dir / config.state_dir})
    return config


__all__ = [
    "AgentConfig",
    "CasesConfig",
    "ConfigError",
    "RuleConfig",
    "TilingConfig",
    "default_config",
    "load_config",
    "parse_config",
]

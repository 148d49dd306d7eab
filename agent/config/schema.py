"""The agent's configuration: one YAML file validated into typed models before anything starts.

Errors name the key by its path (`sources[2].url`), show the bad value (passwords masked) and say
what is accepted. `${VAR}` anywhere in a string is replaced from the environment, which is how
secrets stay out of the file. Relative paths are relative to the configuration file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.config import resources
from agent.config.loading import ConfigError, is_file, parse_model, read_config_text
from agent.config.observe import MetricsConfig
from agent.config.privacy import PrivacyConfig
from agent.config.rules import CasesConfig, CaseType, RuleConfig
from agent.config.sources import (  # noqa: F401 - re-exported: the configuration's public names
    _ID,
    CameraMount,
    CameraPosition,
    InboxConfig,
    ReferencePoint,
    SourceConfig,
    SourceKind,
    ZoneConfig,
    _Strict,
    source_id_for,
)
from agent.config.updates import UpdatesConfig
from agent.config.web import WebConfig
from agent.geo.grid import DEFAULT_FIELDS, GridIndex
from detectors.vetoes import MIN_COVERAGE, MIN_IOU, VETO_CLASSES
from protocol.broker import MqttConfig

if TYPE_CHECKING:
    from cityplatform.config import ReceiverConfig

SOURCES_GIVEN = "sources_given"  # validation context: the command supplies the sources (load_config)


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
    threads: int = Field(
        default=1, ge=1, le=64, description="tiles of a frame run on this many threads at once (cores to spare)"
    )

    @model_validator(mode="after")
    def _tiles_fit(self) -> TilingConfig:
        if self.tile_px and self.min_frame_px and self.min_frame_px < self.tile_px:
            raise ValueError(
                f"min_frame_px ({self.min_frame_px}) is below tile_px ({self.tile_px}): a frame between them would be"
                " one tile; give min_frame_px at least tile_px, or leave it out"
            )
        return self


class CropCheckConfig(_Strict):
    """A second look at one class's boxes by a crop classifier (detectors/crop_check.py): by default the
    check the detection model names in its metadata (the garbage model's bin-vs-overflowing check)."""

    enabled: bool = Field(default=True, description="false: the model's boxes as they are, unchecked")
    model: Path | None = Field(
        default=None, description="a classifier from `edge-agent train-crop-check`; default: the model's own"
    )
    checked_class: str = Field(default="overflow", description="with model: the detection class it checks")
    positive: str = Field(default="overflowing", description="with model: the classifier's class that keeps a box")
    weight: float | None = Field(
        default=None, gt=0, le=1, description="the detector score's share of the fused score; default: the model's"
    )

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not is_file(value):
            raise ValueError(
                "classifier file not found; give one made by `edge-agent train-crop-check`, or leave it out"
            )
        return value


class DetectorConfig(_Strict):
    """The model and how its classes become case types."""

    model: Path = Field(description="an ONNX detection model from `edge-agent export` (or .pt with the train extra)")
    min_score: float = Field(
        default=0.30, ge=0.01, le=1, description="boxes below this score are dropped (classes without a threshold)"
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="class name -> operating score, over the model's own (from `edge-agent calibrate`); "
        "classes in neither use min_score",
    )
    iou: float = Field(default=0.5, gt=0, le=1, description="overlap above which NMS keeps only the best box")
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime threads per inference")
    class_map: dict[str, CaseType] = Field(
        default={"garbage": "garbage_pile", "overflow": "overflowing_bin"},
        description="model class name -> case type; classes not listed never make a case",
    )
    tiling: TilingConfig | None = Field(default=None, description="large frames: detect on overlapping tiles")
    crop_check: CropCheckConfig = Field(
        default_factory=CropCheckConfig, description="a classifier's second look at one class's boxes"
    )
    other_inputs: bool = Field(
        default=True,
        description="use the other input shapes the model names (the garbage model's 416x224 for wide frames); "
        "false: its own input only",
    )

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: Path) -> Path:
        if not is_file(value):
            raise ValueError("model file not found; use builtin:garbage or a file made by `edge-agent export`")
        return value

    @field_validator("thresholds")
    @classmethod
    def _scores_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {name: score for name, score in value.items() if not 0 < score <= 1}
        if bad:
            raise ValueError(f"scores must be in (0, 1], got {bad}")
        return value

    @model_validator(mode="after")
    def _tile_size_known(self) -> DetectorConfig:
        if self.tiling and self.tiling.tile_px is None and self.model.suffix.lower() == ".pt":
            raise ValueError("tiling: a .pt model does not state its input size; give tiling.tile_px (e.g. 640)")
        return self


class VetoConfig(_Strict):
    """A box of this detector is dropped when another detector's box of `classes` is mostly the same thing
    (detectors/vetoes.py): a garbage box that is mostly a bicycle, a car, a person or a bench."""

    veto_with: str = Field(pattern=_ID, description="the id of the detector whose boxes veto, e.g. general")
    classes: list[str] = Field(
        default=list(VETO_CLASSES), min_length=1, description="its class names that veto (COCO's for builtin:general)"
    )
    min_coverage: float | None = Field(
        default=MIN_COVERAGE, gt=0, le=1, description="vetoed when such a box covers this share of ours; null: off"
    )
    min_iou: float | None = Field(default=MIN_IOU, gt=0, le=1, description="or overlaps it this much (IoU); null: off")


class DetectorEntry(DetectorConfig):
    """One entry of `detectors:`: today's `detector:` keys, plus its name, how often it runs and where.

    Every source is decoded once; each sampled frame goes to the entries that apply to the source and
    are due (smoke twice a second, garbage once every 2 s, on the same frames)."""

    id: str = Field(pattern=_ID, description="names the detector in logs, the bench and cases (explanation.detector)")
    every_s: float | None = Field(
        default=None, gt=0, le=3600, description="run at most once per this many seconds; null: every sampled frame"
    )
    sources: list[str] = Field(default_factory=list, description="ids of the sources it runs on; empty: all")
    kinds: list[SourceKind] = Field(default_factory=list, description="kinds of source it runs on; empty: all")
    vetoes: list[VetoConfig] = Field(
        default_factory=list, description="other detectors whose boxes drop ours; they run on the same frames"
    )

    def applies_to(self, source: SourceConfig) -> bool:
        """Whether this detector watches the source (by id and kind)."""
        return (not self.sources or source.id in self.sources) and (not self.kinds or source.kind in self.kinds)


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


class UploaderConfig(_Strict):
    mqtt: MqttConfig | None = Field(default=None, description="without it cases stay in the local outbox")
    drain_timeout_s: float = Field(default=10.0, ge=0, description="on shutdown, how long to keep publishing")
    kbit_per_s: float | None = Field(default=None, gt=0, description="bandwidth cap for uploads (None: no cap)")
    daily_mb: float | None = Field(default=None, gt=0, description="daily upload budget; evidence waits beyond it")
    ack_timeout_s: float = Field(default=300.0, gt=0, description="send again what the platform has not acknowledged")
    disk_quota_mb: float = Field(default=2000.0, gt=0, description="over it, the oldest clips are evicted")
    disk_hard_limit_mb: float = Field(default=4000.0, gt=0, description="over it, the oldest cases are dropped")
    stats_interval_s: float = Field(
        default=300.0, ge=10, le=86400, description="seconds between {prefix}/{agent}/stats heartbeats (4G: long)"
    )


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
        if not is_file(value):
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
    detector: DetectorConfig | None = Field(default=None, description="one model: the short form of `detectors`")
    detectors: list[DetectorEntry] = Field(default_factory=list, description="several models on one decode")
    cases: CasesConfig = Field(default_factory=CasesConfig)
    grid: GridConfig | None = Field(default=None, description="grid layer: sets `grid` on cases with a position")
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="masks in evidence that leaves the box")
    uploader: UploaderConfig = Field(default_factory=UploaderConfig)
    updates: UpdatesConfig = Field(default_factory=UpdatesConfig, description="signed remote updates over MQTT")
    metrics: MetricsConfig | None = Field(default=None, description="Prometheus and health endpoint; off if absent")
    web: WebConfig = Field(default_factory=WebConfig, description="the box's page: live view, zones, cases")

    @model_validator(mode="after")
    def _something_to_watch(self, info: ValidationInfo) -> AgentConfig:
        sources_given = bool(info.context and info.context.get(SOURCES_GIVEN))  # `process` brings its own files
        if not self.sources and self.inbox is None and not sources_given:
            raise ValueError("give at least one entry under sources, or an inbox folder")
        return self

    @model_validator(mode="after")
    def _updates_need_mqtt(self) -> AgentConfig:
        if self.updates.enabled and self.uploader.mqtt is None:
            raise ValueError("updates.enabled needs uploader.mqtt: updates come from the platform's broker")
        return self

    @model_validator(mode="after")
    def _detectors_fit(self) -> AgentConfig:
        if (self.detector is None) == (not self.detectors):
            raise ValueError(
                "give either `detector:` (one model) or `detectors:` (a list of them), exactly one of the two; "
                "configs/README.md shows both"
            )
        ids = [entry.id for entry in self.detectors]
        if twice := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(
                f"detectors: id {', '.join(map(repr, twice))} is used twice; give every detector its own id"
            )
        known = {source.id for source in self.sources}
        for i, entry in enumerate(self.detectors):
            for j, veto in enumerate(entry.vetoes):
                if veto.veto_with not in ids or veto.veto_with == entry.id:
                    raise ValueError(
                        f"detectors[{i}].vetoes[{j}].veto_with: {veto.veto_with!r} is no other detector's id; "
                        f"give one of {', '.join(repr(d) for d in ids if d != entry.id) or '(none: add one)'}"
                    )
            if self.inbox is None and (unknown := sorted(set(entry.sources) - known)):
                raise ValueError(
                    f"detectors[{i}].sources: {', '.join(map(repr, unknown))} is no source id here; "
                    f"give ids from sources ({', '.join(sorted(known))}) or leave the key out for all sources"
                )
        return self

    @property
    def detector_entries(self) -> list[DetectorEntry]:
        """The detectors to run: `detectors`, or the single `detector` as a one-item list."""
        if self.detectors:
            return self.detectors
        assert self.detector is not None  # _detectors_fit
        return [DetectorEntry.model_validate({**self.detector.model_dump(exclude_unset=True), "id": "detector"})]

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} is used twice; give every source its own id")
            seen.add(source.id)
        return sources


def load_config(path: Path, sources_given: bool = False) -> AgentConfig:
    """Read and validate a configuration file; raise ConfigError listing every problem. `sources_given`: the
    command names the videos itself (`process`), so a file with only detector and case settings is enough."""
    context = {SOURCES_GIVEN: True} if sources_given else None
    return parse_config(read_config_text(path), base_dir=path.resolve().parent, origin=str(path), context=context)


def load_receiver_config(path: Path) -> ReceiverConfig:
    """Read and check the receiver's YAML with the agent's reader; ConfigError names the file and what to do.
    The platform package takes the validated ReceiverConfig and shares only the protocol with the agent."""
    from cityplatform.config import ReceiverConfig

    if not is_file(path):
        raise ConfigError(
            f"{path}: no receiver configuration there; give the path of a receiver YAML, "
            "for example -c configs/receiver.yaml"
        )
    text = read_config_text(path)
    config = parse_model(ReceiverConfig, text, path.resolve().parent, str(path))
    if not config.store_dir.is_absolute():
        config = config.model_copy(update={"store_dir": path.resolve().parent / config.store_dir})
    return config


def default_config() -> AgentConfig:
    """The embedded demo: the bundled sample clip, the bundled model, a local outbox in ./edge-agent-data."""
    return parse_config(resources.DEFAULT_CONFIG.read_text(encoding="utf-8"), base_dir=Path.cwd(), origin="(built-in)")


def parse_config(text: str, base_dir: Path, origin: str, context: dict | None = None) -> AgentConfig:
    config = parse_model(AgentConfig, text, base_dir, origin, context)
    if not config.state_dir.is_absolute():  # the default, which the loader did not see
        config = config.model_copy(update={"state_dir": base_dir / config.state_dir})
    return config


__all__ = [
    "AgentConfig",
    "CasesConfig",
    "ConfigError",
    "CropCheckConfig",
    "DetectorEntry",
    "RuleConfig",
    "TilingConfig",
    "default_config",
    "load_config",
    "load_receiver_config",
    "parse_config",
]

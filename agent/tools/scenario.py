"""Labelled scenarios: a real encoded video and a GPS track built from labelled photos.

Why: a detector's mAP says nothing about cases. A scenario replays what a patrol sees (a pile in
view for a few seconds while the car passes, empty street, the same pile again on the next pass)
from photos whose labels say what is there, so that the cases the agent raises can be checked
against the cases the labels call for (`agent.tools.scenario_eval`).

A scenario file (YAML) lists segments; each shows one held-out photo (by its number, e.g.
"000768") or an empty road (`blank`) for some seconds, while the camera moves from one place to
another. Every frame is the photo with a little camera shake (a few pixels of shift, a little
scale), so that no two frames are alike. Only photos on the held-out side of
`agent.tools.training.split_by_source` are accepted: the bundled model never trained on them.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.tools.evaluate import read_labels
from agent.tools.training import split_side
from streams.nmea import sentence

Point = str | tuple[float, float]  # a place name, or [east_m, north_m] from the origin
METRES_PER_DEGREE = 111_320.0
BLANK = "blank"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Segment(_Strict):
    """Some seconds of one photo (or an empty road) while the camera moves from `from` to `to`."""

    show: str = Field(description="a photo's number in the dataset (e.g. '000768'), or 'blank' for an empty road")
    seconds: float = Field(gt=0, le=600)
    from_: Point = Field(alias="from", description="where the camera starts: a place name or [east_m, north_m]")
    to: Point | None = Field(default=None, description="where it is at the end (default: where it started)")


class ScenarioSpec(_Strict):
    """A labelled sequence: which photos, for how long, where, and when."""

    dataset: Path = Field(description="YOLO folder (images/, labels/); relative paths are from the scenario file")
    classes: list[str] = Field(
        default=["garbage", "garbage_bin", "overflow"], description="the dataset's class names in id order"
    )
    kind: str = Field(default="vehicle", pattern="^(vehicle|fixed|drone|bodycam)$")
    start: datetime = Field(description="when the recording begins, ISO 8601 with a zone")
    origin: tuple[float, float] = Field(description="lat, lon of [0, 0]")
    places: dict[str, tuple[float, float]] = Field(default_factory=dict, description="name -> [east_m, north_m]")
    fps: int = Field(default=5, ge=1, le=30)
    size: tuple[int, int] = Field(default=(640, 480), description="width, height of the video")
    jitter_px: float = Field(default=3.0, ge=0, le=50, description="camera shake: largest shift, pixels")
    jitter_scale: float = Field(default=0.02, ge=0, le=0.3, description="camera shake: largest zoom, a fraction")
    seed: int = 0
    source: dict[str, Any] = Field(
        default_factory=dict, description="extra source settings (sample_fps, zones, geo_zones, position, ...)"
    )
    cases: dict[str, Any] | None = Field(default=None, description="`cases` settings for the run (rules, hours)")
    segments: list[Segment] = Field(min_length=1)

    @field_validator("start")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone too, e.g. 2026-11-20T10:30:00+08:00")
        return value

    @model_validator(mode="after")
    def _known_places(self) -> ScenarioSpec:
        for i, segment in enumerate(self.segments):
            for point in (segment.from_, segment.to):
                if isinstance(point, str) and point not in self.places:
                    raise ValueError(f"segments[{i}]: unknown place {point!r}; define it under places")
        return self


@dataclass(frozen=True)
class Shown:
    """One segment as built: its times in the video, where the camera went, and what the labels say."""

    index: int
    show: str
    start_s: float
    end_s: float
    start_en: tuple[float, float]  # east, north metres from the origin
    end_en: tuple[float, float]
    labels_xyxy: np.ndarray  # label boxes in video pixels (before the shake)
    labels_cls: np.ndarray

    @property
    def middle_en(self) -> tuple[float, float]:
        return ((self.start_en[0] + self.end_en[0]) / 2, (self.start_en[1] + self.end_en[1]) / 2)


@dataclass(frozen=True)
class Scenario:
    """A built scenario: the video, its NMEA track (moving cameras), and the segments."""

    spec: ScenarioSpec
    video: Path
    track: Path | None
    segments: list[Shown]

    def latlon(self, east_north: tuple[float, float]) -> tuple[float, float]:
        return to_latlon(self.spec.origin, east_north)


def load_spec(path: Path) -> ScenarioSpec:
    """Read a scenario file; the dataset path is taken relative to the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        spec = ScenarioSpec.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the scenario ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None
    here = path.resolve().parent
    update: dict[str, Any] = {"dataset": (here / spec.dataset).resolve()}
    if spec.source.get("geo_zones"):
        update["source"] = spec.source | {"geo_zones": (here / spec.source["geo_zones"]).resolve()}
    return spec.model_copy(update=update)


def to_latlon(origin: tuple[float, float], east_north: tuple[float, float]) -> tuple[float, float]:
    """Metres east and north of `origin` as WGS-84 (flat earth: exact enough over a few km)."""
    lat0, lon0 = origin
    east, north = east_north
    return lat0 + north / METRES_PER_DEGREE, lon0 + east / (METRES_PER_DEGREE * math.cos(math.radians(lat0)))


def photo_path(dataset: Path, number: str) -> Path:
    """The dataset photo with this number; refused if the model trained on it."""
    found = sorted((dataset / "images").glob(f"{number}_*"))
    if not found:
        raise ValueError(f"{dataset}/images: no photo numbered {number!r}")
    if split_side(found[0].name) != "val":
        raise ValueError(f"photo {number} is on the training side of the split; use a held-out one")
    return found[0]


def build(spec: ScenarioSpec, out_dir: Path) -> Scenario:
    """Write `scenario.mp4` (H.264) and, for moving cameras, `scenario.nmea` into `out_dir`."""
    if not (spec.dataset / "images").is_dir():
        raise ValueError(f"{spec.dataset}: no images/ folder here (../shared beside the checkout holds the datasets)")
    out_dir.mkdir(parents=True, exist_ok=True)
    width, height = spec.size
    rng = np.random.default_rng(spec.seed)
    shown: list[Shown] = []
    clock = 0.0
    for i, segment in enumerate(spec.segments):
        start_en = _point(spec, segment.from_)
        end_en = _point(spec, segment.to if segment.to is not None else segment.from_)
        xyxy, cls = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        if segment.show != BLANK:
            photo = photo_path(spec.dataset, segment.show)
            xyxy, cls = read_labels(spec.dataset / "labels" / (photo.stem + ".txt"), width, height)
        shown.append(Shown(i, segment.show, clock, clock + segment.seconds, start_en, end_en, xyxy, cls))
        clock += segment.seconds
    video = out_dir / "scenario.mp4"
    encode_h264(video, _frames(spec, rng), spec.size, spec.fps, spec.start)
    track = None
    if spec.kind != "fixed":
        track = out_dir / "scenario.nmea"
        track.write_text(nmea_track(spec, shown))
    return Scenario(spec, video, track, shown)


def shake(image: np.ndarray, rng: np.random.Generator, jitter_px: float, jitter_scale: float) -> np.ndarray:
    """The image as a slightly shaking camera sees it: sub-pixel shift and a little zoom about the centre."""
    height, width = image.shape[:2]
    scale = 1.0 + rng.uniform(-jitter_scale, jitter_scale)
    dx, dy = rng.uniform(-jitter_px, jitter_px, 2)
    matrix = np.array([[scale, 0, (1 - scale) * width / 2 + dx], [0, scale, (1 - scale) * height / 2 + dy]])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def blank_road(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An empty street: grey sky over asphalt, with grain; nothing to report. (A dashed white centre
    line is left out on purpose: the bundled model took it for an overflowing bin in 2 of 5 frames.)"""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    grey = np.where(rows < 0.4, 200 - 60 * rows, 95 + 20 * rows) * np.ones((1, width), np.float32)
    grey += rng.normal(0, 6, (height, width)).astype(np.float32)
    return cv2.cvtColor(np.clip(grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _frames(spec: ScenarioSpec, rng: np.random.Generator) -> Iterator[np.ndarray]:
    width, height = spec.size
    for segment in spec.segments:
        if segment.show == BLANK:
            base = blank_road(width, height, spec.seed)
        else:
            image = cv2.imread(str(photo_path(spec.dataset, segment.show)))
            base = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        for _ in range(round(segment.seconds * spec.fps)):
            yield shake(base, rng, spec.jitter_px, spec.jitter_scale)


def encode_h264(
    path: Path, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int, start: datetime | None = None
) -> None:
    """BGR frames of `size` (width, height) -> an H.264 file with ffmpeg (a keyframe a second, no B-frames);
    `start` becomes the file's creation_time."""
    width, height = size
    command = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24"]
    command += ["-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast"]
    command += ["-g", str(fps), "-bf", "0", "-pix_fmt", "yuv420p"]
    if start is not None:
        command += ["-metadata", f"creation_time={start.astimezone(UTC).isoformat().replace('+00:00', 'Z')}"]
    ffmpeg = subprocess.Popen([*command, str(path)], stdin=subprocess.PIPE)
    assert ffmpeg.stdin is not None
    try:
        for frame in frames:
            ffmpeg.stdin.write(frame.tobytes())
    finally:
        ffmpeg.stdin.close()
    if ffmpeg.wait() != 0:
        raise RuntimeError(f"ffmpeg could not encode {path}")


def nmea_track(spec: ScenarioSpec, shown: list[Shown]) -> str:
    """GGA and RMC sentences, one pair per video frame, along the segments' paths."""
    lines = []
    step = 1.0 / spec.fps
    for segment in shown:
        n = round((segment.end_s - segment.start_s) * spec.fps)
        for k in range(n):
            w = k / n  # the segment's end is where the next one starts, one frame later
            east = segment.start_en[0] + w * (segment.end_en[0] - segment.start_en[0])
            north = segment.start_en[1] + w * (segment.end_en[1] - segment.start_en[1])
            moment = spec.start + timedelta(seconds=segment.start_s + k * step)
            lines += _sentences(moment, to_latlon(spec.origin, (east, north)))
    return "\n".join(lines) + "\n"


def _sentences(moment: datetime, latlon: tuple[float, float]) -> list[str]:
    utc = moment.astimezone(UTC)
    hms = utc.strftime("%H%M%S") + f".{utc.microsecond // 10_000:02d}"
    lat, lon = latlon
    lat_s = f"{int(abs(lat)):02d}{(abs(lat) % 1) * 60:08.5f},{'N' if lat >= 0 else 'S'}"
    lon_s = f"{int(abs(lon)):03d}{(abs(lon) % 1) * 60:08.5f},{'E' if lon >= 0 else 'W'}"
    return [
        sentence(f"GPGGA,{hms},{lat_s},{lon_s},1,09,0.9,12.0,M,7.0,M,,"),
        sentence(f"GPRMC,{hms},A,{lat_s},{lon_s},0.0,90.0,{utc.strftime('%d%m%y')},,,A"),
    ]


def _point(spec: ScenarioSpec, point: Point) -> tuple[float, float]:
    return spec.places[point] if isinstance(point, str) else (float(point[0]), float(point[1]))

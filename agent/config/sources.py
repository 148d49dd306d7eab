"""Configuration of the sources: cameras and files, where they are, their zones and masks, and the
upload inbox. Part of the configuration file (`agent.config` puts it together); kept apart so that
each module stays readable.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.config.loading import is_file, looks_like_url
from agent.config.rules import CaseType
from agent.geo.geometry import Homography
from agent.geo.polygons import pixel_polygon, read_polygon_features

SourceKind = Literal["vehicle", "fixed", "drone", "bodycam"]
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CAMERA_SCHEMES = ("rtsp", "rtsps", "rtmp", "srt", "udp")
_EXAMPLE_URL = "rtsp://192.168.1.64:554/Streaming/Channels/101"  # user:${CAM_PASSWORD}@ goes before the host


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


class SourceInputs(_Strict):
    """A camera's two streams, as Frigate's roles: the detector and the tracker read the low-resolution
    `detect` substream (cheap to decode), while clips come from the `record` main stream, kept encoded
    and decoded only from its last keyframe when a case needs a snapshot. Zones, masks and reference
    points are in the detect stream's pixels (what the detector sees); evidence is at the record
    stream's full resolution, its boxes scaled to it."""

    detect: str = Field(description="the substream the detector reads, e.g. rtsp://…/Channels/102 (640x360)")
    record: str = Field(description="the main stream: clips and snapshots, e.g. rtsp://…/Channels/101 (1080p)")

    @field_validator("detect", "record")
    @classmethod
    def _input_exists(cls, value: str) -> str:
        return _url_or_file(value)


class SourceConfig(_Strict):
    """One camera or video file."""

    id: str = Field(pattern=_ID, description="short name used in logs, topics and case records")
    kind: SourceKind = Field(description="vehicle | fixed | drone | bodycam: decides sampling and geolocation")
    url: str = Field(
        default="",
        description="rtsp://user:${PASSWORD}@host/path, a video file, or builtin:sample; "
        "a camera with a substream gives `inputs` instead",
    )
    inputs: SourceInputs | None = Field(
        default=None, description="cameras with a substream: {detect: URL of the substream, record: URL of the main}"
    )
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
        return _url_or_file(value)

    @model_validator(mode="after")
    def _one_way_in(self) -> SourceConfig:
        """`url` or `inputs`; with inputs, `url` is the detect input (what every one-input path reads)."""
        if self.inputs is None:
            if not self.url:
                raise ValueError(
                    "url: required key is missing; give the camera's rtsp:// URL or a video file, "
                    "or inputs: {detect: URL, record: URL} for a camera with a substream"
                )
            return self
        if self.url and self.url != self.inputs.detect:
            raise ValueError("give either url or inputs, not both (with inputs, the detector reads inputs.detect)")
        if looks_like_url(self.inputs.detect) != looks_like_url(self.inputs.record):
            raise ValueError("inputs: detect and record must both be camera URLs or both be files")
        if not looks_like_url(self.inputs.record) and not self.realtime:
            raise ValueError(
                "inputs: two files play as a camera's two streams only with realtime: true; "
                "give realtime: true, or url: with one file"
            )
        object.__setattr__(self, "url", self.inputs.detect)  # frozen: set once, here, while validating
        return self

    @property
    def record_url(self) -> str | None:
        """The record input (main stream) of a two-input source; None when the source has one input."""
        return self.inputs.record if self.inputs else None

    @field_validator("gnss")
    @classmethod
    def _gnss_address(cls, value: str | None) -> str | None:
        if value is None or value.startswith("/"):
            return value
        scheme, slashes, address = value.partition("://")
        host, port = _host_and_port(address.split("/", 1)[0])
        if not slashes or scheme not in ("tcp", "udp", "gpsd") or not host or not _valid_port(port):
            raise ValueError(
                "bad gnss address; use tcp://HOST:PORT, udp://0.0.0.0:PORT, gpsd://HOST:2947 (ports 1-65535)"
                " or a device path such as /dev/ttyUSB0"
            )
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
        if not is_file(value):
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
        if value is not None and not is_file(value):
            raise ValueError("file not found; give the .SRT, .nmea, .gpx or .klv file recorded with the video")
        return value


def _url_or_file(value: str) -> str:
    if looks_like_url(value):
        check_camera_url(value)
    elif not is_file(value):
        raise ValueError("file not found; give an existing video file or an rtsp:// URL")
    return value


def check_camera_url(url: str) -> None:
    """Raise ValueError ("bad URL: ...", never quoting the password) for what can be told without
    a network: the scheme, its two slashes, a space, the host and the port."""
    accepted = ", ".join(f"{scheme}://" for scheme in CAMERA_SCHEMES)
    scheme, _, rest = url.partition(":")
    if scheme.lower() in ("http", "https"):
        raise ValueError(
            f"bad URL: {scheme}:// is the camera's web page, not its video; give its RTSP stream, e.g. {_EXAMPLE_URL}"
        )
    if scheme.lower() not in CAMERA_SCHEMES or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise ValueError(f"bad URL: unknown scheme; accepted: {accepted} (or a video file), e.g. {_EXAMPLE_URL}")
    if not rest.startswith("//"):
        raise ValueError(f"bad URL: write two slashes after the scheme ({scheme.lower()}://host/...)")
    if re.search(r"\s", url):
        raise ValueError("bad URL: it holds a space; write a space in a password as %20")
    authority = rest[2:]
    userinfo, at, after = authority.rpartition("@")
    if at and "/" in userinfo and ":" not in userinfo:  # the '@' was in the path, not after a user
        after = authority
    host, port = _host_and_port(re.split(r"[/?#]", after, maxsplit=1)[0])
    if not host:
        raise ValueError(f"bad URL: no host; give the camera's address, e.g. {_EXAMPLE_URL}")
    if port is not None and not _valid_port(port):
        raise ValueError(f"bad URL: port {port[:20]!r} is not a number from 1 to 65535 (RTSP's own is 554)")


def _valid_port(port: str | None) -> bool:
    return port is not None and port.isdigit() and 1 <= int(port) <= 65535


def _host_and_port(hostport: str) -> tuple[str, str | None]:
    """`host:port`, `host` or `[v6]:port` split in two; the port None when not given."""
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        return host, tail[1:] if tail.startswith(":") else None
    host, colon, port = hostport.partition(":")
    return host, port if colon else None


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
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="uploads processed at once, each in a worker process; 1: one at a time in the agent itself",
    )

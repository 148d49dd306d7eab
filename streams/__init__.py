"""Video and telemetry sources: they turn cameras, files and sidecars into Frames with positions.

This package knows nothing of detectors, cases or uploads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class GeoPoint:
    """A WGS-84 point on the ground (frame centre, image corner)."""

    lat: float
    lon: float
    alt_m: float | None = None


@dataclass(frozen=True)
class PositionFix:
    """One position report. Times are UTC; `media_s` is the offset into a video when a sidecar gives it."""

    lat: float
    lon: float
    alt_m: float | None = None
    utc: datetime | None = None
    media_s: float | None = None
    accuracy_m: float | None = None
    heading_deg: float | None = None
    speed_mps: float | None = None
    source: str = "unknown"
    # What the sensor saw and how good the fix is; None where the sidecar does not say (most do not).
    fix_quality: int | None = None  # NMEA GGA quality: 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning
    pitch_deg: float | None = None  # platform attitude; `heading_deg` is its heading (or course over ground)
    roll_deg: float | None = None
    sensor_azimuth_deg: float | None = None  # gimbal relative to the platform (MISB ST 0601 tags 18/19/20)
    sensor_elevation_deg: float | None = None
    sensor_roll_deg: float | None = None
    hfov_deg: float | None = None
    vfov_deg: float | None = None
    slant_range_m: float | None = None
    frame_center: GeoPoint | None = None  # where the optical axis meets the ground
    corners: tuple[GeoPoint, GeoPoint, GeoPoint, GeoPoint] | None = None  # image corners on the ground


@dataclass(frozen=True)
class Frame:
    """A decoded frame handed to the agent.

    `utc` is wall-clock time of capture (for recorded footage: the recording start plus the media
    time); `mono_s` is the agent's monotonic clock when the frame was decoded; `media_s` the
    presentation time inside the stream. `image` is BGR, HxWx3 uint8.
    """

    source_id: str
    index: int
    utc: datetime
    mono_s: float
    media_s: float
    image: np.ndarray = field(repr=False)
    fix: PositionFix | None = None


class StreamError(Exception):
    """A source cannot be opened or read; the message says which source and what to check."""


def mask_url(text: str) -> str:
    """`text` with the password of every `user:password@` replaced by ***, for logs and error messages.

    Word by word (linear, so a 5 MB line costs no more than reading it): the password runs from the
    user's `:` to the word's last `@`, so one holding `@` or `/` is masked whole; a scheme typo
    (`rstp://`, `rtsp:/`) or no scheme at all is masked just the same; an empty one is left as it is.
    """
    return re.sub(r"\S+", _mask_word, text)


def _mask_word(match: re.Match) -> str:
    word = match.group()
    at = word.rfind("@")
    if at < 0:
        return word
    scheme = word.find(":/", 0, at)  # the user starts after `scheme:` (its slashes hold no ':')
    colon = word.find(":", scheme + 1 if scheme >= 0 else 0, at)
    return word if colon < 0 or colon + 1 == at else f"{word[: colon + 1]}***{word[at:]}"


def error_text(exc: BaseException) -> str:
    """A library error's text without the URL password that FFmpeg appends to its messages."""
    return mask_url(getattr(exc, "strerror", None) or str(exc))


__all__ = ["Frame", "GeoPoint", "PositionFix", "StreamError", "error_text", "mask_url"]

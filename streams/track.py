"""A time-ordered track of fixes and the position at a frame's time: interpolated, nearest, or none.

Telemetry rarely ticks with the frames (GPS at 1-10 Hz, KLV at its own rate), so a frame between two
fixes gets the straight-line blend of both. A frame far from any fix gets no position: a stale fix
would put evidence where the camera no longer was.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Protocol

from streams import GeoPoint, PositionFix

# How each optional field of PositionFix blends between two fixes; the rest come from the nearer fix.
_LINEAR = ("lat", "alt_m", "speed_mps", "pitch_deg", "roll_deg", "sensor_elevation_deg", "hfov_deg", "vfov_deg")
_LINEAR += ("slant_range_m",)
_CIRCULAR_360 = ("heading_deg", "sensor_azimuth_deg", "sensor_roll_deg")  # 0..360, wraps
_WORST = ("accuracy_m",)


class Positions(Protocol):
    """Anything that knows where the camera was at a frame's time (a recorded Track, a live receiver)."""

    def at(self, media_s: float, utc: datetime) -> PositionFix | None: ...


@dataclass(frozen=True)
class Track:
    """Fixes ordered by time, looked up by media offset (sidecars, KLV in the video) or by UTC (loggers).

    `max_gap_s`: the farthest a fix may be from the frame's time and still count; beyond it `at`
    returns None. Between two fixes that are at most 2 x `max_gap_s` apart, `at` interpolates
    (when `interpolate` is set); across a longer gap it falls back to the nearer fix, if near enough.
    """

    fixes: tuple[PositionFix, ...]
    max_gap_s: float = 2.0
    interpolate: bool = True
    _keys: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_media = bool(self.fixes) and self.fixes[0].media_s is not None
        keys = [_key(f, by_media) for f in self.fixes]
        if any(b < a for a, b in itertools.pairwise(keys)):
            order = sorted(range(len(keys)), key=keys.__getitem__)
            object.__setattr__(self, "fixes", tuple(self.fixes[i] for i in order))
            keys = [keys[i] for i in order]
        object.__setattr__(self, "_keys", tuple(keys))

    @property
    def by_media_time(self) -> bool:
        """True when fixes are keyed by offset into the video, False when by UTC."""
        return bool(self.fixes) and self.fixes[0].media_s is not None

    def at(self, media_s: float, utc: datetime) -> PositionFix | None:
        """The position at this time: interpolated if `interpolate`, else the nearest; None if stale."""
        return self._lookup(media_s, utc, self.interpolate)

    def nearest(self, media_s: float, utc: datetime) -> PositionFix | None:
        """The recorded fix nearest in time (no blending), or None when it is over `max_gap_s` away.

        For fields that must not be averaged, or to find the packet a value was read from.
        """
        return self._lookup(media_s, utc, False)

    def _lookup(self, media_s: float, utc: datetime, blend: bool) -> PositionFix | None:
        if not self.fixes:
            return None
        target = media_s if self.by_media_time else utc.timestamp()
        keys = self._keys
        i = bisect.bisect_left(keys, target)
        if i < len(keys) and keys[i] == target:
            return self.fixes[i]
        before, after = i - 1, i
        candidates = [j for j in (before, after) if 0 <= j < len(keys)]
        best = min(candidates, key=lambda j: abs(keys[j] - target))
        if abs(keys[best] - target) > self.max_gap_s:
            return None
        if blend and len(candidates) == 2 and keys[after] - keys[before] <= 2 * self.max_gap_s:
            w = (target - keys[before]) / (keys[after] - keys[before])
            return interpolate(self.fixes[before], self.fixes[after], w)
        return self.fixes[best]


def _key(fix: PositionFix, by_media: bool) -> float:
    if by_media:
        if fix.media_s is None:
            raise ValueError("a track keyed by media time has a fix without media_s")
        return fix.media_s
    if fix.utc is None:
        raise ValueError("a track keyed by UTC has a fix without utc")
    return fix.utc.timestamp()


def interpolate(a: PositionFix, b: PositionFix, w: float) -> PositionFix:
    """The fix a fraction `w` (0..1) of the way from `a` to `b`: linear, angles the short way round."""
    nearer = a if w < 0.5 else b
    values: dict[str, object] = {}
    for f in fields(PositionFix):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if va is None or vb is None:
            continue  # keep the nearer fix's value
        if f.name in _LINEAR:
            values[f.name] = va + (vb - va) * w
        elif f.name in _CIRCULAR_360:
            values[f.name] = _wrap360(_angle(va, vb, w))
        elif f.name in _WORST:
            values[f.name] = max(va, vb)
    values["lon"] = _lon(a.lon, b.lon, w)
    if a.utc is not None and b.utc is not None:
        values["utc"] = a.utc + timedelta(seconds=(b.utc - a.utc).total_seconds() * w)
    if a.media_s is not None and b.media_s is not None:
        values["media_s"] = a.media_s + (b.media_s - a.media_s) * w
    if a.frame_center is not None and b.frame_center is not None:
        values["frame_center"] = _point(a.frame_center, b.frame_center, w)
    if a.corners is not None and b.corners is not None:
        values["corners"] = tuple(_point(p, q, w) for p, q in zip(a.corners, b.corners, strict=True))
    return replace(nearer, **values)


def _angle(a: float, b: float, w: float) -> float:
    return a + (((b - a + 180) % 360) - 180) * w


def _wrap360(angle: float) -> float:
    wrapped = angle % 360
    return 0.0 if wrapped >= 360 else wrapped  # a tiny negative angle % 360 rounds to 360.0


def _lon(a: float, b: float, w: float) -> float:
    """Longitude the short way, across the antimeridian if that is shorter."""
    return ((_angle(a, b, w) + 180) % 360) - 180


def _point(p: GeoPoint, q: GeoPoint, w: float) -> GeoPoint:
    alt = None if p.alt_m is None or q.alt_m is None else p.alt_m + (q.alt_m - p.alt_m) * w
    return GeoPoint(p.lat + (q.lat - p.lat) * w, _lon(p.lon, q.lon, w), alt)

"""Which decoded frames the detector sees, decided per kind of camera.

Every frame must be decoded (H.264 needs them all), but only a few are converted to BGR and given
to the detector. A fixed camera looks at a still scene: it detects at its full rate while something
moves and slowly otherwise (a pile dumped at night is still checked every `idle_every_s`). A moving
camera (vehicle, drone, body cam) sees everything move: it samples by distance travelled when a
position is known, and by time otherwise.
"""

from __future__ import annotations

from typing import Protocol

import av
import cv2
import numpy as np

from streams import PositionFix

EARTH_RADIUS_M = 6371008.8


class Sampler(Protocol):
    def wants(self, vframe: av.VideoFrame, media_s: float, fix: PositionFix | None) -> bool:
        """True when this decoded frame should go to the detector."""
        ...


class TimeSampler:
    """At most `fps` frames per second of media time."""

    def __init__(self, fps: float) -> None:
        self.period_s = 1.0 / fps
        self._next = float("-inf")

    def wants(self, vframe: av.VideoFrame, media_s: float, fix: PositionFix | None) -> bool:
        if media_s + 1e-6 < self._next:
            return False
        self._next = media_s + self.period_s
        return True


class MotionGate:
    """Fixed cameras: `fps` while something moved in the last `hold_s`, else one frame every `idle_every_s`.

    Motion is the share of pixels of a 160x90 luma thumbnail that differ by more than 25 grey levels
    from a running average; `threshold` is that share (0.002 = about 29 of 14,400 pixels). The check
    runs at most `checks_per_s` times a second: the luma plane is read straight from the decoder's
    YUV frame, with no colour conversion.
    """

    def __init__(
        self, fps: float, idle_every_s: float, threshold: float = 0.002, hold_s: float = 10.0, checks_per_s: float = 5
    ) -> None:
        self._active = TimeSampler(fps)
        self.idle_every_s = idle_every_s
        self.threshold = threshold
        self.hold_s = hold_s
        self._check_every_s = 1.0 / checks_per_s
        self._next_check = float("-inf")
        self._background: np.ndarray | None = None
        self._moved_at = float("-inf")
        self._last_sample = float("-inf")
        self.motion_checks = 0

    def wants(self, vframe: av.VideoFrame, media_s: float, fix: PositionFix | None) -> bool:
        if media_s >= self._next_check:
            self._next_check = media_s + self._check_every_s
            if self._moved(vframe):
                self._moved_at = media_s
        active = media_s - self._moved_at <= self.hold_s
        idle_due = media_s - self._last_sample >= self.idle_every_s
        if (active and self._active.wants(vframe, media_s, fix)) or idle_due:
            self._last_sample = media_s
            return True
        return False

    def _moved(self, vframe: av.VideoFrame) -> bool:
        self.motion_checks += 1
        small = cv2.resize(luma(vframe), (160, 90), interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._background is None or self._background.shape != small.shape:
            self._background = small
            return True  # the first look counts as motion: check the scene once at start
        changed = np.count_nonzero(np.abs(small - self._background) > 25) / small.size
        cv2.accumulateWeighted(small, self._background, 0.05)
        return changed > self.threshold


class DistanceSampler:
    """Moving cameras: a frame every `every_m` metres travelled, at most `fps` a second, and at least
    one every `idle_every_s` (stopped at a light, or no position known: then by time at `fps`)."""

    def __init__(self, every_m: float, fps: float, idle_every_s: float) -> None:
        self.every_m = every_m
        self._max_rate = TimeSampler(fps)
        self.idle_every_s = idle_every_s
        self._last_fix: PositionFix | None = None
        self._last_sample = float("-inf")

    def wants(self, vframe: av.VideoFrame, media_s: float, fix: PositionFix | None) -> bool:
        if fix is None:
            return self._max_rate.wants(vframe, media_s, fix)
        far = self._last_fix is None or _metres(self._last_fix, fix) >= self.every_m - 0.01
        idle_due = media_s - self._last_sample >= self.idle_every_s
        if (far or idle_due) and self._max_rate.wants(vframe, media_s, fix):
            self._last_fix, self._last_sample = fix, media_s
            return True
        return False


def luma(vframe: av.VideoFrame) -> np.ndarray:
    """The Y plane of a planar YUV frame as an (h, w) uint8 array, without copying the chroma."""
    if vframe.format.name.startswith(("yuv", "yuvj", "nv12")):
        plane = vframe.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : plane.width]
    return vframe.to_ndarray(format="gray")


def _metres(a: PositionFix, b: PositionFix) -> float:
    """Equirectangular distance: exact enough over the few metres between two samples."""
    mean_lat = np.radians((a.lat + b.lat) / 2)
    dx = np.radians(b.lon - a.lon) * np.cos(mean_lat)
    dy = np.radians(b.lat - a.lat)
    return float(EARTH_RADIUS_M * np.hypot(dx, dy))

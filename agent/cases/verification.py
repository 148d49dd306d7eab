"""Verification by the next pass (问题核查): a source that has one of its open cases' place in view and
does not see the problem says so with a `cleared` observation; seen again, the registry makes the
next revision of the case as for any sighting (the platform shows it as still there).

In view means, for a fixed camera, the case's box (the camera does not move, so its pixels are the
place) on every analysed frame: clear when no box of the type overlaps it, for `clear_after_s` and
`clear_min_frames` frames. For a moving camera, the case's located position inside the camera's
footprint at most `clear_range_m` away: the MISB frame corners where the frame has them, else the
sector of the camera's horizontal field of view around its heading (the mount's yaw added). A moving
camera judges a whole pass, from the frame the place comes into view to the frame it leaves it: clear
when the type was not detected at all on any frame of the pass and the pass had `clear_min_frames`
frames; the observation goes out once the place has left the view, with the pass's last frame as
its snapshot. A pile enters the footprint far ahead, where the detector may not find it yet (the
bundled sample's patrol car sees its overflowing bin only at 3 m, with the bin 20 m ahead in view on
the frames before): the first frames of a pass alone must not clear it. A pass the footage ends
inside is not judged. A case located only by the camera's own position (`camera_position:*`) is
never verified: where the object stood is not known, so whether it is in view cannot be known either.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import shapely

from agent.cases.case import iso_ms
from agent.cases.registry import MIN_OVERLAP_SHARE, CaseRegistry, OpenCase, overlap_share
from agent.config import CasesConfig, RuleConfig, SourceConfig
from agent.geo.earth import distance_m
from detectors import Detections
from streams import Frame, PositionFix

SCHEMA_VERSION = "1.0"
_CLEARED_NAMESPACE = uuid.UUID("0b6f4f4e-8d0a-4c55-9a55-2f1b2c7d9e31")


@dataclass(frozen=True)
class Clearance:
    """One open case seen clear: what the `cleared` observation says, before its evidence is made."""

    case: OpenCase
    source: SourceConfig
    frame: Frame  # the last clear frame: the snapshot
    clear_from: datetime
    frames: int
    view: dict[str, Any]

    @property
    def id(self) -> str:
        """Stable: the same footage processed again gives the same observation (the outbox keeps it once)."""
        key = f"{self.case.case_id}/r{self.case.revision}/cleared/{int(self.clear_from.timestamp() * 1000)}"
        return str(uuid.uuid5(_CLEARED_NAMESPACE, key))

    def to_record(self, agent_id: str, model: tuple[str, str], evidence: list[dict[str, Any]]) -> dict[str, Any]:
        """The JSON record (schema cleared-v1), before signing."""
        return {
            "id": self.id,
            "revision": 1,
            "schema_version": SCHEMA_VERSION,
            "agent_id": agent_id,
            "case_id": self.case.case_id,
            "case_revision": self.case.revision,
            "source": {"id": self.source.id, "kind": self.source.kind},
            "type": self.case.type,
            "clear_from": iso_ms(self.clear_from),
            "clear_until": iso_ms(self.frame.utc),
            "frames": self.frames,
            "view": self.view,
            "model": {"name": model[0], "version": model[1]},
            "evidence": evidence,
        }


@dataclass
class _Watch:
    since: datetime
    frames: int = 0
    view: dict[str, Any] = field(default_factory=dict)
    last: Frame | None = None  # moving cameras: the pass's last clear frame, its snapshot once the place is passed
    seen: bool = False  # moving cameras: the type was seen on this pass, which therefore clears nothing


class Verifier:
    """Watches one source's open cases frame by frame; `update` gives the ones seen clear long enough."""

    def __init__(self, registry: CaseRegistry, source: SourceConfig, cases: CasesConfig) -> None:
        self.registry = registry
        self.source = source
        self.cases = cases
        self._watching: dict[str, _Watch] = {}

    def update(
        self, frame: Frame, by_type: dict[str, Detections], looked_for: Callable[[str], bool] = lambda t: True
    ) -> list[Clearance]:
        """The cases this frame completes as clear (each marked cleared in the registry, so once). A type no
        detector looked for on this frame (`looked_for`: one not due) neither clears nor sees its cases."""
        done = []
        for case in self.registry.open_cases(self.source.id, frame.utc - timedelta(days=self.cases.remember_days)):
            if not looked_for(case.type):
                continue
            rule = self.cases.rule(case.type, frame.utc)
            view = self._in_view(frame, case, rule.clear_range_m) if rule.clear_after_s is not None else None
            seen = view is not None and self._seen(case, by_type.get(case.type))
            check = self._fixed if self.source.kind == "fixed" else self._passing
            clearance = check(frame, case, view, seen, rule)
            if clearance is not None:
                done.append(clearance)
                self.registry.mark_cleared(case.case_id, clearance.frame.utc)
        return done

    def _fixed(self, frame: Frame, case: OpenCase, view: dict | None, seen: bool, rule: RuleConfig) -> Clearance | None:
        """A fixed camera: the case's box clear on `clear_min_frames` frames over `clear_after_s` seconds."""
        if view is None or seen:
            self._watching.pop(case.case_id, None)  # out of view or still there: the count starts again
            return None
        watch = self._watching.setdefault(case.case_id, _Watch(frame.utc))
        watch.frames += 1
        clear_s = (frame.utc - watch.since).total_seconds()
        if watch.frames < rule.clear_min_frames or clear_s < (rule.clear_after_s or 0.0):
            return None
        del self._watching[case.case_id]
        return Clearance(case, self.source, frame, watch.since, watch.frames, view | {"clear_s": round(clear_s, 1)})

    def _passing(
        self, frame: Frame, case: OpenCase, view: dict | None, seen: bool, rule: RuleConfig
    ) -> Clearance | None:
        """A moving camera: judged when the place leaves the view, on the whole pass (module docstring)."""
        if view is not None:
            watch = self._watching.setdefault(case.case_id, _Watch(frame.utc))
            watch.seen = watch.seen or seen
            if not watch.seen:
                watch.frames, watch.view, watch.last = watch.frames + 1, view, frame
            return None
        watch = self._watching.pop(case.case_id, None)
        if watch is None or watch.seen or watch.last is None or watch.frames < rule.clear_min_frames:
            return None
        return Clearance(case, self.source, watch.last, watch.since, watch.frames, watch.view)

    def _in_view(self, frame: Frame, case: OpenCase, range_m: float) -> dict[str, Any] | None:
        """How the case's place is in this frame's view, or None."""
        if self.source.kind == "fixed":
            return {"method": "fixed_box", "box_px": [float(v) for v in case.box]} if case.box is not None else None
        if case.lat is None or case.lon is None or frame.fix is None or (case.method or "camera").startswith("camera"):
            return None
        distance = distance_m(frame.fix.lat, frame.fix.lon, case.lat, case.lon)
        mount = self.source.camera
        hfov = frame.fix.hfov_deg or (mount.hfov_deg if mount else None)
        yaw = mount.yaw_offset_deg if mount else 0.0
        if distance > range_m or not in_footprint(frame.fix, case.lat, case.lon, hfov, yaw):
            return None
        return {"method": "footprint", "range_m": round(distance, 1)}

    def _seen(self, case: OpenCase, detections: Detections | None) -> bool:
        """Whether the problem is seen: a fixed camera's box of the type on the case's box; a moving camera's
        any box of the type (it cannot tell which of the boxes is the case's, so any counts as seen)."""
        if detections is None or not len(detections):
            return False
        if self.source.kind != "fixed" or case.box is None:
            return True
        return any(overlap_share(box, case.box) >= MIN_OVERLAP_SHARE for box in detections.xyxy)


def in_footprint(fix: PositionFix, lat: float, lon: float, hfov_deg: float | None, yaw_offset_deg: float = 0.0) -> bool:
    """Whether a ground point is in the camera's view: inside the MISB frame corners, else within half the
    horizontal field of view of where the camera points (its heading plus the mount's yaw); unknown
    (no corners, no heading or no field of view): False, never guessed."""
    if fix.corners is not None and len(fix.corners) == 4:
        polygon = shapely.Polygon([(c.lon, c.lat) for c in fix.corners])
        return bool(shapely.intersects_xy(polygon, lon, lat))
    if fix.heading_deg is None or hfov_deg is None:
        return False
    pointing = fix.heading_deg + (fix.sensor_azimuth_deg or 0.0) + yaw_offset_deg  # a gimbal's azimuth is relative
    off = (bearing_deg(fix.lat, fix.lon, lat, lon) - pointing + 180.0) % 360.0 - 180.0
    return abs(off) <= hfov_deg / 2


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


__all__ = ["Clearance", "Verifier", "bearing_deg", "in_footprint"]

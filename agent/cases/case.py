"""The Case: what the agent reports to the platform, and its JSON record (schema case-v1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agent.geo.earth import Location
from detectors import Detections
from streams import Frame

SCHEMA_VERSION = "1.3"  # 1.1: optional `explanation`; 1.2: optional `privacy`; 1.3: `explanation.boxes`
_CASE_NAMESPACE = uuid.UUID("5d1f0c36-1f3e-4d0a-9c1e-6a6b2f7e9a10")


@dataclass(frozen=True)
class EvidenceFile:
    name: str
    media_type: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Case:
    """A candidate case: a problem of one type seen long enough at one place."""

    id: str
    revision: int
    agent_id: str
    source_id: str
    source_kind: str
    type: str
    codes: tuple[dict[str, str], ...]
    first_seen: datetime
    last_seen: datetime
    location: Location | None
    score_max: float
    score_mean: float
    frames: int
    model_name: str
    model_version: str
    evidence: tuple[EvidenceFile, ...] = field(default=())
    grid: dict[str, str | None] | None = None
    explanation: dict[str, Any] = field(default_factory=dict)  # why: tracks, presence, co-located members
    privacy: dict[str, Any] | None = None  # what was masked in the evidence (`privacy` config); None: nothing asked

    def to_record(self) -> dict[str, Any]:
        """The JSON record, before signing; `explanation` only when a rule gave one, `privacy` when masking is on."""
        record = {
            "id": self.id,
            "revision": self.revision,
            "schema_version": SCHEMA_VERSION,
            "agent_id": self.agent_id,
            "source": {"id": self.source_id, "kind": self.source_kind},
            "type": self.type,
            "codes": [dict(c) for c in self.codes],
            "first_seen": iso_ms(self.first_seen),
            "last_seen": iso_ms(self.last_seen),
            "location": self.location.to_record() if self.location else None,
            "grid": self.grid,
            "score": {"max": round(self.score_max, 4), "mean": round(self.score_mean, 4), "frames": self.frames},
            "model": {"name": self.model_name, "version": self.model_version},
            "evidence": [vars(e) for e in self.evidence],
        }
        if self.explanation:
            record["explanation"] = dict(self.explanation)
        if self.privacy is not None:
            record["privacy"] = dict(self.privacy)
        return record


def case_id(agent_id: str, source_id: str, case_type: str, first_seen: datetime) -> str:
    """A stable id: the same sighting processed again (a re-run, a restart) gets the same id."""
    key = f"{agent_id}/{source_id}/{case_type}/{int(first_seen.timestamp() * 1000)}"
    return str(uuid.uuid5(_CASE_NAMESPACE, key))


def iso_ms(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def crop_window(
    box_xyxy: np.ndarray, width: int, height: int, margin: float = 0.25, min_side_px: int = 64
) -> list[int]:
    """[left, top, right, bottom] of crop.jpg in the frame: the box with `margin` of its size around it (at
    least `min_side_px` wide and high), clipped to the frame."""
    x1, y1, x2, y2 = (float(c) for c in box_xyxy)
    pad_x = max((x2 - x1) * margin, (min_side_px - (x2 - x1)) / 2, 0)
    pad_y = max((y2 - y1) * margin, (min_side_px - (y2 - y1)) / 2, 0)
    return [
        max(int(x1 - pad_x), 0),
        max(int(y1 - pad_y), 0),
        min(int(x2 + pad_x) + 1, width),
        min(int(y2 + pad_y) + 1, height),
    ]


def evidence_boxes(frame: Frame, detections: Detections) -> dict[str, Any]:
    """Where the case's boxes are in its evidence frame (pixels) and which window crop.jpg shows: what the
    platform needs to turn a reviewed case into training labels (cityplatform/training_set.py)."""
    height, width = frame.image.shape[:2]
    best = detections.xyxy[detections.confidence.argmax()]
    return {
        "frame_px": [int(width), int(height)],
        "xyxy": [[round(float(v), 1) for v in box] for box in detections.xyxy],
        "crop_px": crop_window(best, width, height),
    }

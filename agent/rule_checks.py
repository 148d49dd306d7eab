"""Checks a rule applies before it confirms a sighting, beyond "seen in enough frames".

`boxes_change`: smoke and cooking fumes flicker and spread, so over the confirming frames their box
grows, shrinks or moves, or the pixels inside it change. A grey patch of wall or a stain that a
detector mistakes for smoke stays put and looks the same in every frame; it must not become a case.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from agent.rules_config import RuleConfig
from detectors import Detections
from streams import Frame


def boxes_change(frames: Sequence[tuple[Frame, Detections]], rule: RuleConfig) -> bool:
    """Whether the best box of the type changes over the frames (area, position, or the pixels in it).

    Box change is relative to the box's size (`motion_min_change`), so it means the same for a
    near and a far chimney; pixel change is the mean absolute grey-level difference inside the
    union of two consecutive boxes (`motion_min_pixel_diff`, 0-255).
    """
    kept = [(f, d.xyxy[int(d.confidence.argmax())].astype(np.float64)) for f, d in frames if len(d)]
    if len(kept) < 2:
        return False
    if _box_change(np.stack([box for _, box in kept])) > rule.motion_min_change:
        return True
    return any(
        _pixel_change(a.image, b.image, box_a, box_b) > rule.motion_min_pixel_diff
        for (a, box_a), (b, box_b) in pairwise(kept)
    )


def _box_change(xyxy: np.ndarray) -> float:
    """Largest relative change of area, or of centre position over the box's mean side length."""
    wh = np.clip(xyxy[:, 2:] - xyxy[:, :2], 1.0, None)
    area = wh[:, 0] * wh[:, 1]
    area_change = float(area.max() / area.min() - 1.0)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    spread = float(np.linalg.norm(centres.max(axis=0) - centres.min(axis=0)))
    return max(area_change, spread / float(np.sqrt(area.mean())))


def _pixel_change(image_a: np.ndarray, image_b: np.ndarray, box_a: np.ndarray, box_b: np.ndarray) -> float:
    """Mean absolute grey-level difference inside the union of the two boxes (0 if it is empty)."""
    if image_a.shape != image_b.shape:
        return float("inf")  # another resolution: nothing to compare, so do not call it static
    height, width = image_a.shape[:2]
    x1, y1 = np.floor(np.minimum(box_a[:2], box_b[:2])).astype(int)
    x2, y2 = np.ceil(np.maximum(box_a[2:], box_b[2:])).astype(int)
    x1, x2 = max(0, x1), min(width, x2)
    y1, y2 = max(0, y1), min(height, y2)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    grey_a = _grey(image_a[y1:y2, x1:x2])
    grey_b = _grey(image_b[y1:y2, x1:x2])
    return float(np.abs(grey_a - grey_b).mean())


def _grey(crop: np.ndarray) -> np.ndarray:
    return crop.astype(np.float32).mean(axis=2) if crop.ndim == 3 else crop.astype(np.float32)

"""Checks a rule applies before it confirms a sighting, beyond "seen in enough frames".

`boxes_change`: smoke and cooking fumes flicker and spread, so over the confirming frames their box
grows, shrinks or moves, or the pixels inside it change. A grey patch of wall or a stain that a
detector mistakes for smoke stays put and looks the same in every frame; it must not become a case.

`box_shift`: the opposite, for a stall. It stands still; a cart pushed past or a crowd walking by
moves. On a fixed camera a box that moves more than a fraction of its size (`max_shift`) is not the
one first seen, so its time there starts again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agent.config.rules import RuleConfig
from detectors import Detections
from streams import Frame

_GRID = 128  # pixel_change samples at most this many points along the longer side of the boxes


def best_box(detections: Detections) -> np.ndarray:
    """The highest-scoring box, xyxy float64."""
    return detections.xyxy[int(detections.confidence.argmax())].astype(np.float64)


def boxes_change(boxes: Sequence[np.ndarray], pixel_changes: Sequence[float], rule: RuleConfig) -> bool:
    """Whether the best box of the type changes over the confirming frames (area, position, or pixels).

    `boxes` are the best box of each frame; `pixel_changes` the `pixel_change` between consecutive
    frames, computed as each frame arrived (so a patch that never changes costs one comparison per
    frame, not one per frame pair in the window). Box change is relative to the box's size
    (`motion_min_change`), so it means the same for a near and a far chimney.
    """
    if len(boxes) < 2:
        return False
    if _box_change(np.stack(boxes)) > rule.motion_min_change:
        return True
    return any(change > rule.motion_min_pixel_diff for change in pixel_changes)


def box_shift(reference_xyxy: np.ndarray, xyxy: np.ndarray) -> float:
    """How far the nearest of `xyxy` lies from the reference box: the distance between their centres
    over the reference's size (the square root of its area), so 0.3 means the same near and far.

    The nearest box, not the best-scoring one: with two stalls in view the best box may switch
    between them from frame to frame, and neither has moved.
    """
    if not len(xyxy):
        return float("inf")
    size = float(np.sqrt(np.prod(np.clip(reference_xyxy[2:] - reference_xyxy[:2], 1.0, None))))
    centre = (reference_xyxy[:2] + reference_xyxy[2:]) / 2
    centres = (xyxy[:, :2] + xyxy[:, 2:]).astype(np.float64) / 2
    return float(np.linalg.norm(centres - centre, axis=1).min() / size)


def pixel_change(before: Frame, box_before: np.ndarray, after: Frame, box_after: np.ndarray) -> float:
    """Mean absolute grey-level difference (0-255) inside the union of the two boxes.

    Sampled on a grid of at most `_GRID` points a side: smoke changes over large areas, and a full
    crop of a big plume costs tens of milliseconds on an edge box.
    """
    image_a, image_b = before.image, after.image
    if image_a.shape != image_b.shape:
        return float("inf")  # another resolution: nothing to compare, so do not call it static
    height, width = image_a.shape[:2]
    x1, y1 = np.floor(np.minimum(box_before[:2], box_after[:2])).astype(int)
    x2, y2 = np.ceil(np.maximum(box_before[2:], box_after[2:])).astype(int)
    x1, x2 = max(0, x1), min(width, x2)
    y1, y2 = max(0, y1), min(height, y2)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    step = max(1, -(-max(x2 - x1, y2 - y1) // _GRID))
    grey_a = _grey(image_a[y1:y2:step, x1:x2:step])
    grey_b = _grey(image_b[y1:y2:step, x1:x2:step])
    return float(np.abs(grey_a - grey_b).mean())


def _box_change(xyxy: np.ndarray) -> float:
    """Largest relative change of area, or of centre position over the box's mean side length."""
    wh = np.clip(xyxy[:, 2:] - xyxy[:, :2], 1.0, None)
    area = wh[:, 0] * wh[:, 1]
    area_change = float(area.max() / area.min() - 1.0)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    spread = float(np.linalg.norm(centres.max(axis=0) - centres.min(axis=0)))
    return max(area_change, spread / float(np.sqrt(area.mean())))


def _grey(crop: np.ndarray) -> np.ndarray:
    return crop.astype(np.float32).mean(axis=2) if crop.ndim == 3 else crop.astype(np.float32)

"""Cross-model vetoes: a box one model calls garbage that another model sees as a car is not garbage.

The garbage model, trained on photos of piles and bins, fires on whatever looks like a heap from far
away: a parked scooter, a person crouching, a bench. A general model (COCO-80) knows those objects. A
garbage box that is mostly one of them (the other box covers most of it, or the two nearly coincide) is
dropped. Pure functions: no model is run here, the caller passes both models' Detections of one frame.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from detectors import Detections
from detectors.metrics import box_iou

VETO_CLASSES = ("bicycle", "car", "motorcycle", "person", "bench")  # COCO names (builtin:general)
MIN_COVERAGE = 0.7
MIN_IOU = 0.5


def coverage(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """Pairwise share of each `inner` box's area that each `outer` box covers: (N, 4), (M, 4) -> (N, M)."""
    if not len(inner) or not len(outer):
        return np.zeros((len(inner), len(outer)), np.float32)
    top_left = np.maximum(inner[:, None, :2], outer[None, :, :2])
    bottom_right = np.minimum(inner[:, None, 2:], outer[None, :, 2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area = np.prod(np.clip(inner[:, 2:] - inner[:, :2], 0, None), axis=1)
    return np.where(area[:, None] > 0, overlap / np.maximum(area[:, None], 1e-9), 0.0)


def vetoed(
    detections: Detections,
    by: Detections,
    classes: Collection[str] = VETO_CLASSES,
    min_coverage: float | None = MIN_COVERAGE,
    min_iou: float | None = MIN_IOU,
) -> np.ndarray:
    """A boolean mask over `detections`: True where a box is mostly one of `by`'s objects of `classes`.

    A box is vetoed when a `by` box of one of `classes` covers at least `min_coverage` of its area, or has
    IoU >= `min_iou` with it; None turns that test off. Which of `by`'s boxes count is up to the caller
    (the general model's own score threshold); class names not in `by`'s model never match.
    """
    for key, value in (("min_coverage", min_coverage), ("min_iou", min_iou)):
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"{key} must be in (0, 1] or None (off), got {value}")
    wanted = set(classes)
    objects = by.xyxy[np.array([name in wanted for name in by.names()], bool).reshape(-1)]
    out = np.zeros(len(detections), bool)
    if not len(detections) or not len(objects):
        return out
    if min_coverage is not None:
        out |= coverage(detections.xyxy, objects).max(axis=1) >= min_coverage
    if min_iou is not None:
        out |= box_iou(detections.xyxy, objects).max(axis=1) >= min_iou
    return out


def apply_vetoes(
    detections: Detections,
    by: Detections,
    classes: Collection[str] = VETO_CLASSES,
    min_coverage: float | None = MIN_COVERAGE,
    min_iou: float | None = MIN_IOU,
) -> Detections:
    """`detections` without the boxes that are mostly one of `by`'s objects of `classes` (see `vetoed`).

    Typical use: `apply_vetoes(garbage_model.detect(frame), general_model.detect(frame))`, both models on
    the same frame; the result keeps the garbage model's class names, scores and tracker ids.
    """
    return detections[~vetoed(detections, by, classes, min_coverage, min_iou)]


__all__ = ["MIN_COVERAGE", "MIN_IOU", "VETO_CLASSES", "apply_vetoes", "coverage", "vetoed"]

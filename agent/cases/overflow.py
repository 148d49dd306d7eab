"""Overflow evidence: which boxes of a frame say "this bin is overflowing" (垃圾满溢: garbage above or around a bin).

A garbage model's own `overflow` class tends to mean "a dark street container", so an overflowing_bin
case may instead (or also) be raised from the model's other boxes: a garbage box overlapping the top
or the foot of a bin box (`garbage_at_bin`). Which evidence counts is `cases.overflow.evidence`, chosen
by measurement on held-out photos (docs/overflow.md); each box says which evidence it is, and the
case's explanation records it ("model_overflow" or "garbage_at_bin").
"""

from __future__ import annotations

import numpy as np

from agent.config.rules import OverflowConfig
from detectors import Detections
from detectors.metrics import box_iou

MODEL_OVERFLOW = "model_overflow"
GARBAGE_AT_BIN = "garbage_at_bin"


class OverflowEvidence:
    """Replaces or joins the model's overflow boxes with composed ones, per frame, as configured."""

    def __init__(self, config: OverflowConfig, class_names: tuple[str, ...]) -> None:
        """Inactive (the model's boxes as they are) when the model lacks the garbage or the bin classes."""
        ids = {name: i for i, name in enumerate(class_names)}
        self.config = config
        self._garbage = np.array([ids[n] for n in config.garbage if n in ids], np.int32)
        self._bins = np.array([ids[n] for n in config.bins if n in ids], np.int32)
        self.active = bool(len(self._garbage) and len(self._bins)) and config.evidence != "model"

    def apply(self, by_type: dict[str, Detections], detections: Detections) -> dict[str, Detections]:
        """`by_type` with the overflow case type's boxes as `evidence` says: the model's, composed, or either."""
        if not self.active:
            return by_type
        case_type = self.config.case_type
        composed = garbage_at_bin(detections, self._garbage, self._bins, self.config.band)
        composed = composed[composed.confidence >= self.config.min_score]
        model = by_type.pop(case_type, None)
        if self.config.evidence == "either" and model is not None and len(model):
            composed = join(model, composed, self.config.same_iou)
        if len(composed):
            by_type[case_type] = composed
        return by_type

    def explain(self, case_type: str, detections: Detections) -> dict[str, object]:
        """For the overflow case type, which evidence its best box is: {"evidence": "garbage_at_bin"}."""
        if case_type != self.config.case_type or not len(detections):
            return {}
        name = detections.names()[int(detections.confidence.argmax())]
        return {"evidence": GARBAGE_AT_BIN if name == GARBAGE_AT_BIN else MODEL_OVERFLOW}


def garbage_at_bin(detections: Detections, garbage_ids: np.ndarray, bin_ids: np.ndarray, band: float) -> Detections:
    """One box per bin box that a garbage box overlaps at its top or its foot: the bin's box (where the
    labels put an overflowing bin; the union with the garbage matched them far worse, docs/overflow.md),
    scored by the mean of the bin's score and the best of theirs. The top and the
    foot are bands `band` times the bin's height above and below its top and bottom edges, widened by
    `band` times its width on each side (garbage heaped beside a bin lies in the foot band)."""
    is_bin = np.isin(detections.class_id, bin_ids)
    is_garbage = np.isin(detections.class_id, garbage_ids)
    bins, garbage = detections.xyxy[is_bin], detections.xyxy[is_garbage]
    if not len(bins) or not len(garbage):
        return Detections.empty((GARBAGE_AT_BIN,))
    bin_scores, garbage_scores = detections.confidence[is_bin], detections.confidence[is_garbage]
    width, height = bins[:, 2] - bins[:, 0], bins[:, 3] - bins[:, 1]
    x1, x2 = bins[:, 0] - band * width, bins[:, 2] + band * width
    touches = np.zeros((len(bins), len(garbage)), bool)
    for edge in (bins[:, 1], bins[:, 3]):  # the top, then the foot
        bands = np.stack([x1, edge - band * height, x2, edge + band * height], axis=1)
        touches |= _overlap(bands, garbage)
    boxes, scores, tracks = [], [], []
    tracker = detections.tracker_id[is_bin] if detections.tracker_id is not None else None
    for b in np.nonzero(touches.any(axis=1))[0]:
        boxes.append(bins[b])
        scores.append((bin_scores[b] + garbage_scores[touches[b]].max()) / 2)
        tracks.append(tracker[b] if tracker is not None else -1)
    if not boxes:
        return Detections.empty((GARBAGE_AT_BIN,))
    return Detections(
        np.array(boxes, np.float32),
        np.array(scores, np.float32),
        np.zeros(len(boxes), np.int32),
        (GARBAGE_AT_BIN,),
        np.array(tracks, np.int64) if tracker is not None else None,
    )


def join(model: Detections, composed: Detections, same_iou: float) -> Detections:
    """The model's overflow boxes and the composed ones, in one Detections; a composed box that overlaps a
    model box by more than `same_iou` is the same bin and is dropped (the model's box stands)."""
    if len(composed) and len(model):
        composed = composed[~(box_iou(composed.xyxy, model.xyxy) > same_iou).any(axis=1)]
    names = model.class_names + composed.class_names
    tracks = None
    if model.tracker_id is not None and (composed.tracker_id is not None or not len(composed)):
        tracks = np.concatenate([model.tracker_id, composed.tracker_id if len(composed) else np.zeros(0, np.int64)])
    return Detections(
        np.concatenate([model.xyxy, composed.xyxy]),
        np.concatenate([model.confidence, composed.confidence]),
        np.concatenate([model.class_id, composed.class_id + len(model.class_names)]).astype(np.int32),
        names,
        tracks,
    )


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M): whether box i of `a` and box j of `b` share some area."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return (w > 0) & (h > 0)


__all__ = ["GARBAGE_AT_BIN", "MODEL_OVERFLOW", "OverflowEvidence", "garbage_at_bin", "join"]

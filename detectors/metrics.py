"""Detection metrics: precision, recall, AP at IoU thresholds (COCO-style 101-point interpolation), a
confusion matrix at operating thresholds (one score, or one per class) and the lowest threshold that
reaches a precision (calibration). Pure numpy, so that evaluation runs on the box's own
inference path and not through a training framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M); 0 where both boxes are empty."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class ClassResult:
    name: str
    instances: int
    ap50: float
    ap50_95: float
    precision: float
    recall: float


@dataclass
class Evaluation:
    """Accumulates predictions and ground truth image by image; `results()` computes the metrics."""

    class_names: tuple[str, ...]
    operating_conf: float = 0.30  # for classes not in `class_conf`
    class_conf: dict[str, float] = field(default_factory=dict)  # per-class operating thresholds
    _scores: list[list[float]] = field(default_factory=list)
    _hits: list[list[np.ndarray]] = field(default_factory=list)  # per class: (10,) bool per prediction
    _instances: np.ndarray = field(init=False)
    confusion: np.ndarray = field(init=False)  # (classes + 1) x (classes + 1): rows predicted, cols true

    def __post_init__(self) -> None:
        n = len(self.class_names)
        self._scores = [[] for _ in range(n)]
        self._hits = [[] for _ in range(n)]
        self._instances = np.zeros(n, np.int64)
        self.confusion = np.zeros((n + 1, n + 1), np.int64)

    def add(
        self,
        pred_xyxy: np.ndarray,
        pred_conf: np.ndarray,
        pred_cls: np.ndarray,
        true_xyxy: np.ndarray,
        true_cls: np.ndarray,
    ) -> None:
        """One image: predictions and labelled boxes, both in the same pixel space."""
        for c in range(len(self.class_names)):
            p, t = pred_cls == c, true_cls == c
            self._instances[c] += int(t.sum())
            hits = _match(pred_xyxy[p], pred_conf[p], true_xyxy[t])
            self._scores[c].extend(pred_conf[p].tolist())
            self._hits[c].extend(hits)
        self._confuse(pred_xyxy, pred_conf, pred_cls, true_xyxy, true_cls)

    def _confuse(self, pred_xyxy, pred_conf, pred_cls, true_xyxy, true_cls) -> None:
        background = len(self.class_names)
        keep = pred_conf >= self.floors()[pred_cls]
        pred_xyxy, pred_cls = pred_xyxy[keep], pred_cls[keep]
        iou = box_iou(pred_xyxy, true_xyxy)
        matched_pred, matched_true = set(), set()
        for pi, ti in sorted(zip(*np.nonzero(iou >= 0.5), strict=True), key=lambda ij: -iou[ij]):
            if pi in matched_pred or ti in matched_true:
                continue
            matched_pred.add(pi)
            matched_true.add(ti)
            self.confusion[pred_cls[pi], true_cls[ti]] += 1
        for pi in set(range(len(pred_cls))) - matched_pred:
            self.confusion[pred_cls[pi], background] += 1
        for ti in set(range(len(true_cls))) - matched_true:
            self.confusion[background, true_cls[ti]] += 1

    def floors(self) -> np.ndarray:
        """The operating threshold of each class id."""
        return np.array([self.class_conf.get(n, self.operating_conf) for n in self.class_names], np.float32)

    def curve(self, c: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Class `c`'s predictions best first: (scores, true positive at IoU 0.5 per prediction, instances)."""
        scores = np.array(self._scores[c], np.float64)
        hits = np.array(self._hits[c]).reshape(-1, len(IOU_THRESHOLDS))
        order = np.argsort(-scores, kind="stable")
        return scores[order], hits[order, 0], int(self._instances[c])

    def results(self) -> list[ClassResult]:
        out = []
        floors = self.floors()
        for c, name in enumerate(self.class_names):
            scores = np.array(self._scores[c])
            hits = np.array(self._hits[c]).reshape(-1, len(IOU_THRESHOLDS))
            order = np.argsort(-scores, kind="stable")
            scores, hits = scores[order], hits[order]
            n = self._instances[c]
            aps = [_average_precision(hits[:, k], n) for k in range(len(IOU_THRESHOLDS))]
            precision, recall = precision_recall_at(scores, hits[:, 0], int(n), float(floors[c]))
            out.append(ClassResult(name, int(n), aps[0], float(np.mean(aps)), precision, recall))
        return out


def precision_recall_at(scores: np.ndarray, tp: np.ndarray, instances: int, threshold: float) -> tuple[float, float]:
    """Precision and recall of the predictions scoring at least `threshold` (precision 0 with none)."""
    kept = scores >= threshold
    hits = int(tp[kept].sum())
    return hits / max(int(kept.sum()), 1), (hits / instances if instances else 0.0)


def threshold_for_precision(scores: np.ndarray, tp: np.ndarray, target: float) -> float | None:
    """The lowest score at which the predictions scoring at least it reach `target` precision (so the
    most recall that precision allows), or None where no threshold does. `scores` sorted best first."""
    if not len(scores):
        return None
    precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    last_of_score = np.append(scores[1:] != scores[:-1], True)  # a threshold keeps all boxes of equal score
    ok = np.nonzero((precision >= target) & last_of_score)[0]
    return float(scores[ok[-1]]) if len(ok) else None


def _match(pred_xyxy: np.ndarray, pred_conf: np.ndarray, true_xyxy: np.ndarray) -> list[np.ndarray]:
    """For each prediction, whether it is a true positive at each IoU threshold (greedy by score)."""
    hits = np.zeros((len(pred_xyxy), len(IOU_THRESHOLDS)), bool)
    if not len(pred_xyxy) or not len(true_xyxy):
        return list(hits)
    iou = box_iou(pred_xyxy, true_xyxy)
    for k, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(true_xyxy), bool)
        for pi in np.argsort(-pred_conf, kind="stable"):
            candidates = np.where((iou[pi] >= threshold) & ~taken)[0]
            if len(candidates):
                best = candidates[iou[pi, candidates].argmax()]
                taken[best] = True
                hits[pi, k] = True
    return list(hits)


def _average_precision(tp: np.ndarray, instances: int) -> float:
    """Area under the interpolated precision-recall curve, sampled at 101 recall points (COCO)."""
    if instances == 0 or not len(tp):
        return 0.0
    tp_cum = np.cumsum(tp)
    recall = tp_cum / instances
    precision = tp_cum / np.arange(1, len(tp) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(sampled.mean())

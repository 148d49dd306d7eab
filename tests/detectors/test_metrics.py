"""Detection metrics on hand-made cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.metrics import Evaluation, box_iou, precision_recall_at, threshold_for_precision


def box(*xyxy: float) -> np.ndarray:
    return np.array([xyxy], np.float32)


def test_box_iou() -> None:
    assert box_iou(box(0, 0, 10, 10), box(5, 0, 15, 10))[0, 0] == pytest.approx(50 / 150)
    assert box_iou(np.zeros((0, 4)), box(0, 0, 1, 1)).shape == (0, 1)


def test_perfect_predictions_score_one() -> None:
    ev = Evaluation(("a", "b"))
    truth = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    ev.add(truth, np.array([0.9, 0.8], np.float32), np.array([0, 1]), truth, np.array([0, 1]))
    for result in ev.results():
        assert (result.ap50, result.ap50_95, result.precision, result.recall) == pytest.approx((1, 1, 1, 1))
    assert ev.confusion.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_confident_false_positive_halves_precision_at_first_rank() -> None:
    ev = Evaluation(("a",))
    truth = box(0, 0, 10, 10)
    preds = np.array([[50, 50, 60, 60], [0, 0, 10, 10]], np.float32)  # the wrong box scores higher
    ev.add(preds, np.array([0.9, 0.8], np.float32), np.array([0, 0]), truth, np.array([0]))
    (result,) = ev.results()
    # precision envelope is 0.5 at every recall point up to 1.0
    assert result.ap50 == pytest.approx(0.5)
    assert (result.precision, result.recall) == (0.5, 1.0)
    assert ev.confusion.tolist() == [[1, 1], [0, 0]]


def test_missed_object_and_wrong_class() -> None:
    ev = Evaluation(("a", "b"), operating_conf=0.5)
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    preds = box(0, 0, 10, 10)
    ev.add(preds, np.array([0.7], np.float32), np.array([1]), truth, np.array([0, 0]))
    a, b = ev.results()
    assert (a.ap50, a.recall, a.instances) == (0.0, 0.0, 2)
    assert b.instances == 0 and b.precision == 0.0
    assert ev.confusion.tolist() == [[0, 0, 0], [1, 0, 0], [1, 0, 0]]  # one a taken for b, one a missed


def test_loose_box_counts_at_050_but_not_at_095() -> None:
    ev = Evaluation(("a",))
    ev.add(box(0, 0, 10, 12), np.array([0.9], np.float32), np.array([0]), box(0, 0, 10, 10), np.array([0]))
    (result,) = ev.results()
    assert result.ap50 == pytest.approx(1.0)
    assert result.ap50_95 == pytest.approx(0.7)  # IoU 0.833 passes 0.50 … 0.80, fails 0.85 … 0.95


def test_threshold_for_precision_is_the_lowest_that_reaches_the_target() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.7, 0.5, 0.4])
    tp = np.array([True, True, True, False, True, False])
    # precision from the top: 1, 1, 1 (0.7 alone is no threshold: both 0.7 boxes come together), 0.75, 0.8, 0.67
    assert threshold_for_precision(scores, tp, 0.8) == 0.5
    assert threshold_for_precision(scores, tp, 0.9) == 0.8
    assert threshold_for_precision(scores, ~tp, 0.9) is None
    assert precision_recall_at(scores, tp, 5, 0.5) == (0.8, 0.8)

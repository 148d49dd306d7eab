"""Cross-model vetoes: garbage boxes that are mostly a car, a person or a bench go; the rest stay."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import Detections
from detectors.vetoes import apply_vetoes, coverage, vetoed

COCO = ("person", "bicycle", "car", "motorcycle", "bench", "truck", "dining table")
GARBAGE = ("garbage", "garbage_bin", "overflow")


def boxes(names: tuple[str, ...], *found: tuple[str, list[float]]) -> Detections:
    xyxy = np.array([box for _, box in found], np.float32).reshape(-1, 4)
    class_id = np.array([names.index(name) for name, _ in found], np.int32)
    return Detections(xyxy, np.full(len(found), 0.5, np.float32), class_id, names)


def test_coverage_is_the_share_of_the_inner_box() -> None:
    inner = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float32)
    outer = np.array([[5, 0, 100, 100]], np.float32)
    assert coverage(inner, outer)[:, 0].tolist() == [0.5, 0.0]  # an empty box is covered by nothing


def test_a_pile_inside_a_car_goes_and_a_pile_beside_it_stays() -> None:
    car = boxes(COCO, ("car", [100, 100, 300, 200]))
    garbage = boxes(
        GARBAGE,
        ("garbage", [150, 120, 250, 190]),  # all of it on the car
        ("garbage", [280, 150, 380, 230]),  # a pile by the kerb, the car's bumper over a corner of it
        ("overflow", [90, 90, 310, 210]),  # a little larger than the car (IoU 0.76): the car again
    )
    assert vetoed(garbage, car).tolist() == [True, False, True]
    kept = apply_vetoes(garbage, car)
    assert kept.xyxy.tolist() == [[280, 150, 380, 230]] and kept.class_names == GARBAGE


def test_only_the_configured_classes_veto() -> None:
    general = boxes(COCO, ("dining table", [0, 0, 100, 100]), ("truck", [200, 0, 300, 100]))
    garbage = boxes(GARBAGE, ("garbage", [10, 10, 90, 90]), ("garbage", [210, 10, 290, 90]))
    assert vetoed(garbage, general).tolist() == [False, False]  # neither is a default veto class
    assert vetoed(garbage, general, classes=("truck",)).tolist() == [False, True]


def test_each_test_can_be_turned_off_and_thresholds_move() -> None:
    person = boxes(COCO, ("person", [0, 0, 100, 200]))
    garbage = boxes(GARBAGE, ("garbage", [0, 100, 100, 200]))  # the lower half of the person: coverage 1, IoU 0.5
    assert vetoed(garbage, person, min_coverage=None, min_iou=0.5).tolist() == [True]
    assert vetoed(garbage, person, min_coverage=None, min_iou=0.6).tolist() == [False]
    assert vetoed(garbage, person, min_coverage=1.0, min_iou=None).tolist() == [True]
    assert vetoed(garbage, person, min_coverage=None, min_iou=None).tolist() == [False]


def test_bad_thresholds_name_the_key() -> None:
    none = Detections.empty(GARBAGE)
    with pytest.raises(ValueError, match="min_coverage"):
        vetoed(none, Detections.empty(COCO), min_coverage=0.0)
    with pytest.raises(ValueError, match="min_iou"):
        vetoed(none, Detections.empty(COCO), min_iou=1.5)


def test_nothing_to_veto_with_keeps_every_box_and_tracker_ids() -> None:
    garbage = boxes(GARBAGE, ("garbage", [0, 0, 10, 10]))
    tracked = Detections(garbage.xyxy, garbage.confidence, garbage.class_id, GARBAGE, np.array([7]))
    assert apply_vetoes(tracked, Detections.empty(COCO)).tracker_id.tolist() == [7]
    assert len(apply_vetoes(Detections.empty(GARBAGE), boxes(COCO, ("car", [0, 0, 10, 10])))) == 0

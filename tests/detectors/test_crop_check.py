"""The crop check: which crop the classifier sees, what a model's metadata may name, and that the checked
detector keeps exactly the boxes the shipped classifier calls overflowing, on real held-out photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config.resources import builtin
from agent.tools.evaluate import read_labels
from agent.tools.training import split_side
from detectors import ModelError
from detectors.crop_check import (
    METADATA_KEY,
    CropCheckedDetector,
    CropClassifier,
    own_spec,
    spec_from_metadata,
    square_crop,
)
from detectors.onnx_yolo import OnnxYoloDetector
from tests.conftest import need_shared


def test_the_crop_keeps_the_boxs_surroundings_and_its_shape() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 50:90] = 255  # the box: 40 wide, 20 high
    crop = square_crop(image, np.array([50, 40, 90, 60]), 64)
    assert crop.shape == (64, 64, 3)
    white = np.argwhere(crop[:, :, 0] > 200)
    # 20 % of the box on each side: 56 x 28 pixels of image scaled by 64 / 56 to 64 x 32, centred on grey;
    # the box itself, 8 pixels in from the crop's left and 4 from its top, then spans columns 9-54, rows 20-43
    assert (
        (white[:, 1].min(), white[:, 1].max()) == (9, 54)
        and 20 <= white[:, 0].min() <= 21
        and 42 <= white[:, 0].max() <= 43
    )
    assert crop[0, 0].tolist() == [114, 114, 114] and crop[32, 1].tolist() == [0, 0, 0]


def test_a_box_at_the_edge_is_clipped_to_the_image() -> None:
    image = np.full((50, 50, 3), 7, np.uint8)
    crop = square_crop(image, np.array([40, 40, 60, 60]), 32)  # half outside
    assert crop.shape == (32, 32, 3) and (crop == 7).mean() > 0.5
    assert square_crop(image, np.array([70, 70, 90, 90]), 32).tolist() == np.full((32, 32, 3), 114).tolist()


@pytest.mark.parametrize("name", ["../evil.onnx", "/etc/passwd", "sub/check.onnx", "..", ""])
def test_the_metadata_may_only_name_a_file_beside_the_model(tmp_path: Path, name: str) -> None:
    meta = {METADATA_KEY: json.dumps({"model": name, "class": "overflow", "positive": "overflowing", "weight": 0.7})}
    with pytest.raises(ModelError, match="must name a file beside the model"):
        spec_from_metadata(tmp_path / "det.onnx", meta)


def test_unreadable_metadata_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unreadable edge_agent_crop_check"):
        spec_from_metadata(tmp_path / "det.onnx", {METADATA_KEY: '{"model": "x.onnx"}'})
    assert spec_from_metadata(tmp_path / "det.onnx", {}) is None


def test_the_shipped_garbage_model_names_its_check_and_the_file_is_there() -> None:
    model = builtin("garbage")
    spec = own_spec(OnnxYoloDetector(model), model)
    assert spec is not None and spec.model.parent == model.parent and spec.model.is_file()
    assert (spec.checked_class, spec.positive) == ("overflow", "overflowing") and 0 < spec.weight < 1


def held_out_overflow_photos(count: int) -> list[Path]:
    """Held-out photos (the split's val side, never trained on) with labelled overflowing bins."""
    images = need_shared("datasets/garbage-street-cn/train/images")
    chosen = []
    for path in sorted(images.iterdir()):
        label = images.parent / "labels" / (path.stem + ".txt")
        if split_side(path.name) == "val" and label.exists() and " " in label.read_text():
            chosen.append(path)
        if len(chosen) == count:
            break
    return chosen


def test_the_checked_detector_rescores_overflow_boxes_and_holds_them_to_the_threshold() -> None:
    model = builtin("garbage")
    checked = build_checked(model)
    spec, floor = checked.spec, checked.floor
    plain = OnnxYoloDetector(model, min_score=0.01, model_thresholds=False)  # every candidate, unchecked
    overflow = plain.class_names.index("overflow")
    assert floor == OnnxYoloDetector(model).thresholds["overflow"]
    seen = kept = 0
    for path in held_out_overflow_photos(12):
        image = cv2.imread(str(path))
        found, after = plain.detect(image), checked.detect(image)
        boxes = found.xyxy[found.class_id == overflow]
        p = checked.classifier.probabilities(image, boxes)[:, checked.classifier.class_names.index("overflowing")]
        fused = found.confidence[found.class_id == overflow] ** spec.weight * p ** (1 - spec.weight)
        expected = sorted(round(float(v), 4) for v in fused[fused >= floor])
        assert sorted(round(float(v), 4) for v in after.confidence[after.class_id == overflow]) == expected
        seen, kept = (
            seen + int((found.confidence[found.class_id == overflow] >= floor ** (1 / spec.weight)).sum()),
            kept + len(expected),
        )
    assert seen > kept > 0 and checked.dropped == seen - kept  # it drops some candidates, not all of them
    assert checked.version.startswith(checked.inner.version + "+check")


def build_checked(model: Path) -> CropCheckedDetector:
    inner = OnnxYoloDetector(model)
    spec = own_spec(inner, model)
    assert spec is not None
    return CropCheckedDetector(inner, CropClassifier(spec.model), spec)


def test_the_classifier_tells_labelled_bins_from_overflowing_ones_on_held_out_photos() -> None:
    """On crops of the labelled boxes of held-out photos: most overflowing bins kept, most clean bins dropped."""
    model = builtin("garbage")
    spec = own_spec(OnnxYoloDetector(model), model)
    assert spec is not None
    classifier = CropClassifier(spec.model)
    positive = classifier.class_names.index("overflowing")  # at p 0.5 (the fused score decides in the agent)
    images = need_shared("datasets/garbage-street-cn/train/images")
    scores: dict[int, list[float]] = {1: [], 2: []}  # garbage_bin, overflow
    for path in sorted(images.iterdir())[::3]:
        if split_side(path.name) != "val":
            continue
        image = cv2.imread(str(path))
        xyxy, cls = read_labels(images.parent / "labels" / (path.stem + ".txt"), image.shape[1], image.shape[0])
        for c in scores:
            if (cls == c).any():
                scores[c] += classifier.probabilities(image, xyxy[cls == c])[:, positive].tolist()
    clean, overflowing = np.array(scores[1]), np.array(scores[2])
    assert len(clean) > 20 and len(overflowing) > 20
    assert (overflowing >= 0.5).mean() > 0.75 and (clean < 0.5).mean() > 0.85

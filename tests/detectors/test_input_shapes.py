"""A model at several input shapes (detectors/input_shapes.py): each frame goes to the shape that shows it
largest, and the shapes a model names in its metadata are read as bare file names only."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config.resources import builtin
from agent.tools.evaluate import read_labels
from detectors import ModelError
from detectors.input_shapes import METADATA_KEY, ShapeMatchedDetector, other_inputs, shown_scale
from detectors.metrics import box_iou
from detectors.onnx_yolo import OnnxYoloDetector
from tests.conftest import need_shared

PILES = "datasets/garbage-street-cn/train"
PHOTO = "000377"  # a held-out photo (models/garbage-yolov8n.md's split) with a labelled pile inside the 16:9 band


def test_the_shape_that_shows_a_frame_largest_is_chosen() -> None:
    square, wide = (320, 320), (224, 416)
    assert shown_scale((1080, 1920), wide) > shown_scale((1080, 1920), square)  # 398x224 against 320x180
    assert shown_scale((360, 640), wide) > shown_scale((360, 640), square)
    assert shown_scale((480, 640), square) > shown_scale((480, 640), wide)  # 4:3: 320x240 against 299x224
    assert shown_scale((640, 640), square) > shown_scale((640, 640), wide)


@pytest.mark.parametrize("names", ['["../x.onnx"]', '["sub/x.onnx"]', '"x.onnx"', '[""]', "[1]", "not json"])
def test_the_files_a_model_names_must_be_bare_names_beside_it(tmp_path: Path, names: str) -> None:
    with pytest.raises(ModelError, match=METADATA_KEY):
        other_inputs(tmp_path / "det.onnx", {METADATA_KEY: names})


def test_a_model_names_its_other_shapes_beside_it(tmp_path: Path) -> None:
    assert other_inputs(tmp_path / "det.onnx", {}) == []
    found = other_inputs(tmp_path / "det.onnx", {METADATA_KEY: json.dumps(["det-416x224.onnx"])})
    assert found == [tmp_path / "det-416x224.onnx"]
    shipped = OnnxYoloDetector(builtin("garbage"))
    assert other_inputs(builtin("garbage"), shipped.session.get_modelmeta().custom_metadata_map) == [
        builtin("garbage-416x224")
    ]


def _photo() -> tuple[np.ndarray, np.ndarray]:
    """The held-out photo and its labelled piles (pixels)."""
    folder = need_shared(PILES)
    path = next(p for p in sorted(folder.rglob("images/*.jpg")) if p.name.startswith(PHOTO + "_"))
    image = cv2.imread(str(path))
    xyxy, cls = read_labels(path.parent.parent / "labels" / (path.stem + ".txt"), image.shape[1], image.shape[0])
    return image, xyxy[cls == 0]


def test_a_wide_frame_is_detected_at_the_wide_shape_and_a_photo_at_the_square() -> None:
    square = OnnxYoloDetector(builtin("garbage"), model_thresholds=False)
    wide = OnnxYoloDetector(builtin("garbage-416x224"), model_thresholds=False)
    family = ShapeMatchedDetector([square, wide])
    photo, piles = _photo()
    band_h = round(photo.shape[1] * 9 / 16)
    top = (photo.shape[0] - band_h) // 2
    frame = cv2.resize(photo[top : top + band_h], (1280, 720))  # as a 720p camera would frame the scene

    found = family.detect(frame)
    assert family.used == [0, 1]
    alone = wide.detect(frame)
    assert np.array_equal(found.xyxy, alone.xyxy) and np.array_equal(found.confidence, alone.confidence)
    assert family.detect(photo).xyxy.tolist() == square.detect(photo).xyxy.tolist() and family.used == [1, 1]

    # the reason it exists: the pile found at the wide shape, in the frame's own pixels
    pile = (piles - [0, top, 0, top]) * (1280 / photo.shape[1])
    is_garbage = found.class_id == found.class_names.index("garbage")
    assert is_garbage.any() and box_iou(pile, found.xyxy[is_garbage]).max() > 0.5


def test_shapes_of_other_models_are_refused() -> None:
    with pytest.raises(ModelError, match="differ"):
        ShapeMatchedDetector([OnnxYoloDetector(builtin("garbage")), OnnxYoloDetector(builtin("smoke"))])

"""The onnxruntime YOLO backend: geometry, NMS, and clear errors for bad model files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors import Detections, ModelError
from detectors.onnx_yolo import OnnxYoloDetector, letterbox, nms_per_class


def test_letterbox_keeps_aspect_and_centres() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, :, 2] = 255  # red in BGR
    blob, scale, (pad_x, pad_y) = letterbox(image, (320, 320))
    assert blob.shape == (1, 3, 320, 320) and blob.dtype == np.float32
    assert scale == pytest.approx(0.5) and pad_x == 0 and pad_y == 40
    assert blob[0, 0, 160, 160] == pytest.approx(1.0)  # red lands in the R channel (RGB order)
    assert blob[0, 0, 10, 160] == pytest.approx(114 / 255)  # grey padding


def test_letterbox_of_a_tile_view_is_the_plain_rgb_over_255_conversion() -> None:
    """The blob is written plane by plane for speed; its values are exactly those of the plain
    conversion, for a strided view into a larger frame (a tile) as for a whole image."""
    frame = np.random.default_rng(3).integers(0, 256, (1000, 1200, 3), np.uint8)
    tile = frame[100:900, 300:1100]  # 800x800, shrunk to 640
    blob, scale, (pad_x, pad_y) = letterbox(tile, (640, 640))
    resized = cv2.resize(tile, (640, 640), interpolation=cv2.INTER_LINEAR)
    expected = resized[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    assert blob.flags.c_contiguous and (scale, pad_x, pad_y) == (0.8, 0.0, 0.0)
    np.testing.assert_array_equal(blob, expected)


def test_nms_keeps_best_per_class_and_both_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert sorted(nms_per_class(boxes, scores, classes, 0.5).tolist()) == [0, 2, 3]


def test_detections_validate_shapes_and_filter() -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        Detections(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int32))
    dets = Detections(
        np.array([[0, 0, 1, 1], [2, 2, 3, 3]], np.float32),
        np.array([0.2, 0.9], np.float32),
        np.array([0, 1], np.int32),
        ("garbage", "overflow"),
    )
    kept = dets[dets.confidence > 0.5]
    assert len(kept) == 1 and kept.names() == ["overflow"]


def test_missing_and_malformed_model_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        OnnxYoloDetector(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        OnnxYoloDetector(junk)


def test_shipped_model_loads_with_its_metadata(model_path: Path) -> None:
    detector = OnnxYoloDetector(model_path)
    assert detector.class_names == ("garbage", "garbage_bin", "overflow")
    assert detector.input_hw[1] >= detector.input_hw[0]  # rectangular (wide) or square input
    out = detector.detect(np.full((360, 640, 3), 127, np.uint8))
    assert out.xyxy.shape[1] == 4


def test_pt_weights_run_through_ultralytics_or_say_what_is_missing(model_path: Path) -> None:
    import importlib.util

    from agent.config.resources import builtin
    from detectors.loading import load_detector

    weights = builtin("garbage-pt")
    if importlib.util.find_spec("ultralytics") is None:  # the runtime install: a clear error
        with pytest.raises(ModelError, match="need the train extra"):
            load_detector(weights, 0.25, 0.5)
        return
    detector = load_detector(weights, 0.25, 0.5)  # with the train extra: the same classes as the ONNX export
    assert detector.class_names == OnnxYoloDetector(model_path).class_names
    assert detector.detect(np.full((360, 640, 3), 127, np.uint8)).xyxy.shape[1] == 4

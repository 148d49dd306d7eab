"""The YOLOX backend and `builtin:general` (YOLOX-Nano, COCO-80) on real frames.

The decoding is checked against a reading of the raw output written here from the model's documented
facts (../shared/models/yolox-nano/README.md), cell by cell in plain Python, not with the backend's code.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from agent.config.resources import builtin
from detectors import ModelError
from detectors.loading import load_detector
from detectors.metrics import box_iou
from detectors.onnx_yolo import OnnxYoloDetector
from detectors.onnx_yolox import OnnxYoloxDetector, yolox_letterbox
from tests.conftest import need_shared

UPSTREAM_SHA256 = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"  # shared README
# a held-out garbage photo (split_side 'val'): a street sweeper beside the pile, a car up the road
SWEEPER_PHOTO = "datasets/garbage-street-cn/train/images/000743_jpg.rf.2fb452f8355613e8cbc6531cf95cc17d.jpg"
SWEEPER_BOX = [165, 130, 260, 345]  # read off the photo by eye (640x640)


@pytest.fixture(scope="module")
def general() -> OnnxYoloxDetector:
    detector = load_detector(builtin("general"), 0.30, 0.5)
    assert isinstance(detector, OnnxYoloxDetector)
    return detector


def vtest_frames(step: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(need_shared("video/vtest.avi")))
    frames, index = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def test_shipped_file_is_the_upstream_one_with_coco_names() -> None:
    path = builtin("general")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == UPSTREAM_SHA256
    detector = OnnxYoloxDetector(path)
    assert len(detector.class_names) == 80 and detector.input_hw == (416, 416)
    assert detector.class_names[:4] == ("person", "bicycle", "car", "motorcycle")
    assert {"bench", "umbrella", "chair", "dining table"} <= set(detector.class_names)


def test_loader_tells_yolox_from_ultralytics_exports(general: OnnxYoloxDetector) -> None:
    assert isinstance(load_detector(builtin("garbage"), 0.3, 0.5), OnnxYoloDetector)
    assert general.name == "general-yolox-nano" and len(general.version) == 12


def test_a_yolox_model_without_class_names_says_where_to_put_them(tmp_path: Path) -> None:
    bare = tmp_path / "mine.onnx"
    shutil.copy(builtin("general"), bare)
    with pytest.raises(ModelError, match=r"mine\.names"):
        load_detector(bare, 0.3, 0.5)
    (tmp_path / "mine.names").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ModelError, match="2 class names need 7"):
        load_detector(bare, 0.3, 0.5)


def test_letterbox_is_bgr_0_255_at_the_top_left() -> None:
    image = np.zeros((300, 600, 3), np.uint8)
    image[:, :, 0] = 200  # blue in BGR
    blob, scale = yolox_letterbox(image, (416, 416))
    assert scale == pytest.approx(416 / 600)
    assert blob.shape == (1, 3, 416, 416) and blob.dtype == np.float32
    assert blob[0, :, 10, 10].tolist() == [200, 0, 0]  # channel 0 is blue, not scaled to [0, 1]
    assert blob[0, :, 415, 10].tolist() == [114, 114, 114]  # padding below the image, none above
    assert blob[0, 0, 207, 415] == 200  # the image spans the full width


def independent_reading(frame: np.ndarray, min_score: float) -> list[tuple[int, float, list[float]]]:
    """(class, score, box in frame pixels) of every raw output row scoring at least min_score."""
    height, width = frame.shape[:2]
    ratio = min(416 / height, 416 / width)
    small = cv2.resize(frame, (int(width * ratio), int(height * ratio)))
    padded = np.pad(small, ((0, 416 - small.shape[0]), (0, 416 - small.shape[1]), (0, 0)), constant_values=114)
    session = ort.InferenceSession(str(builtin("general")), providers=["CPUExecutionProvider"])
    rows = session.run(None, {"images": padded.astype(np.float32).transpose(2, 0, 1)[None]})[0][0]
    found = []
    for index, row in enumerate(rows.tolist()):
        level_start, stride = 0, 8
        while index >= level_start + (416 // stride) ** 2:  # rows run 52x52, then 26x26, then 13x13
            level_start, stride = level_start + (416 // stride) ** 2, stride * 2
        side = 416 // stride
        gx, gy = (index - level_start) % side, (index - level_start) // side
        best = max(range(80), key=lambda c: row[5 + c])
        score = row[4] * row[5 + best]
        if score >= min_score:
            cx, cy = (row[0] + gx) * stride, (row[1] + gy) * stride
            w, h = math.exp(row[2]) * stride, math.exp(row[3]) * stride
            x1, y1 = max(0.0, (cx - w / 2) / ratio), max(0.0, (cy - h / 2) / ratio)  # clipped to the frame
            x2, y2 = min(width, (cx + w / 2) / ratio), min(height, (cy + h / 2) / ratio)
            box = [x1, y1, x2, y2]
            found.append((best, score, box))
    return found


def test_decoding_agrees_with_an_independent_reading_of_the_raw_output(general: OnnxYoloxDetector) -> None:
    frame = vtest_frames(100)[2]
    reading = independent_reading(frame, general.min_score)
    found = general.detect(frame)
    assert len(found) >= 5
    for box, score, cls in zip(found.xyxy, found.confidence, found.class_id, strict=True):
        same = [r for r in reading if r[0] == cls and abs(r[1] - score) < 1e-5]
        assert same, f"no raw row of class {cls} scores {score}"
        assert box_iou(box[None], np.array([r[2] for r in same], np.float32)).max() > 0.999
    best = max(reading, key=lambda r: r[1])  # NMS always keeps the best box
    assert found.class_id[0] == best[0] and found.confidence[0] == pytest.approx(best[1], abs=1e-5)


def test_pedestrians_on_vtest_are_persons_with_upright_boxes(general: OnnxYoloxDetector) -> None:
    frames = vtest_frames(40)
    persons = []
    for frame in frames:
        found = general.detect(frame)
        persons.extend(found.xyxy[np.array(found.names(), dtype=object) == "person"])
    boxes = np.array(persons)
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    assert len(boxes) >= 4 * len(frames)  # the plaza always has several people in view
    assert np.median(heights / widths) > 1.8  # people stand: boxes far taller than wide
    assert 25 < np.median(heights) < 200  # pedestrians at this camera's distance (576-pixel frames)


def test_held_out_garbage_photo_finds_the_sweeper_and_the_car(general: OnnxYoloxDetector) -> None:
    found = general.detect(cv2.imread(str(need_shared(SWEEPER_PHOTO))))
    names = np.array(found.names(), dtype=object)
    persons = found.xyxy[names == "person"]
    assert len(persons) and box_iou(np.array([SWEEPER_BOX], np.float32), persons).max() >= 0.7
    assert "car" in names


def test_per_class_thresholds_apply_to_yolox_too() -> None:
    frame = vtest_frames(100)[2]
    strict = load_detector(builtin("general"), 0.30, 0.5, thresholds={"person": 0.8})
    plain = load_detector(builtin("general"), 0.30, 0.5).detect(frame)
    found = strict.detect(frame)
    persons = found.confidence[np.array(found.names(), dtype=object) == "person"]
    assert len(persons) < (np.array(plain.names(), dtype=object) == "person").sum() and (persons >= 0.8).all()
    assert "car" in found.names()  # other classes keep min_score
    with pytest.raises(ValueError, match="'stall' not among"):
        load_detector(builtin("general"), 0.30, 0.5, thresholds={"stall": 0.5})

"""Overflow evidence: a garbage box at a bin's top or foot is an overflowing bin, one far away is not; on a
real held-out photo where the model boxes a bin with garbage at it, the composed case names its evidence."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.cases.overflow import GARBAGE_AT_BIN, MODEL_OVERFLOW, OverflowEvidence, garbage_at_bin
from agent.config.rules import OverflowConfig
from agent.runner import run_agent
from detectors import Detections
from detectors.metrics import box_iou
from detectors.onnx_yolo import OnnxYoloDetector
from tests.agent.test_pipeline import demo_config, outbox_records
from tests.conftest import need_shared

PHOTO = "000392_jpg.rf.9b45be58d9be889f53b46dc03b451b67.jpg"  # held out; bin + garbage boxes, no overflow box
NAMES = ("garbage", "garbage_bin", "overflow")
BIN = [100, 100, 200, 300]  # 100 wide, 200 high: the top band is y 50..150, the foot band y 250..350


def frame(*boxes: tuple[list[float], str, float]) -> Detections:
    return Detections(
        np.array([b for b, _, _ in boxes], np.float32),
        np.array([s for _, _, s in boxes], np.float32),
        np.array([NAMES.index(n) for _, n, _ in boxes], np.int32),
        NAMES,
    )


@pytest.mark.parametrize(
    "garbage, overflowing",
    [
        ([120, 60, 180, 110], True),  # heaped on the lid
        ([40, 270, 110, 320], True),  # bags at its foot, beside it
        ([120, 160, 180, 240], False),  # inside the bin's middle (a printed label, a reflection): neither band
        ([400, 400, 460, 450], False),  # a pile across the street
        ([120, 0, 180, 40], False),  # above the top band
    ],
)
def test_garbage_at_the_top_or_foot_of_a_bin_is_overflow(garbage: list[float], overflowing: bool) -> None:
    found = garbage_at_bin(
        frame((BIN, "garbage_bin", 0.8), (garbage, "garbage", 0.6)), np.array([0]), np.array([1]), 0.25
    )
    assert len(found) == int(overflowing)
    if overflowing:
        assert found.xyxy[0].tolist() == BIN and found.names() == [GARBAGE_AT_BIN]
        assert found.confidence[0] == pytest.approx(0.7)  # the mean of the bin's and the garbage's scores


def by_type_of(detections: Detections) -> dict[str, Detections]:
    return {"overflowing_bin": detections[detections.class_id == NAMES.index("overflow")]}


def test_evidence_modes_and_the_explanation() -> None:
    dets = frame(
        (BIN, "garbage_bin", 0.8), ([120, 60, 180, 110], "garbage", 0.6), ([500, 100, 600, 300], "overflow", 0.9)
    )
    model_only = OverflowEvidence(OverflowConfig(evidence="model"), NAMES).apply(by_type_of(dets), dets)
    assert model_only["overflowing_bin"].names() == ["overflow"]
    composed = OverflowEvidence(OverflowConfig(evidence="garbage_at_bin"), NAMES)
    only_composed = composed.apply(by_type_of(dets), dets)["overflowing_bin"]
    assert only_composed.names() == [GARBAGE_AT_BIN]
    assert composed.explain("overflowing_bin", only_composed) == {"evidence": GARBAGE_AT_BIN}
    assert composed.explain("garbage_pile", only_composed) == {}
    either = OverflowEvidence(OverflowConfig(evidence="either"), NAMES)
    both = either.apply(by_type_of(dets), dets)["overflowing_bin"]
    assert sorted(both.names()) == [GARBAGE_AT_BIN, "overflow"]
    assert either.explain("overflowing_bin", both) == {"evidence": MODEL_OVERFLOW}  # the best box is the model's
    same_bin = frame((BIN, "overflow", 0.9), ([120, 60, 180, 110], "garbage", 0.6))
    assert either.apply(by_type_of(same_bin), same_bin)["overflowing_bin"].names() == ["overflow"]  # not twice
    assert not OverflowEvidence(OverflowConfig(evidence="either"), ("smoke", "fire")).active


def test_a_real_photo_with_garbage_at_a_bin_is_composed_at_that_bin(model_path) -> None:
    image = cv2.imread(str(need_shared("datasets/garbage-street-cn/train/images") / PHOTO))
    found = OnnxYoloDetector(model_path, min_score=0.30).detect(image)
    assert "overflow" not in found.names() and {"garbage", "garbage_bin"} <= set(found.names())
    composed = garbage_at_bin(found, np.array([0]), np.array([1]), OverflowConfig().band)
    bins = found.xyxy[found.class_id == 1]
    assert len(composed) == 1 and box_iou(composed.xyxy, bins).max() == pytest.approx(1.0)


@pytest.mark.parametrize("evidence, expected", [("model", MODEL_OVERFLOW), ("garbage_at_bin", GARBAGE_AT_BIN)])
def test_case_record_says_which_evidence_raised_it(tmp_path: Path, case_validator, evidence, expected) -> None:
    """A real run of the demo patrol: every overflowing_bin record names its evidence, valid by the schema."""
    config = demo_config(tmp_path)
    if (
        evidence == "garbage_at_bin"
    ):  # the demo's bins are found by the model's own class: a held-out photo whose is not
        config = config.model_copy(update={"sources": [_photo_camera(tmp_path, config.sources[0])]})
    overflow = config.cases.overflow.model_copy(update={"evidence": evidence})
    run_agent(config.model_copy(update={"cases": config.cases.model_copy(update={"overflow": overflow})}))
    records = outbox_records(tmp_path / "state")
    overflowing = [r for r in records if r["type"] == "overflowing_bin"]
    assert overflowing, "the demo patrol passes an overflowing bin"
    for record in records:
        case_validator.validate(record)
        wanted = expected if record["type"] == "overflowing_bin" else None
        assert record.get("explanation", {}).get("evidence") == wanted


def _photo_camera(tmp_path: Path, like):
    """A fixed camera looking for 8 s at held-out photo 000392 (a bin the model boxes with garbage at it and
    no overflow box: test_a_real_photo_with_garbage_at_a_bin_is_composed_at_that_bin)."""
    photo = need_shared("datasets/garbage-street-cn/train/images") / PHOTO
    clip = tmp_path / "photo.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-loop",
            "1",
            "-i",
            str(photo),
            "-t",
            "8",
            "-r",
            "5",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ],
        check=True,
    )
    return like.model_copy(update={"id": "photo-cam", "url": str(clip), "telemetry": None})

"""Per-class thresholds: written into a real model's metadata by `write_thresholds`, used by the detector by
default, overridden by configuration, and refused with the key's name for a class the model lacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config import ConfigError
from agent.config.schema import DetectorConfig
from agent.detector_setup import build_detector
from agent.tools.calibrate import write_thresholds
from detectors import ModelError, crop_check, input_shapes
from detectors.onnx_yolo import OnnxYoloDetector
from detectors.thresholds import THRESHOLDS_KEY
from tests.conftest import need_shared

STORED = {"garbage_bin": 0.85, "overflow": 0.05}  # one class raised far over min_score, one lowered under it


@pytest.fixture(scope="module")
def street() -> np.ndarray:
    """A held-out street photo with bins and overflow in it (labels 1 and 2)."""
    images = need_shared("datasets/garbage-street-cn/train/images")
    image = cv2.imread(str(images / "000365_jpg.rf.4dc798545d91286b6cb7fee8d0400646.jpg"))
    if image is None:
        pytest.skip("the street photo is not in ../shared")
    return image


@pytest.fixture(scope="module")
def bare(model_path: Path, tmp_path_factory) -> Path:
    """The shipped model without its thresholds (and its crop check and other input shapes, which are not these
    tests' concern: tests/detectors/test_crop_check.py, test_input_shapes.py): how every model exported before
    them looks."""
    import onnx

    proto = onnx.load(str(model_path))
    dropped = (THRESHOLDS_KEY, crop_check.METADATA_KEY, input_shapes.METADATA_KEY)
    kept = [p for p in proto.metadata_props if p.key not in dropped]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    path = tmp_path_factory.mktemp("bare") / "bare.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def calibrated(bare: Path, tmp_path_factory) -> Path:
    return write_thresholds(bare, tmp_path_factory.mktemp("model") / "calibrated.onnx", STORED)


def test_model_thresholds_are_used_by_default(bare: Path, calibrated: Path, street: np.ndarray) -> None:
    plain = OnnxYoloDetector(bare, min_score=0.01)
    every_box = plain.detect(street)
    assert plain.thresholds == {}  # a model without the key behaves as before
    detector = OnnxYoloDetector(calibrated, min_score=0.25)
    assert detector.thresholds == STORED
    found = detector.detect(street)
    floors = {"garbage": 0.25, **STORED}
    for name, score in zip(found.names(), found.confidence.tolist(), strict=True):
        assert score >= floors[name]
    expected = sum(
        score >= floors[name] for name, score in zip(every_box.names(), every_box.confidence.tolist(), strict=True)
    )
    assert len(found) == expected
    bins = every_box.confidence[np.array(every_box.names()) == "garbage_bin"]
    low_overflow = every_box.confidence[(np.array(every_box.names()) == "overflow")]
    assert ((bins >= 0.25) & (bins < 0.85)).any(), "the photo should have a bin the stored threshold drops"
    assert ((low_overflow >= 0.05) & (low_overflow < 0.25)).any(), "and an overflow box only the lower one keeps"


def test_config_overrides_the_model_thresholds(calibrated: Path, street: np.ndarray) -> None:
    detector = build_detector(DetectorConfig(model=calibrated, min_score=0.25, thresholds={"overflow": 0.5}))
    assert detector.thresholds == {"garbage_bin": 0.85, "overflow": 0.5}
    found = detector.detect(street)
    overflow = found.confidence[np.array(found.names(), dtype=object) == "overflow"]
    assert len(overflow) and (overflow >= 0.5).all()


def test_unknown_class_in_config_names_the_key_and_the_classes(calibrated: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"detector\.thresholds: 'overfow' not among .*garbage, garbage_bin, overflow"
    ):
        build_detector(DetectorConfig(model=calibrated, thresholds={"overfow": 0.5}))
    with pytest.raises(ValueError, match="thresholds"):
        DetectorConfig(model=calibrated, thresholds={"overflow": 1.5})


def test_malformed_metadata_is_a_clear_model_error(model_path: Path, tmp_path: Path) -> None:
    import onnx

    proto = onnx.load(str(model_path))
    proto.metadata_props.add(key=THRESHOLDS_KEY, value=json.dumps({"bicycle": 0.4}))
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(ModelError, match=r"edge_agent_thresholds: 'bicycle' not among"):
        OnnxYoloDetector(bad)


def test_writing_keeps_the_original_and_replaces_old_thresholds(calibrated: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.onnx"
    shutil.copy(calibrated, copy)
    with pytest.raises(ValueError, match="new file"):
        write_thresholds(copy, copy, {"overflow": 0.6})
    again = write_thresholds(copy, tmp_path / "again.onnx", {"overflow": 0.6})
    assert OnnxYoloDetector(again).thresholds == {"overflow": 0.6}
    assert OnnxYoloDetector(copy).thresholds == STORED

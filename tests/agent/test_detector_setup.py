"""`detector.tiling`, `detector.crop_check` and `detector.other_inputs` in a configuration: validated with the
key named, and the detector wrapped with them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, parse_config
from agent.config.resources import builtin
from agent.detector_setup import build_detector, build_detectors
from detectors.crop_check import CropCheckedDetector
from detectors.input_shapes import ShapeMatchedDetector
from detectors.onnx_yolo import OnnxYoloDetector
from detectors.tiling import TiledDetector


def config_with(tmp_path: Path, detector: dict):
    text = yaml.safe_dump({"agent_id": "box-1", "inbox": {"folder": str(tmp_path)}, "detector": detector})
    return parse_config(text, tmp_path, "agent.yaml")


def test_tiling_wraps_the_model_with_its_input_size_by_default(tmp_path: Path) -> None:
    plain = build_detector(config_with(tmp_path, {"model": "builtin:vendors-aerial"}).detector)
    assert isinstance(plain, OnnxYoloDetector)
    config = config_with(tmp_path, {"model": "builtin:vendors-aerial", "tiling": {"full_frame": False}, "iou": 0.4})
    tiled = build_detector(config.detector)
    assert isinstance(tiled, TiledDetector)
    settings = (tiled.tile_px, tiled.overlap, tiled.full_frame, tiled.min_frame_px, tiled.iou)
    assert settings == (640, 0.2, False, 640, 0.4)
    assert tiled.class_names == ("vendedor_ambulante",) and tiled.version.startswith(plain.version)


def test_tiling_threads_come_from_the_configuration(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"model": "builtin:vendors-aerial", "tiling": {"tile_px": 800, "threads": 2}})
    tiled = build_detector(config.detector)
    assert isinstance(tiled, TiledDetector) and (tiled.tile_px, tiled.threads) == (800, 2)


@pytest.mark.parametrize(
    "tiling, expected",
    [
        ({"overlap": 0.5}, ["detector.tiling.overlap", "less than 0.5", "got 0.5"]),  # half a tile or more: waste
        ({"tile_px": 32}, ["detector.tiling.tile_px", "greater than or equal to 64"]),
        ({"tile_px": 640, "min_frame_px": 320}, ["detector.tiling", "min_frame_px (320) is below tile_px (640)"]),
        ({"tiles": 4}, ["detector.tiling.tiles", "unknown key"]),
        ({"threads": 0}, ["detector.tiling.threads", "greater than or equal to 1"]),
    ],
)
def test_bad_tiling_is_refused_with_its_key(tmp_path: Path, tiling: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        config_with(tmp_path, {"model": "builtin:vendors-aerial", "tiling": tiling})
    for text in expected:
        assert text in str(err.value)


def test_tiling_limits_known_only_from_the_model_are_checked_when_it_loads(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"model": "builtin:vendors-aerial", "tiling": {"min_frame_px": 320}})
    with pytest.raises(ConfigError, match=r"detector.tiling: min_frame_px \(320\) is below tile_px \(640\)"):
        build_detector(config.detector)
    with pytest.raises(ConfigError, match=r"give tiling\.tile_px"):
        config_with(tmp_path, {"model": "builtin:garbage-pt", "tiling": {}})


def test_the_garbage_model_runs_with_its_own_crop_check_unless_turned_off(tmp_path: Path) -> None:
    family = build_detector(config_with(tmp_path, {"model": "builtin:garbage"}).detector)
    assert isinstance(family, ShapeMatchedDetector)  # and at each of its input shapes, with that file's own check
    assert [m.input_hw for m in family.members] == [(320, 320), (224, 416)]
    for checked in family.members:
        assert isinstance(checked, CropCheckedDetector) and checked.spec.checked_class == "overflow"
        assert checked.class_names == ("garbage", "garbage_bin", "overflow")
    square, wide = (m.inner.floor("garbage") for m in family.members)
    assert square != wide  # each shape's own thresholds, calibrated on frames of its shape
    stricter = build_detector(
        config_with(tmp_path, {"model": "builtin:garbage", "crop_check": {"weight": 0.9}}).detector
    )
    assert isinstance(stricter, ShapeMatchedDetector)
    assert all(isinstance(m, CropCheckedDetector) and m.spec.weight == 0.9 for m in stricter.members)
    plain = build_detector(
        config_with(tmp_path, {"model": "builtin:garbage", "crop_check": {"enabled": False}}).detector
    )
    assert isinstance(plain, ShapeMatchedDetector)
    assert all(isinstance(m, OnnxYoloDetector) for m in plain.members)


def test_the_other_input_shapes_can_be_turned_off(tmp_path: Path) -> None:
    square = build_detector(config_with(tmp_path, {"model": "builtin:garbage", "other_inputs": False}).detector)
    assert isinstance(square, CropCheckedDetector) and square.input_hw == (320, 320)


def test_a_model_naming_a_shape_that_is_not_beside_it_is_refused_with_the_name(tmp_path: Path) -> None:
    alone = tmp_path / "garbage.onnx"
    shutil.copyfile(builtin("garbage"), alone)  # names garbage-yolov8n-416x224-int8.onnx, not copied
    config = config_with(tmp_path, {"model": str(alone), "crop_check": {"enabled": False}})
    with pytest.raises(ConfigError, match=r"detector.model: .*garbage-yolov8n-416x224-int8.onnx .* not beside it"):
        build_detectors(config)


def test_a_model_without_a_check_runs_unchecked_and_refuses_a_score_for_none(tmp_path: Path) -> None:
    assert isinstance(
        build_detector(config_with(tmp_path, {"model": "builtin:vendors-aerial"}).detector), OnnxYoloDetector
    )
    config = config_with(tmp_path, {"model": "builtin:vendors-aerial", "crop_check": {"weight": 0.6}})
    with pytest.raises(ConfigError, match=r"detector.crop_check.weight: the model names no crop check"):
        build_detector(config.detector)


@pytest.mark.parametrize(
    "crop_check, expected",
    [
        ({"model": "missing.onnx"}, ["detector.crop_check.model", "classifier file not found"]),
        ({"weight": 1.5}, ["detector.crop_check.weight", "less than or equal to 1"]),
        ({"enable": False}, ["detector.crop_check.enable", "unknown key"]),
    ],
)
def test_a_bad_crop_check_is_refused_with_its_key(tmp_path: Path, crop_check: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        config_with(tmp_path, {"model": "builtin:garbage", "crop_check": crop_check})
    for text in expected:
        assert text in str(err.value)


def test_a_detection_model_given_as_the_classifier_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"model": "builtin:garbage", "crop_check": {"model": "builtin:vendors-aerial"}})
    with pytest.raises(ConfigError, match=r"detector.crop_check.model: .*not a classification model"):
        build_detector(config.detector)

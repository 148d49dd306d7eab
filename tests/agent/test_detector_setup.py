"""`detector.tiling` in a configuration: validated with the key named, and the detector wrapped with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, parse_config
from agent.detector_setup import build_detector
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

"""Builds the detector a configuration asks for: the model's backend, wrapped for tiling if configured."""

from __future__ import annotations

from agent.config import ConfigError, DetectorConfig
from detectors import Detector
from detectors.loading import load_detector
from detectors.tiling import TiledDetector


def build_detector(config: DetectorConfig) -> Detector:
    """The loaded model; with `detector.tiling`, a TiledDetector around it."""
    try:
        detector = load_detector(config.model, config.min_score, config.iou, config.threads, config.thresholds)
    except ValueError as exc:  # a class the model lacks: only knowable once its class names are read
        raise ConfigError(f"detector.thresholds: {exc}; give scores for the model's own class names") from None
    tiling = config.tiling
    if tiling is None:
        return detector
    try:
        return TiledDetector(
            detector, tiling.tile_px, tiling.overlap, tiling.full_frame, tiling.min_frame_px, iou=config.iou
        )
    except ValueError as exc:  # only knowable once the model's input size is read
        raise ConfigError(f"detector.tiling: {exc}") from None

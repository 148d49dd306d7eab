"""Builds the detectors a configuration asks for: each model's backend, wrapped for tiling if configured,
loaded once per process and shared by every source (onnxruntime sessions are thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.config import AgentConfig, ConfigError, DetectorConfig, DetectorEntry
from detectors import Detector, ModelError
from detectors.loading import load_detector
from detectors.tiling import TiledDetector


@dataclass(frozen=True)
class LoadedDetector:
    """One `detectors:` entry with its model loaded."""

    entry: DetectorEntry
    detector: Detector
    key: str = "detector"  # the configuration key, for errors: `detector` or `detectors[1]`


def build_detector(config: DetectorConfig, key: str = "detector") -> Detector:
    """The loaded model; with `tiling`, a TiledDetector around it."""
    try:
        detector = load_detector(config.model, config.min_score, config.iou, config.threads, config.thresholds)
    except ValueError as exc:  # a class the model lacks: only knowable once its class names are read
        raise ConfigError(f"{key}.thresholds: {exc}; give scores for the model's own class names") from None
    tiling = config.tiling
    if tiling is None:
        return detector
    try:
        return TiledDetector(
            detector,
            tiling.tile_px,
            tiling.overlap,
            tiling.full_frame,
            tiling.min_frame_px,
            iou=config.iou,
            threads=tiling.threads,
        )
    except ValueError as exc:  # only knowable once the model's input size is read
        raise ConfigError(f"{key}.tiling: {exc}") from None


def build_detectors(config: AgentConfig) -> list[LoadedDetector]:
    """Every configured detector; entries that load the same model with the same settings share one
    instance, so a model is in memory once however many entries and sources use it."""
    loaded: dict[str, Detector] = {}
    out = []
    for i, entry in enumerate(config.detector_entries):
        key = f"detectors[{i}]" if config.detectors else "detector"
        how = entry.model_dump_json(exclude={"id", "every_s", "sources", "kinds", "class_map"})  # what loads it
        if how not in loaded:
            try:
                loaded[how] = build_detector(entry, key)
            except ModelError as exc:
                raise ConfigError(
                    f"{key}.model: {exc}; give a model made by `edge-agent export`, or builtin:garbage"
                ) from None
        out.append(LoadedDetector(entry, loaded[how], key))
    return out

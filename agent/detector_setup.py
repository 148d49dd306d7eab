"""Builds the detectors a configuration asks for: each model's backend, wrapped for tiling if configured,
for the crop check its model names (or the configuration gives) and for the other input shapes it names;
loaded once per process and shared by every source (onnxruntime sessions are thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig, ConfigError, CropCheckConfig, DetectorConfig, DetectorEntry
from detectors import Detector, ModelError
from detectors.crop_check import DEFAULT_WEIGHT, CropCheckedDetector, CropCheckSpec, CropClassifier, own_spec
from detectors.input_shapes import ShapeMatchedDetector, other_inputs
from detectors.loading import load_detector
from detectors.onnx_yolo import OnnxDetector
from detectors.tiling import TiledDetector


@dataclass(frozen=True)
class LoadedDetector:
    """One `detectors:` entry with its model loaded."""

    entry: DetectorEntry
    detector: Detector
    key: str = "detector"  # the configuration key, for errors: `detector` or `detectors[1]`


def build_detector(config: DetectorConfig, key: str = "detector") -> Detector:
    """The loaded model; with a crop check, that around it; with other input shapes named in the model
    (`other_inputs`), each built the same way and each frame sent to the shape that shows it largest; with
    `tiling`, a TiledDetector around all that (each tile's boxes are checked on the tile, before tiles merge)."""
    detector = _checked_model(config, config.model, key)
    others = _other_inputs(detector, config.model) if config.other_inputs else []
    if others:
        detector = ShapeMatchedDetector([detector, *(_checked_model(config, path, key) for path in others)])
    return _tiled(detector, config, key)


def _checked_model(config: DetectorConfig, model: Path, key: str) -> Detector:
    """One model file loaded with the configuration's settings, wrapped in its crop check if any."""
    try:
        detector = load_detector(model, config.min_score, config.iou, config.threads, config.thresholds)
    except ValueError as exc:  # a class the model lacks: only knowable once its class names are read
        raise ConfigError(f"{key}.thresholds: {exc}; give scores for the model's own class names") from None
    spec = crop_check_spec(config.crop_check, model, detector, key)
    if spec is None:
        return detector
    if not isinstance(detector, OnnxDetector):
        raise ConfigError(f"{key}.crop_check: needs an ONNX detection model; give crop_check.enabled: false")
    try:
        return CropCheckedDetector(detector, CropClassifier(spec.model, config.threads), spec)
    except ModelError as exc:
        raise ConfigError(
            f"{key}.crop_check.model: {exc}; give a classifier from `edge-agent train-crop-check`"
        ) from None
    except ValueError as exc:  # a class either model lacks
        raise ConfigError(f"{key}.crop_check: {exc}") from None


def _other_inputs(detector: Detector, model: Path) -> list[Path]:
    """The other-shape files an ONNX model names (detectors/input_shapes.py); a missing one is a ModelError."""
    inner = getattr(detector, "inner", detector)  # under its crop check
    session = getattr(inner, "session", None)
    if session is None:
        return []
    paths = other_inputs(model, session.get_modelmeta().custom_metadata_map)
    for path in paths:
        if not path.is_file():
            raise ModelError(
                f"{model} names {path.name} for other input shapes, and it is not beside it; copy it there, "
                "or give other_inputs: false"
            )
    return paths


def crop_check_spec(config: CropCheckConfig, model: Path, detector: Detector, key: str) -> CropCheckSpec | None:
    """The configured check, else the one the model's metadata names, with `weight` applied; None when off."""
    if not config.enabled:
        return None
    own = own_spec(detector, model)
    if config.model is not None:
        weight = config.weight or (own.weight if own else DEFAULT_WEIGHT)
        return CropCheckSpec(config.model, config.checked_class, config.positive, weight)
    if own is None:
        if config.weight is not None:
            raise ConfigError(f"{key}.crop_check.weight: the model names no crop check; give crop_check.model too")
        return None
    return own if config.weight is None else CropCheckSpec(own.model, own.checked_class, own.positive, config.weight)


def _tiled(detector: Detector, config: DetectorConfig, key: str) -> Detector:
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

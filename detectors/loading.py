"""Picks the backend for a model file by its kind: ONNX on onnxruntime, `.pt` on ultralytics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from detectors import Detector
from detectors.onnx_yolo import OnnxYoloDetector


def load_detector(
    model: Path, min_score: float, iou: float, threads: int = 1, thresholds: Mapping[str, float] | None = None
) -> Detector:
    """`thresholds` ({class name: score}) override the model's own; ValueError for a class it lacks."""
    if model.suffix.lower() == ".pt":
        from detectors.ultralytics_pt import UltralyticsDetector

        return UltralyticsDetector(model, min_score, iou, thresholds=thresholds)
    return OnnxYoloDetector(model, min_score, iou, threads, thresholds)

"""Picks the backend for a model file by its kind: ONNX on onnxruntime (ultralytics YOLO or YOLOX
layout, told apart by the output's shape), `.pt` on ultralytics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from detectors import Detector
from detectors.onnx_yolo import OnnxYoloDetector, open_session
from detectors.onnx_yolox import OnnxYoloxDetector, is_yolox_output


def load_detector(
    model: Path, min_score: float, iou: float, threads: int = 1, thresholds: Mapping[str, float] | None = None
) -> Detector:
    """`thresholds` ({class name: score}) override the model's own; ValueError for a class it lacks."""
    if model.suffix.lower() == ".pt":
        from detectors.ultralytics_pt import UltralyticsDetector

        return UltralyticsDetector(model, min_score, iou, thresholds=thresholds)
    session = open_session(model, threads)
    if is_yolox_output(session):
        return OnnxYoloxDetector(model, min_score, iou, threads, thresholds, session=session)
    return OnnxYoloDetector(model, min_score, iou, threads, thresholds, session=session)

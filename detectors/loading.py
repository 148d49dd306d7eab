"""Picks the backend for a model file by its kind: ONNX on onnxruntime (ultralytics YOLO or YOLOX
layout, told apart by the output's shape), `.pt` on ultralytics."""

from __future__ import annotations

from pathlib import Path

from detectors import Detector
from detectors.onnx_yolo import OnnxYoloDetector, open_session
from detectors.onnx_yolox import OnnxYoloxDetector, is_yolox_output


def load_detector(model: Path, min_score: float, iou: float, threads: int = 1) -> Detector:
    if model.suffix.lower() == ".pt":
        from detectors.ultralytics_pt import UltralyticsDetector

        return UltralyticsDetector(model, min_score, iou)
    session = open_session(model, threads)
    if is_yolox_output(session):
        return OnnxYoloxDetector(model, min_score, iou, threads, session)
    return OnnxYoloDetector(model, min_score, iou, threads, session)

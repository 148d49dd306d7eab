"""ultralytics `.pt` weights, for trying a freshly trained model before exporting it to ONNX.

Needs the `train` extra (ultralytics and torch); the box's runtime install has neither and runs the
ONNX export through onnxruntime instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from detectors import Detections, ModelError
from detectors.thresholds import checked_thresholds, class_floors


class UltralyticsDetector:
    """A YOLO detection model in ultralytics' own format, run by ultralytics."""

    def __init__(
        self,
        weights: Path,
        min_score: float = 0.25,
        iou: float = 0.5,
        imgsz: int = 640,
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        if not weights.is_file():
            raise ModelError(f"model file not found: {weights}")
        try:
            from ultralytics import YOLO
        except ImportError:
            raise ModelError(
                f"{weights}: .pt models need the train extra (pip install -e '.[train]'); on the box, export it "
                "first: edge-agent export WEIGHTS --out MODEL.onnx"
            ) from None
        try:
            self.model = YOLO(str(weights), task="detect")
        except Exception as exc:  # ultralytics raises many kinds for a bad file
            raise ModelError(f"{weights}: not readable as ultralytics weights ({exc})") from exc
        names = self.model.names
        self.class_names = tuple(str(names[i]) for i in sorted(names))
        self.min_score, self.iou, self.imgsz = min_score, iou, imgsz
        self.thresholds = checked_thresholds(thresholds or {}, self.class_names)  # .pt files carry none
        self._floors = class_floors(self.class_names, min_score, self.thresholds)
        self.name = weights.stem
        self.version = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
        self.stage_s = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}

    def detect(self, image: np.ndarray) -> Detections:
        conf = float(self._floors.min())  # the lowest floor; each class's own is applied below
        result = self.model.predict(image, conf=conf, iou=self.iou, imgsz=self.imgsz, verbose=False)[0]
        speed = result.speed  # milliseconds, as ultralytics measures them
        for stage in self.stage_s:
            self.stage_s[stage] += speed.get(stage, 0.0) / 1000
        boxes = result.boxes
        found = Detections(
            boxes.xyxy.cpu().numpy().astype(np.float32),
            boxes.conf.cpu().numpy().astype(np.float32),
            boxes.cls.cpu().numpy().astype(np.int32),
            self.class_names,
        )
        return found[found.confidence >= self._floors[found.class_id]]

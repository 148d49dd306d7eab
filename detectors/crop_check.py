"""A second look at one class's boxes: is this bin overflowing, or only a bin?

The garbage model's `overflow` class also fires on clean, closed street containers (to a detector at
320 pixels a dark container looks like an overflowing one). A small classifier, trained on crops of the
training split's labelled bins (clean) and overflowing bins plus the detector's own false overflow boxes
on those photos (`edge-agent train-crop-check`), looks again at each such box with some of its
surroundings (garbage heaped at a bin's foot is part of the evidence). The box's score becomes
score^weight x p^(1 - weight), p the classifier's probability that it is overflowing, so the class's
operating threshold (`edge-agent calibrate`, run with the check) then drops the bins the classifier calls
clean unless the detector is very sure, and mAP stays a measure of the fused ranking (docs/overflow.md).
The detector model names its check in its metadata (`edge_agent_crop_check`), so the check travels with
the model it was made for; the configuration can turn it off or replace it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detectors import Detections, Detector, ModelError, is_bare_file_name
from detectors.onnx_yolo import OnnxDetector, metadata_class_names, open_session

METADATA_KEY = "edge_agent_crop_check"
PAD = 0.2  # share of the box's width and height added on each side: the context the classifier was trained on
FILL = 114  # the grey that squares a crop, as ultralytics' letterbox
DEFAULT_WEIGHT = 0.7  # the detector's share of the fused score, where a check's metadata gives none (docs/overflow.md)


@dataclass(frozen=True)
class CropCheckSpec:
    """Which boxes are checked, by which classifier, and the detector score's share of the fused score."""

    model: Path
    checked_class: str
    positive: str
    weight: float


def spec_from_metadata(model_path: Path, metadata: dict[str, str]) -> CropCheckSpec | None:
    """The check a detection model names for itself; its classifier's file sits beside the model.

    The file name comes from a model file, i.e. from outside: only a bare file name is accepted."""
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        return None
    try:
        spec = json.loads(raw)
        name, checked, positive, weight = spec["model"], spec["class"], spec["positive"], float(spec["weight"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{model_path}: unreadable {METADATA_KEY} metadata ({exc})") from None
    if not is_bare_file_name(name):
        raise ModelError(f"{model_path}: {METADATA_KEY} must name a file beside the model, got {name!r}")
    if not 0 < weight <= 1:
        raise ModelError(f"{model_path}: {METADATA_KEY} weight must be in (0, 1], got {weight}")
    return CropCheckSpec(model_path.parent / name, str(checked), str(positive), weight)


def square_crop(image: np.ndarray, box: np.ndarray, side: int) -> np.ndarray:
    """The box with PAD around it, clipped to the image, scaled to fit `side` and centred on grey."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    pad_x, pad_y = PAD * (x2 - x1), PAD * (y2 - y1)
    left, right = int(max(0, x1 - pad_x)), int(min(width, x2 + pad_x))
    top, bottom = int(max(0, y1 - pad_y)), int(min(height, y2 + pad_y))
    out = np.full((side, side, 3), FILL, np.uint8)
    crop = image[top:bottom, left:right]
    if crop.size == 0:
        return out
    scale = side / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y, x = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    out[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    return out


class CropClassifier:
    """An ultralytics classification model exported to ONNX, run on onnxruntime like the detectors."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        self.session = open_session(model_path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("task") != "classify":
            raise ModelError(f"{model_path}: not a classification model (task {meta.get('task')!r})")
        self.class_names = metadata_class_names(model_path, meta)
        self.side = int(self.session.get_inputs()[0].shape[2])
        self.input_name = self.session.get_inputs()[0].name
        self.version = hashlib.sha256(model_path.read_bytes()).hexdigest()[:8]

    def probabilities(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N, classes): each box's class probabilities, the crops taken from the BGR `image`."""
        out = np.zeros((len(boxes), len(self.class_names)), np.float32)
        for i, box in enumerate(boxes):  # the export has a fixed batch of one; a frame has few such boxes
            crop = square_crop(image, box, self.side)
            blob = np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], np.float32) / 255.0
            out[i] = self.session.run(None, {self.input_name: blob})[0][0]
        return out


class CropCheckedDetector:
    """A detector whose boxes of one class are rescored by the crop classifier, then held to the class's floor.

    The fused score never exceeds the detector's own score to the power `weight`, so the detector lets the
    class out from floor^(1 / weight): every box that can reach the floor is rescored, no other."""

    def __init__(self, inner: OnnxDetector, classifier: CropClassifier, spec: CropCheckSpec) -> None:
        if spec.checked_class not in inner.class_names:
            raise ValueError(f"the model has no class {spec.checked_class!r} to check; it has {inner.class_names}")
        if spec.positive not in classifier.class_names:
            raise ValueError(f"{spec.model}: no class {spec.positive!r}; it has {classifier.class_names}")
        self.inner, self.classifier, self.spec = inner, classifier, spec
        self._checked = inner.class_names.index(spec.checked_class)
        self._positive = classifier.class_names.index(spec.positive)
        self.name = inner.name
        self.version = f"{inner.version}+check{classifier.version}"  # case records tell checked results apart
        self.class_names = inner.class_names
        self.floor = inner.floor(spec.checked_class)  # the class's operating score, held after rescoring
        inner.lower_floor(spec.checked_class, self.floor ** (1 / spec.weight))
        self.input_hw = inner.input_hw  # for tiling, which wraps this detector
        self.dropped = 0  # boxes the check has dropped since start: for the log and the bench
        self._check_s = 0.0

    @property
    def stage_s(self) -> dict[str, float]:
        """The detector's stage timings and the check's, summed since start (for the bench)."""
        return self.inner.stage_s | {"crop_check": self._check_s}

    def detect(self, image: np.ndarray) -> Detections:
        found = self.inner.detect(image)
        checked = found.class_id == self._checked
        if not checked.any():
            return found
        started = time.perf_counter()
        p = self.classifier.probabilities(image, found.xyxy[checked])[:, self._positive]
        self._check_s += time.perf_counter() - started
        confidence = found.confidence.copy()
        weight = self.spec.weight
        confidence[checked] = confidence[checked] ** weight * np.clip(p, 0, 1) ** (1 - weight)
        keep = ~checked | (confidence >= self.floor)
        self.dropped += int((~keep).sum())
        rescored = Detections(
            found.xyxy, confidence.astype(np.float32), found.class_id, found.class_names, found.tracker_id
        )
        return rescored[keep]


def own_spec(detector: Detector, model_path: Path) -> CropCheckSpec | None:
    """The check `detector`'s model file names, if any (ONNX detectors; a .pt model names none)."""
    session = getattr(detector, "session", None)
    return spec_from_metadata(model_path, session.get_modelmeta().custom_metadata_map) if session else None


def with_own_crop_check(detector: OnnxDetector, model_path: Path, threads: int = 1) -> Detector:
    """`detector` checked by the classifier its model's metadata names, or as it is when it names none."""
    spec = own_spec(detector, model_path)
    return detector if spec is None else CropCheckedDetector(detector, CropClassifier(spec.model, threads), spec)


__all__ = [
    "DEFAULT_WEIGHT",
    "METADATA_KEY",
    "CropCheckSpec",
    "CropCheckedDetector",
    "CropClassifier",
    "own_spec",
    "spec_from_metadata",
    "square_crop",
    "with_own_crop_check",
]

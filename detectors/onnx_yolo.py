"""YOLO (ultralytics v8/11 export) inference on onnxruntime: letterbox, run, decode, NMS.

The box has no torch: this is the only inference path in the runtime install. Class names and
the input size come from the metadata that ultralytics writes into the ONNX file; per-class operating
thresholds from the metadata that `edge-agent calibrate` writes (detectors.thresholds).
"""

from __future__ import annotations

import ast
import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from detectors import Detections, ModelError
from detectors.thresholds import checked_thresholds, class_floors, describe, read_model_thresholds

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider")


class OnnxDetector:
    """What every ONNX detector here shares once its session, class names and input size are known:
    per-class score floors, its name and version for the case record, stage timings, one log line."""

    session: ort.InferenceSession
    class_names: tuple[str, ...]
    input_hw: tuple[int, int]
    layout = ""  # said in the log line where it is not ultralytics'

    def _settle(
        self,
        model_path: Path,
        meta: Mapping[str, str],
        min_score: float,
        iou: float,
        thresholds: Mapping[str, float] | None,
        model_thresholds: bool,
    ) -> None:
        self.input_name = self.session.get_inputs()[0].name
        self.min_score = min_score
        self.iou = iou
        self.stored_thresholds = read_model_thresholds(model_path, meta, self.class_names)  # the metadata's
        stored = self.stored_thresholds if model_thresholds else {}
        self.thresholds = stored | checked_thresholds(thresholds or {}, self.class_names)  # the ones in use
        self._floors = class_floors(self.class_names, min_score, self.thresholds)
        self.name = model_path.stem
        self.version = hashlib.sha256(model_path.read_bytes()).hexdigest()[:12]
        self.stage_s = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}  # summed, for benchmarks
        log.info(
            "model %s (%s%s): %d classes, input %dx%d, providers %s, thresholds %s",
            self.name,
            self.version,
            self.layout,
            len(self.class_names),
            self.input_hw[1],
            self.input_hw[0],
            self.session.get_providers(),
            describe(self.class_names, min_score, self.thresholds),
        )

    def floor(self, class_name: str) -> float:
        """The score a box of `class_name` needs to leave the detector."""
        return float(self._floors[self.class_names.index(class_name)])

    def lower_floor(self, class_name: str, score: float) -> None:
        """Let boxes of `class_name` out from `score` up: a stage after this one (the crop check) rescores them
        and holds them to the class's own floor."""
        self._floors[self.class_names.index(class_name)] = min(score, self.floor(class_name))

    def _kept(self, xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray, hw: tuple[int, ...]) -> Detections:
        """Boxes in image pixels over their class's floor: clipped to the image, NMS per class."""
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, hw[1])
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, hw[0])
        kept = nms_per_class(xyxy, confidence, class_id, self.iou)
        return Detections(
            xyxy[kept].astype(np.float32),
            confidence[kept].astype(np.float32),
            class_id[kept].astype(np.int32),
            self.class_names,
        )


class OnnxYoloDetector(OnnxDetector):
    """A YOLO detection model exported to ONNX by ultralytics."""

    def __init__(
        self,
        model_path: Path,
        min_score: float = 0.25,
        iou: float = 0.5,
        threads: int = 1,
        thresholds: Mapping[str, float] | None = None,
        model_thresholds: bool = True,
        session: ort.InferenceSession | None = None,
    ) -> None:
        """`thresholds` override the model's own per class ({class name: score}; ValueError for a class it
        lacks); `model_thresholds=False` ignores the model's (evaluation needs every box); `session`: one
        already opened on `model_path` (load_detector opens it to tell the export's layout)."""
        self.session = session or open_session(model_path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.class_names = metadata_class_names(model_path, meta)
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
            raise ModelError(f"{model_path}: expected a fixed input of shape (1, 3, H, W), got {shape}")
        self.input_hw = (int(shape[2]), int(shape[3]))
        out_shape = self.session.get_outputs()[0].shape
        if len(out_shape) != 3 or out_shape[1] != 4 + len(self.class_names):
            raise ModelError(
                f"{model_path}: output shape {out_shape} does not fit {len(self.class_names)} classes; "
                "export a detection model with `edge-agent export` (ultralytics format)"
            )
        self._settle(model_path, meta, min_score, iou, thresholds, model_thresholds)

    def detect(self, image: np.ndarray) -> Detections:
        """Detect objects in one BGR image; boxes are in the image's pixels."""
        t0 = time.perf_counter()
        blob, scale, pad = letterbox(image, self.input_hw)
        t1 = time.perf_counter()
        raw = self.session.run(None, {self.input_name: blob})[0][0]  # (4 + classes, anchors)
        t2 = time.perf_counter()
        found = self._decode(raw, scale, pad, image.shape[:2])
        stage = self.stage_s
        stage["preprocess"] += t1 - t0
        stage["inference"] += t2 - t1
        stage["postprocess"] += time.perf_counter() - t2
        return found

    def _decode(self, raw: np.ndarray, scale: float, pad: tuple[float, float], hw: tuple[int, int]) -> Detections:
        scores_all = raw[4:]
        class_id = scores_all.argmax(axis=0)
        confidence = scores_all[class_id, np.arange(scores_all.shape[1])]
        keep = confidence >= self._floors[class_id]
        if not keep.any():
            return Detections.empty(self.class_names)
        cx, cy, w, h = raw[:4, keep]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        xyxy = (xyxy - np.array([pad[0], pad[1], pad[0], pad[1]], np.float32)) / scale
        return self._kept(xyxy, confidence[keep], class_id[keep], hw)


def open_session(model_path: Path, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session on the best provider present; a clear ModelError for a missing or bad file."""
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    available = ort.get_available_providers()
    providers = [p for p in PREFERRED_PROVIDERS if p in available]
    try:
        return ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"{model_path}: not a readable ONNX model ({exc})") from exc


def letterbox(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio, pad with grey (114) to the model input, as ultralytics does.

    Returns the NCHW float32 RGB blob in [0, 1], the scale applied and the (x, y) padding.
    """
    in_h, in_w = input_hw
    h, w = image.shape[:2]
    scale = min(in_w / w, in_h / h)
    new_w, new_h = round(w * scale), round(h * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (in_w - new_w) / 2, (in_h - new_h) / 2
    canvas = np.full((in_h, in_w, 3), 114, np.uint8)
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas[top : top + new_h, left : left + new_w] = resized
    # One pass per colour plane straight into the NCHW blob (BGR to RGB by plane order): the same values
    # as astype(float32) / 255 of the transposed image, in a third of the time (no strided copies).
    blob = np.empty((1, 3, in_h, in_w), np.float32)
    for plane in range(3):
        np.divide(canvas[:, :, 2 - plane], 255.0, out=blob[0, plane], dtype=np.float32)
    return blob, scale, (float(left), float(top))


def nms_per_class(xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, run separately for each class."""
    offset = class_id[:, None].astype(np.float32) * (xyxy.max() + 1)  # boxes of other classes never overlap
    boxes = xyxy + offset
    order = np.argsort(-scores, kind="stable")  # ties (int8 scores have few values) by anchor: the same box
    # wins whichever weaker boxes are also candidates (the crop check lowers a class's floor)
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def metadata_class_names(model_path: Path, meta: dict[str, str]) -> tuple[str, ...]:
    if "names" not in meta:
        raise ModelError(f"{model_path}: no class names in the model metadata; export it with `edge-agent export`")
    try:
        names = ast.literal_eval(meta["names"])
    except (ValueError, SyntaxError) as exc:
        raise ModelError(f"{model_path}: unreadable class names in metadata: {meta['names']!r}") from exc
    if isinstance(names, dict):
        return tuple(str(names[i]) for i in sorted(names))
    return tuple(str(n) for n in names)

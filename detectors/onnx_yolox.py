"""YOLOX (Megvii) inference on onnxruntime: its own letterbox, grid decoding and NMS.

YOLOX exports differ from ultralytics ones in every step, so they get their own decoder rather than
flags on the YOLO one: the input is BGR 0-255 (no normalisation) with the image at the top-left of a
grey (114) canvas; the output is (1, cells, 5 + classes), one row per grid cell of strides 8, 16 and 32,
holding raw box offsets, objectness and class scores (score = objectness x class score). The upstream
files carry no metadata, so class names come from a `<model>.names` file beside the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from detectors import Detections, ModelError
from detectors.onnx_yolo import OnnxDetector, metadata_class_names, open_session

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
PAD_VALUE = 114


def grid_cells(input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Each output row's cell (x, y) and stride, in the order YOLOX writes them: stride by stride, row by row."""
    cells, strides = [], []
    for stride in STRIDES:
        rows, cols = input_hw[0] // stride, input_hw[1] // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full(rows * cols, stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def is_yolox_output(session: ort.InferenceSession) -> bool:
    """Whether a session has YOLOX's layout: one output row per grid cell of the fixed input."""
    in_shape, out_shape = session.get_inputs()[0].shape, session.get_outputs()[0].shape
    if len(in_shape) != 4 or not all(isinstance(d, int) for d in in_shape[2:]) or len(out_shape) != 3:
        return False
    return out_shape[1] == len(grid_cells((int(in_shape[2]), int(in_shape[3])))[1])


def yolox_letterbox(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio to the top-left of a grey canvas, as YOLOX was trained.

    Returns the NCHW float32 BGR blob in 0-255 and the scale applied (no padding offset: top-left).
    """
    in_h, in_w = input_hw
    h, w = image.shape[:2]
    scale = min(in_w / w, in_h / h)
    new_w, new_h = int(w * scale), int(h * scale)
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32), scale


class OnnxYoloxDetector(OnnxDetector):
    """A YOLOX detection model in ONNX (decoding outside the graph, NMS not in it)."""

    layout = ", YOLOX"

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
        """The arguments of OnnxYoloDetector: per-class `thresholds` override the model's own (metadata)."""
        self.session = session or open_session(model_path, threads)
        if not is_yolox_output(self.session):
            shapes = (self.session.get_inputs()[0].shape, self.session.get_outputs()[0].shape)
            raise ModelError(f"{model_path}: input and output shapes {shapes} are not a YOLOX export")
        shape = self.session.get_inputs()[0].shape
        self.input_hw = (int(shape[2]), int(shape[3]))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.class_names = yolox_class_names(model_path, meta)
        out_width = self.session.get_outputs()[0].shape[2]
        if out_width != 5 + len(self.class_names):
            raise ModelError(
                f"{model_path}: output rows hold {out_width} values, but {len(self.class_names)} class names "
                f"need {5 + len(self.class_names)}; fix the class names file"
            )
        self.cells, self.strides = grid_cells(self.input_hw)
        self._settle(model_path, meta, min_score, iou, thresholds, model_thresholds)

    def detect(self, image: np.ndarray) -> Detections:
        """Detect objects in one BGR image; boxes are in the image's pixels."""
        t0 = time.perf_counter()
        blob, scale = yolox_letterbox(image, self.input_hw)
        t1 = time.perf_counter()
        raw = self.session.run(None, {self.input_name: blob})[0][0]  # (cells, 5 + classes)
        t2 = time.perf_counter()
        found = self._decode(raw, scale, image.shape[:2])
        stage = self.stage_s
        stage["preprocess"] += t1 - t0
        stage["inference"] += t2 - t1
        stage["postprocess"] += time.perf_counter() - t2
        return found

    def _decode(self, raw: np.ndarray, scale: float, hw: tuple[int, int]) -> Detections:
        scores = raw[:, 4:5] * raw[:, 5:]
        class_id = scores.argmax(axis=1)
        confidence = scores[np.arange(len(scores)), class_id]
        keep = confidence >= self._floors[class_id]
        if not keep.any():
            return Detections.empty(self.class_names)
        stride = self.strides[keep, None]
        centre = (raw[keep, :2] + self.cells[keep]) * stride
        half = np.exp(raw[keep, 2:4]) * stride / 2
        xyxy = np.concatenate([centre - half, centre + half], axis=1) / scale
        return self._kept(xyxy, confidence[keep], class_id[keep], hw)


def yolox_class_names(model_path: Path, meta: dict[str, str]) -> tuple[str, ...]:
    """Class names from the model's `names` metadata, else from `<model>.names` (one per line, in id order).

    An int8 copy (`<model>-int8.onnx`) shares its fp32 twin's names file.
    """
    if "names" in meta:
        return metadata_class_names(model_path, meta)
    stems = dict.fromkeys([model_path.stem, model_path.stem.removesuffix("-int8")])
    for stem in stems:
        names_file = model_path.with_name(f"{stem}.names")
        if names_file.is_file():
            names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines()]
            return tuple(n for n in names if n)
    raise ModelError(
        f"{model_path}: no class names; put them one per line in {model_path.with_suffix('.names').name} "
        "beside the model, in class-id order"
    )


__all__ = ["OnnxYoloxDetector", "grid_cells", "is_yolox_output", "yolox_class_names", "yolox_letterbox"]

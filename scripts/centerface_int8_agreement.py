"""Does a static int8 CenterFace find the faces its fp32 original finds? Quantize, then compare on real images.

Masking is about recall: a face the model misses is uploaded unmasked, so an int8 face model is worth its
speed only where it finds what fp32 finds. Quantization as `agent/tools/training.py: quantize_int8` (QDQ,
weights int8 per channel with 7-bit range so that AVX2 CPUs without VNNI compute the same sums, activations
uint8, MinMax) after converting the opset-9 file to opset 13 (per-channel DequantizeLinear needs it); the
four head convolutions and the sigmoid stay in float (box sizes are exp() of their output). Calibrated on
the training side of `../shared/datasets/smoke-fire` (street kitchens, people); compared on its held-out
side, every 3rd frame of vtest.avi (a plaza with pedestrians) and the held-out garbage photos: faces fp32
finds at `privacy.min_face_score` (0.5) that int8 finds at 0.5 - --margin with IoU >= 0.5, and back.

    .venv/bin/python scripts/centerface_int8_agreement.py --out /tmp/face-int8.onnx [--margin 0.05]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from agent.config.resources import builtin
from agent.tools.training import split_side
from detectors import Detections
from detectors.faces import FaceDetector
from detectors.metrics import box_iou

SHARED = Path(__file__).resolve().parents[2] / "shared"
SMOKE = SHARED / "datasets/smoke-fire"
GARBAGE = SHARED / "datasets/garbage-street-cn/train/images"
OPERATING = 0.5  # PrivacyConfig.min_face_score's default
HEAD_OUTPUTS = {"536", "537", "538", "539", "540"}  # the head convs' and the sigmoid's outputs


def photos(folder: Path, side: str) -> list[Path]:
    return sorted(p for p in folder.rglob("*.jpg") if split_side(p.name, 0.15) == side)


def blob(image: np.ndarray, max_side_px: int = 1280) -> np.ndarray:
    """The face detector's own input for `image` (detectors/faces.py: FaceDetector.detect)."""
    height, width = image.shape[:2]
    fit = min(1.0, max_side_px / max(height, width))
    in_w, in_h = (32 * int(np.ceil(side * fit / 32)) for side in (width, height))
    return cv2.dnn.blobFromImage(image, 1.0, (in_w, in_h), (0, 0, 0), swapRB=True, crop=False)


def quantize(out: Path) -> None:
    chosen = photos(SMOKE, "train")[::3][:200]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._paths = iter(chosen)

        def get_next(self) -> dict[str, np.ndarray] | None:
            for path in self._paths:
                image = cv2.imread(str(path))
                if image is not None:
                    return {"input.1": blob(image)}
            return None

    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # onnxruntime leaves files in the cwd
        opset13, prepared = Path(tmp) / "opset13.onnx", Path(tmp) / "prepared.onnx"
        model = version_converter.convert_version(onnx.load(str(builtin("face"))), 13)
        for index, node in enumerate(model.graph.node):  # upstream's nodes are unnamed; exclusion needs names
            node.name = node.name or f"{node.op_type}_{index}"
        onnx.save(model, str(opset13))
        quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
        head = [n.name for n in onnx.load(str(prepared)).graph.node if set(n.output) & HEAD_OUTPUTS]
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            nodes_to_exclude=head,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def share_found(reference: list[Detections], other: list[Detections], margin: float) -> tuple[int, int]:
    found = total = 0
    for ref, oth in zip(reference, other, strict=True):
        candidates = oth.xyxy[oth.confidence >= OPERATING - margin]
        for box in ref.xyxy[ref.confidence >= OPERATING]:
            total += 1
            found += bool(len(candidates) and box_iou(box[None], candidates).max() >= 0.5)
    return found, total


def vtest_frames(step: int) -> list[np.ndarray]:
    capture, frames, index = cv2.VideoCapture(str(SHARED / "video/vtest.avi")), [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        if index % step == 0:
            frames.append(frame)
        index += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the int8 model")
    parser.add_argument("--margin", type=float, default=0.05, help="how far below 0.5 the other model may score")
    args = parser.parse_args()
    quantize(args.out.resolve())
    fp32 = FaceDetector(builtin("face"), OPERATING - args.margin)
    int8 = FaceDetector(args.out, OPERATING - args.margin)
    sets = {
        "smoke-fire held-out photos": [cv2.imread(str(p)) for p in photos(SMOKE, "val")],
        "vtest every 3rd frame": vtest_frames(3),
        "garbage held-out photos": [cv2.imread(str(p)) for p in photos(GARBAGE, "val")],
    }
    for name, images in sets.items():
        by_fp32, by_int8 = [fp32.detect(i) for i in images], [int8.detect(i) for i in images]
        (a, b), (c, d) = share_found(by_fp32, by_int8, args.margin), share_found(by_int8, by_fp32, args.margin)
        print(
            f"{name} ({len(images)}): int8 finds {a}/{b} fp32 faces ({a / max(b, 1):.3f}), "
            f"fp32 finds {c}/{d} int8 faces ({c / max(d, 1):.3f})"
        )
    frame = cv2.resize(sets["vtest every 3rd frame"][0], (1920, 1080))
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(15):  # interleaved, so that the load of a shared machine hits both alike
        for label, detector in (("fp32", fp32), ("int8", int8)):
            started = time.perf_counter()
            detector.detect(frame)
            times[label].append(time.perf_counter() - started)
    print(
        "1920x1080 frame searched at 1280x736, one thread, median ms: "
        + ", ".join(f"{k} {statistics.median(v) * 1000:.1f}" for k, v in times.items())
    )


if __name__ == "__main__":
    main()

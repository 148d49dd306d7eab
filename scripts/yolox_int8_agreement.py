"""Does a static int8 YOLOX-Nano agree with its fp32 original? Quantize, then compare on real images.

Quantization as `agent/tools/training.py: quantize_int8` (QDQ, weights int8 per channel with 7-bit range,
activations uint8, MinMax on 200 training-side garbage photos) after converting the opset-11 file to
opset 13 (per-channel DequantizeLinear needs it). Kept in float: everything after the prediction convs
(sigmoids, concat, reshape: one int8 scale cannot hold box offsets and scores) and, with --float-focus,
the input stem (Focus and the first four convolutions: quantized too, no score passes 0.15).
--float-preds also keeps the nine prediction convs in float. Agreement is the measure of
tests/detectors/test_int8_agreement.py (boxes at 0.30 the other model has at >= 0.25, same class,
IoU >= 0.5), on the 197 held-out garbage photos and every 3rd vtest.avi frame.
Result: models/general-yolox-nano.md, "int8".

    .venv/bin/python scripts/yolox_int8_agreement.py --out /tmp/yolox-int8.onnx --float-focus [--float-preds]
"""

from __future__ import annotations

import argparse
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
from detectors.metrics import box_iou
from detectors.onnx_yolo import open_session
from detectors.onnx_yolox import OnnxYoloxDetector, yolox_letterbox

SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTOS = SHARED / "datasets/garbage-street-cn/train/images"
OPERATING, MARGIN = 0.30, 0.05
# the prepared graph's first nodes: the Focus slices (fused into SpaceToDepth + Gather), then the first four
# convolutions of the stem and the dark2 stage with their SiLUs (the fourth conv's SiLU stays int8)
STEM_NODES = 12


def photos(side: str) -> list[Path]:
    return sorted(p for p in PHOTOS.iterdir() if split_side(p.name, 0.15) == side)


def float_nodes(graph: onnx.GraphProto, float_focus: bool, float_preds: bool) -> list[str]:
    """Names of the nodes kept in float: the decode tail, and optionally the stem and prediction convs."""
    preds = [n for n in graph.node if n.op_type == "Conv" and any("_preds." in i for i in n.input)]
    frontier, tail = {n.output[0] for n in preds}, []
    for node in graph.node:  # topological order: one pass reaches everything downstream
        if any(i in frontier for i in node.input):
            tail.append(node.name)
            frontier.update(node.output)
    return (
        tail
        + ([n.name for n in graph.node[:STEM_NODES]] if float_focus else [])
        + ([n.name for n in preds] if float_preds else [])
    )


def quantize(out: Path, float_focus: bool, float_preds: bool) -> None:
    chosen = photos("train")[:: max(1, len(photos("train")) // 200)][:200]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._paths = iter(chosen)

        def get_next(self) -> dict[str, np.ndarray] | None:
            for path in self._paths:
                image = cv2.imread(str(path))
                if image is not None:
                    return {"images": yolox_letterbox(image, (416, 416))[0]}
            return None

    with tempfile.TemporaryDirectory() as tmp:
        opset13, prepared = Path(tmp) / "opset13.onnx", Path(tmp) / "prepared.onnx"
        onnx.save(version_converter.convert_version(onnx.load(str(builtin("general"))), 13), str(opset13))
        quant_pre_process(str(opset13), str(prepared))
        excluded = float_nodes(onnx.load(str(prepared)).graph, float_focus, float_preds)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            nodes_to_exclude=excluded,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def share_found(reference: list[Detections], other: list[Detections]) -> tuple[int, int]:
    found = total = 0
    for ref, oth in zip(reference, other, strict=True):
        candidates = oth.confidence >= OPERATING - MARGIN
        sure = ref.confidence >= OPERATING
        for box, cls in zip(ref.xyxy[sure], ref.class_id[sure], strict=True):
            total += 1
            same = candidates & (oth.class_id == cls)
            found += bool(same.any() and box_iou(box[None], oth.xyxy[same]).max() >= 0.5)
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
    parser.add_argument("--float-focus", action="store_true", help="keep the Focus stem in float")
    parser.add_argument("--float-preds", action="store_true", help="keep the prediction convs in float")
    args = parser.parse_args()
    quantize(args.out, args.float_focus, args.float_preds)
    fp32 = OnnxYoloxDetector(builtin("general"), OPERATING - MARGIN)
    int8 = OnnxYoloxDetector(builtin("general"), OPERATING - MARGIN, session=open_session(args.out))
    sets = {"held-out photos": [cv2.imread(str(p)) for p in photos("val")], "vtest every 3rd": vtest_frames(3)}
    for name, images in sets.items():
        by_fp32, by_int8 = [fp32.detect(i) for i in images], [int8.detect(i) for i in images]
        (a, b), (c, d) = share_found(by_fp32, by_int8), share_found(by_int8, by_fp32)
        print(f"{name}: int8 finds {a}/{b} fp32 boxes ({a / b:.3f}), fp32 finds {c}/{d} int8 boxes ({c / d:.3f})")
    blobs = [yolox_letterbox(f, (416, 416))[0] for f in sets["vtest every 3rd"][:60]]
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for blob in blobs:  # interleaved, so that the load of a shared machine hits both alike
        for label, detector in (("fp32", fp32), ("int8", int8)):
            started = time.perf_counter()
            detector.session.run(None, {"images": blob})
            times[label].append(time.perf_counter() - started)
    print(", ".join(f"{k} {1000 * statistics.median(v):.1f} ms" for k, v in times.items()), "(inference, 1 thread)")


if __name__ == "__main__":
    main()

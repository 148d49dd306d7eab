"""Each shipped int8 model finds what its fp32 twin finds, on the CPU that runs the suite.

int8 results used to depend on the CPU: without VNNI, onnxruntime's u8s8 kernels saturate with 8-bit
weights (VPMADDUBSW), and on an AVX2-only AMD EPYC the old garbage, smoke and vendors int8 models
each lost or added 5-25 % of the boxes here. The fp32 model is the reference every CPU computes
alike, so agreement with it on real held-out images is what makes int8 results the same everywhere.

A box counts as found when the other model has a box of the same class at IoU >= 0.5 scoring at
least the operating threshold less a margin: int8 moves scores by a few hundredths, and a box at
0.31 in one model and 0.29 in the other is the same detection, not a disagreement.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config.resources import builtin
from agent.tools.training import IMAGE_SUFFIXES, image_folders, split_side
from detectors import Detections
from detectors.metrics import box_iou
from detectors.onnx_yolo import OnnxYoloDetector
from tests.conftest import need_shared

OPERATING = 0.30
MARGIN = 0.05
IMAGES = 48  # about 90 boxes a model: one disagreement moves the share by about a point (24 images: two)
MIN_AGREEMENT = 0.97  # the old saturating models reached 0.75-0.95 here, the 7-bit ones 1.0

# built-in name, dataset, held-out fraction of its model card, the frame's aspect (None: the photo as it is)
MODELS = [
    ("garbage", "datasets/garbage-street-cn/train", 0.15, None),
    ("garbage-416x224", "datasets/garbage-street-cn/train", 0.15, 16 / 9),  # the 16:9 frames it is used for
    ("smoke", "datasets/smoke-fire", 0.25, None),
    ("vendors-aerial", "datasets/vendors-aerial/train", 0.2, None),
]


def _held_out_images(dataset: Path, val_fraction: float) -> list[Path]:
    """IMAGES held-out images (never trained on, never calibrated on), spread over the split."""
    images = sorted(
        path
        for folder in image_folders(dataset)
        for path in (folder / "images").iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and split_side(path.name, val_fraction) == "val"
    )
    return images[:: max(1, len(images) // IMAGES)][:IMAGES]


def _share_found(reference: list[Detections], other: list[Detections]) -> tuple[int, int]:
    """(found, total): the reference's boxes at the operating threshold that the other model also has."""
    found = total = 0
    for ref, oth in zip(reference, other, strict=True):
        candidates = oth.confidence >= OPERATING - MARGIN
        sure = ref.confidence >= OPERATING
        for box, cls in zip(ref.xyxy[sure], ref.class_id[sure], strict=True):
            total += 1
            same = candidates & (oth.class_id == cls)
            found += bool(same.any() and box_iou(box[None], oth.xyxy[same]).max() >= 0.5)
    return found, total


def _band(image: np.ndarray, aspect: float | None) -> np.ndarray:
    """The image's central band of `aspect` (width / height), as a camera of that shape would frame it."""
    if aspect is None:
        return image
    height = min(image.shape[0], round(image.shape[1] / aspect))
    top = (image.shape[0] - height) // 2
    return image[top : top + height]


@pytest.mark.parametrize(("name", "dataset", "val_fraction", "aspect"), MODELS, ids=[m[0] for m in MODELS])
def test_int8_model_finds_what_its_fp32_twin_finds(
    name: str, dataset: str, val_fraction: float, aspect: float | None
) -> None:
    images = [_band(cv2.imread(str(p)), aspect) for p in _held_out_images(need_shared(dataset), val_fraction)]
    assert len(images) == IMAGES
    # the networks' own scores: each file's stored thresholds are calibrated on its own scores (so an fp32
    # overflow box at 0.61 is under the int8 file's 0.63), which is calibration, not what quantization changed
    fp32 = OnnxYoloDetector(builtin(f"{name}-fp32"), min_score=OPERATING - MARGIN, model_thresholds=False)
    int8 = OnnxYoloDetector(builtin(name), min_score=OPERATING - MARGIN, model_thresholds=False)
    by_fp32, by_int8 = [fp32.detect(i) for i in images], [int8.detect(i) for i in images]

    fp32_found, fp32_total = _share_found(by_fp32, by_int8)
    int8_found, int8_total = _share_found(by_int8, by_fp32)
    assert fp32_total >= 20  # enough boxes for a share to mean something
    assert fp32_found >= MIN_AGREEMENT * fp32_total, f"int8 misses {fp32_total - fp32_found} of {fp32_total} fp32 boxes"
    assert int8_found >= MIN_AGREEMENT * int8_total, f"int8 adds {int8_total - int8_found} boxes fp32 does not find"

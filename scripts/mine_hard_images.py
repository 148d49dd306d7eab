"""Training images a garbage model gets wrong, to list again in a training list (recipe R8, models/garbage-yolov8n.md).

R7 found more piles than version 4 but called a large clean bin overflowing. This runs a model without its crop
check on the TRAINING side of a split (held-out photos never, vtest.avi never) and writes the images where it
- boxes `overflow` where no overflow is labelled (a clean bin read as overflowing: the mistake to teach away), or
- misses a labelled `garbage` pile (no garbage box at IoU >= 0.5),
one path a line, for `cat` onto the split's train.txt: an image listed again is trained on again each epoch.

    .venv/bin/python scripts/mine_hard_images.py SPLIT/data.yaml MODEL.onnx OUT.txt [--min-score 0.4]
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from pathlib import Path

import cv2
import yaml

from agent.tools.crop_check_training import MISTAKE_IOU, training_images
from agent.tools.evaluate import read_labels
from detectors.metrics import box_iou
from detectors.onnx_yolo import OnnxYoloDetector

MISSED_IOU = 0.5  # a labelled pile with no garbage box this close was missed
MISSED_SCORE = 0.25  # ... counting boxes this confident

log = logging.getLogger("mine_hard_images")


def hard_images(data_yaml: Path, model: Path, min_score: float) -> tuple[list[Path], Counter]:
    """The training images the model gets wrong, and how many for each reason."""
    spec = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    names = [spec["names"][i] for i in sorted(spec["names"])] if isinstance(spec["names"], dict) else spec["names"]
    garbage, overflow = names.index("garbage"), names.index("overflow")
    detector = OnnxYoloDetector(model, min_score=MISSED_SCORE, model_thresholds=False)
    found_garbage, found_overflow = detector.class_names.index("garbage"), detector.class_names.index("overflow")
    hard: list[Path] = []
    counts: Counter = Counter()
    for path in training_images(data_yaml, spec):
        label_file = path.parent.parent / "labels" / (path.stem + ".txt")
        if not label_file.is_file():
            continue  # a hard negative without labels is already in the list for that
        image = cv2.imread(str(path))
        if image is None:
            log.warning("%s: unreadable image, skipped", path)
            continue
        xyxy, cls = read_labels(label_file, image.shape[1], image.shape[0])
        found = detector.detect(image)
        boxes = found.xyxy[(found.class_id == found_overflow) & (found.confidence >= min_score)]
        labelled = xyxy[cls == overflow]
        false_overflow = len(boxes) and (not len(labelled) or (box_iou(boxes, labelled).max(1) < MISTAKE_IOU).any())
        piles, pile_boxes = xyxy[cls == garbage], found.xyxy[found.class_id == found_garbage]
        missed_pile = len(piles) and (not len(pile_boxes) or (box_iou(piles, pile_boxes).max(1) < MISSED_IOU).any())
        if false_overflow:
            counts["false overflow"] += 1
        if missed_pile:
            counts["missed garbage"] += 1
        if false_overflow or missed_pile:
            hard.append(path)
    return hard, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the split's data.yaml (its train side is read)")
    parser.add_argument("model", type=Path, help="the detection model, without its crop check")
    parser.add_argument("out", type=Path, help="the list to write")
    parser.add_argument("--min-score", type=float, default=0.4, help="overflow boxes this confident count")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    hard, counts = hard_images(args.data, args.model, args.min_score)
    args.out.write_text("".join(f"{p}\n" for p in hard), encoding="utf-8")
    print(f"{len(hard)} images: {dict(counts)} -> {args.out}")


if __name__ == "__main__":
    main()

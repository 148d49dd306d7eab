"""What cross-model vetoes (detectors/vetoes.py) remove: false garbage boxes gone, true ones lost.

Held-out photos: the 'val' side of `split_by_source` over the garbage dataset (built in a temporary
folder; ../shared is read-only). A garbage box is true when it matches a label of its class at IoU >= 0.5
(each label once, best score first), else false. vtest.avi (a plaza, no garbage): every box is false.
Printed per class and veto setting: boxes removed, false boxes removed, true boxes lost, recall before
and after. Both models run once per image; the settings are applied to the cached boxes.

    .venv/bin/python scripts/measure_vetoes.py [--step 3] [--general-score 0.3] [--classes car,person]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from agent.config.resources import builtin
from agent.tools.evaluate import read_labels
from agent.tools.training import split_by_source
from detectors import Detections
from detectors.loading import load_detector
from detectors.metrics import box_iou
from detectors.vetoes import VETO_CLASSES, vetoed

SHARED = Path(__file__).resolve().parents[2] / "shared"
GARBAGE_CLASSES = ["garbage", "garbage_bin", "overflow"]
SETTINGS = [(0.5, 0.5), (0.6, 0.5), (0.7, 0.5), (0.8, 0.5), (0.9, 0.5), (None, 0.5), (0.7, None)]


def true_boxes(found: Detections, labels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Which found boxes match a label of their class (IoU >= 0.5, each label once, best score first)."""
    xyxy, classes = labels
    used = np.zeros(len(xyxy), bool)
    true = np.zeros(len(found), bool)
    for i in np.argsort(-found.confidence):
        candidates = np.flatnonzero((classes == found.class_id[i]) & ~used)
        if candidates.size:
            iou = box_iou(found.xyxy[i : i + 1], xyxy[candidates])[0]
            if iou.max() >= 0.5:
                used[candidates[iou.argmax()]] = True
                true[i] = True
    return true


def held_out() -> list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    with tempfile.TemporaryDirectory() as tmp:
        split = split_by_source(SHARED / "datasets/garbage-street-cn/train", GARBAGE_CLASSES, Path(tmp))
        images = sorted((Path(tmp) / "val" / "images").iterdir())
        print(f"held-out images: {split.val_images}")
        out = []
        for path in images:
            image = cv2.imread(str(path))
            labels = read_labels(Path(tmp) / "val" / "labels" / (path.stem + ".txt"), image.shape[1], image.shape[0])
            out.append((image, labels))
        return out


def vtest(step: int) -> list[np.ndarray]:
    capture, frames, index = cv2.VideoCapture(str(SHARED / "video/vtest.avi")), [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        if index % step == 0:
            frames.append(frame)
        index += 1


def report(
    title: str, runs: list[tuple[Detections, Detections, np.ndarray]], labels: list[int] | None, classes: list[str]
) -> None:
    """One row per veto setting; `labels` is the number of labelled boxes per class (None: no labels)."""
    names = runs[0][0].class_names
    print(f"\n{title}: {len(runs)} images, classes vetoing: {', '.join(classes)}")
    recall = ", recall before->after" if labels else ""
    print(f"coverage iou | class: boxes, false removed/false, true lost/true{recall}")
    for min_coverage, min_iou in SETTINGS:
        cells = []
        for cls, name in enumerate(names):
            false = true = false_gone = true_gone = 0
            for garbage, general, is_true in runs:
                mine = garbage.class_id == cls
                gone = vetoed(garbage, general, classes, min_coverage, min_iou)
                true += int((mine & is_true).sum())
                false += int((mine & ~is_true).sum())
                true_gone += int((mine & is_true & gone).sum())
                false_gone += int((mine & ~is_true & gone).sum())
            cell = f"{name}: {true + false}, {false_gone}/{false}, {true_gone}/{true}"
            if labels:
                cell += f", {true / max(labels[cls], 1):.3f}->{(true - true_gone) / max(labels[cls], 1):.3f}"
            cells.append(cell)
        print(f"{min_coverage or 'off':>8} {min_iou or 'off':>3} | " + " | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=3, help="every Nth vtest.avi frame")
    parser.add_argument("--score", type=float, default=0.30, help="the garbage model's score threshold")
    parser.add_argument("--general-score", type=float, default=0.30, help="the general model's score threshold")
    parser.add_argument("--classes", default=",".join(VETO_CLASSES), help="general-model classes that veto")
    args = parser.parse_args()
    classes = args.classes.split(",")
    garbage = load_detector(builtin("garbage"), args.score, 0.5)
    general = load_detector(builtin("general"), args.general_score, 0.5)
    photos = held_out()
    labels = [sum(int((lab[1] == cls).sum()) for _, lab in photos) for cls in range(len(GARBAGE_CLASSES))]
    runs = []
    for image, labelled in photos:
        found = garbage.detect(image)
        runs.append((found, general.detect(image), true_boxes(found, labelled)))
    report("held-out garbage photos", runs, labels, classes)
    runs = []
    for frame in vtest(args.step):
        found = garbage.detect(frame)
        runs.append((found, general.detect(frame), np.zeros(len(found), bool)))
    report(f"vtest.avi every {args.step} frames", runs, None, classes)


if __name__ == "__main__":
    main()

"""Hard negatives of people for the garbage model (version 4, recipe R6 in models/garbage-yolov8n.md).

R5 boxed pedestrians as garbage. This writes crops of people from the training images: the general model
(builtin:general) finds the persons, and a square window about three times a person's height is cut
around each. A window is kept only when it touches no labelled box, and when the garbage model
(`--garbage-model`, default builtin:garbage; version 3 made version 4's) sees no garbage or overflow there away from the
people, which would be garbage nobody labelled.
The garbage dataset's training side is read (`split_side`: held-out photos never), then smoke-fire,
which holds no garbage classes, and with `--aerial` the vendors-aerial training side too (people seen from
above, whose labelled vendors the windows must not touch). vtest.avi is never read: it stays an honest check.

    .venv/bin/python scripts/mine_people_negatives.py OUT_FOLDER [--shared ../shared] [--garbage-model M] [--aerial]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from agent.config import resources
from agent.tools.evaluate import read_labels
from agent.tools.training import split_side
from detectors import Detections, Detector
from detectors.loading import load_detector
from detectors.vetoes import coverage

CONTEXT = 3.0  # the window's side, in person heights (or widths, the larger)
MIN_SIDE_PX = 96  # smaller windows would be upscaled blur
PERSON_SCORE = 0.4
ON_PEOPLE = 0.3  # a garbage box this much covered by a person is the mistake we want to teach away


def _person_boxes(found: Detections, min_score: float = 0.0) -> np.ndarray:
    is_person = np.array([n == "person" for n in found.names()], bool).reshape(-1)
    return found.xyxy[is_person & (found.confidence >= min_score)]


def people_windows(image: np.ndarray, general: Detector, labels: np.ndarray) -> list[np.ndarray]:
    """Square crops around the persons in `image` that touch none of `labels`; one per group."""
    people = _person_boxes(general.detect(image), PERSON_SCORE)
    height, width = image.shape[:2]
    used = np.zeros(len(people), bool)
    crops = []
    for i in np.argsort(-(people[:, 2] - people[:, 0]) * (people[:, 3] - people[:, 1])):
        if used[i]:
            continue
        x0, y0, x1, y1 = people[i]
        side = min(max(x1 - x0, y1 - y0) * CONTEXT, width, height)
        if side < MIN_SIDE_PX:
            continue
        left = int(np.clip((x0 + x1) / 2 - side / 2, 0, width - side))
        top = int(np.clip((y0 + y1) / 2 - side / 2, 0, height - side))
        window = np.array([[left, top, left + side, top + side]], np.float32)
        if len(labels) and coverage(labels, window).max() > 0:
            continue
        used |= coverage(people, window)[:, 0] >= 1.0
        crops.append(image[top : int(top + side), left : int(left + side)])
    return crops


def looks_like_unlabelled_garbage(crop: np.ndarray, garbage: Detector, general: Detector) -> bool:
    """The garbage model sees garbage or overflow in `crop` away from its people."""
    found = garbage.detect(crop)
    keep = np.array([n != "garbage_bin" for n in found.names()], bool).reshape(-1)
    boxes = found.xyxy[keep]
    if not len(boxes):
        return False
    persons = _person_boxes(general.detect(crop))
    covered = coverage(boxes, persons).max(axis=1) if len(persons) else np.zeros(len(boxes))
    return bool((covered < ON_PEOPLE).any())


def _training_side(images: Path) -> list[Path]:
    """The images of a folder that `split_side` puts on the training side (held-out photos never)."""
    return [path for path in sorted(images.iterdir()) if split_side(path.name) == "train"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the crops (people_*.jpg)")
    parser.add_argument("--shared", type=Path, default=Path("../shared"), help="the shared data folder")
    parser.add_argument(
        "--garbage-model", type=Path, default=resources.builtin("garbage"), help="the model whose garbage is dropped"
    )
    parser.add_argument(
        "--aerial", action="store_true", help="also the vendors-aerial training side: people seen from above (R10)"
    )
    args = parser.parse_args()
    general = load_detector(resources.builtin("general"), 0.3, 0.5, threads=2)
    loose = dict.fromkeys(("garbage", "garbage_bin", "overflow"), 0.25)
    garbage = load_detector(args.garbage_model, 0.25, 0.5, threads=2, thresholds=loose)
    datasets = args.shared / "datasets"
    sources = [("cn", p) for p in _training_side(datasets / "garbage-street-cn/train/images")]
    sources += [("smoke", p) for p in sorted(datasets.glob("smoke-fire/*/images/*"))]
    if args.aerial:
        sources += [("aerial", p) for p in _training_side(datasets / "vendors-aerial/train/images")]
    args.out.mkdir(parents=True, exist_ok=True)
    kept = dropped = 0
    for kind, path in sources:
        image = cv2.imread(str(path))
        if image is None:
            print(f"skipped {path}: not an image")
            continue
        labels = np.zeros((0, 4), np.float32)
        if kind in ("cn", "aerial"):
            labels, _ = read_labels(path.parent.parent / "labels" / f"{path.stem}.txt", image.shape[1], image.shape[0])
        for k, window in enumerate(people_windows(image, general, labels)):
            jpeg = cv2.imencode(".jpg", window)[1]  # checked as training will read it
            if looks_like_unlabelled_garbage(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), garbage, general):
                dropped += 1
                continue
            (args.out / f"people_{kind}_{path.stem}_{k}.jpg").write_bytes(jpeg.tobytes())
            kept += 1
    print(f"{kept} crops of people written to {args.out}; {dropped} dropped (garbage nobody labelled, maybe)")


if __name__ == "__main__":
    main()

"""`edge-agent train-crop-check`: the crop classifier that takes a second look at a detector's boxes of
one class (detectors/crop_check.py), trained on crops of a split's training side only (needs the `train`
extra).

Its examples: the labelled boxes of the checked class (positive: an overflowing bin), the labelled boxes
of the look-alike classes (negative: a bin that is only a bin) and, with `mistakes_of`, the detector's
own boxes of the checked class that match no label (negative: the mistakes the check is there to catch).
The classifier's validation side is made of whole source blocks of the training side, so the held-out
side of the split stays unseen for the measurements that choose and report the check.
"""

from __future__ import annotations

import json
import logging
import shutil
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from agent.tools.calibrate import write_metadata
from agent.tools.evaluate import read_labels
from agent.tools.training import IMAGE_SUFFIXES, source_group
from detectors.crop_check import METADATA_KEY, square_crop
from detectors.metrics import box_iou

log = logging.getLogger(__name__)

CROP_PX = 128  # crops are stored at this side; training resizes them to its imgsz
MISTAKE_IOU = 0.3  # a detector box overlapping no label of the checked class more than this is a mistake
VAL_EVERY = 6  # one source block in this many goes to the classifier's validation side


@dataclass(frozen=True)
class CropClasses:
    """Which detection classes become which classifier class."""

    checked: str = "overflow"
    negatives: tuple[str, ...] = ("garbage_bin",)
    positive: str = "overflowing"
    negative: str = "clean"


def crop_dataset(
    data_yaml: Path, out_dir: Path, classes: CropClasses, mistakes_of: Path | None = None, min_score: float = 0.25
) -> Counter:
    """An ultralytics classification tree (out_dir/{train,val}/{positive,negative}/*.jpg) from the TRAINING
    side of a split (its data.yaml's `train`), and the count of crops per (side, class, origin)."""
    import yaml

    spec = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    names = [spec["names"][i] for i in sorted(spec["names"])] if isinstance(spec["names"], dict) else spec["names"]
    for name in (classes.checked, *classes.negatives):
        if name not in names:
            raise ValueError(f"{data_yaml}: no class {name!r}; its classes are {names}")
    checked, negative_ids = names.index(classes.checked), [names.index(n) for n in classes.negatives]
    detector = None
    if mistakes_of is not None:
        from detectors.onnx_yolo import OnnxYoloDetector

        detector = OnnxYoloDetector(mistakes_of, min_score=min_score, model_thresholds=False)
        checked_found = detector.class_names.index(classes.checked)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    counts: Counter = Counter()
    images = training_images(data_yaml, spec)
    for path in tqdm(images, desc="crops", unit="img", disable=None):
        image = cv2.imread(str(path))
        if image is None:
            log.warning("%s: unreadable image, skipped", path)
            continue
        side = classifier_side(path.name)
        xyxy, cls = read_labels(path.parent.parent / "labels" / (path.stem + ".txt"), image.shape[1], image.shape[0])
        crops = [(classes.positive, box, "label") for box in xyxy[cls == checked]]
        crops += [(classes.negative, box, "label") for box in xyxy[np.isin(cls, negative_ids)]]
        if detector is not None:
            found = detector.detect(image)
            boxes, labelled = found.xyxy[found.class_id == checked_found], xyxy[cls == checked]
            wrong = np.ones(len(boxes), bool) if not len(labelled) else box_iou(boxes, labelled).max(1) < MISTAKE_IOU
            crops += [(classes.negative, box, "mistake") for box in boxes[wrong]]
        for i, (name, box, origin) in enumerate(crops):
            folder = out_dir / side / name
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{path.stem}-{i}-{origin}.jpg"), square_crop(image, box, CROP_PX))
            counts[(side, name, origin)] += 1
    return counts


def training_images(data_yaml: Path, spec: dict) -> list[Path]:
    """The training side's images: a folder, or the list a class-balanced split writes (each image once)."""
    root = Path(spec.get("path") or data_yaml.parent)
    train = (root / str(spec["train"])).resolve()
    if train.is_dir():
        return sorted(p for p in train.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if train.suffix == ".txt" and train.is_file():
        return sorted({Path(line) for line in train.read_text(encoding="utf-8").split()})
    raise ValueError(f"{data_yaml}: train: {spec['train']!r} is neither a folder nor a list of images")


def classifier_side(image_name: str) -> str:
    """ "val" for one source block in VAL_EVERY (hashed, the same on every machine), else "train": a source's
    copies land on one side, as in the detector's split."""
    return "val" if zlib.crc32(b"crop-check:" + source_group(image_name, 40).encode()) % VAL_EVERY == 0 else "train"


def train_classifier(crops_dir: Path, out_dir: Path, imgsz: int = 96, epochs: int = 12, seed: int = 0) -> Path:
    """A YOLOv8n classifier from its YAML (no hub download); the best weights' path."""
    from ultralytics import YOLO

    YOLO("yolov8n-cls.yaml").train(
        data=str(crops_dir),
        imgsz=imgsz,
        epochs=epochs,
        batch=64,
        workers=1,
        device="cpu",
        pretrained=False,
        project=str(out_dir.resolve()),
        name="train",
        exist_ok=True,
        seed=seed,
        deterministic=True,
        plots=False,  # plotting fetches a font from the internet
        amp=False,  # the AMP check downloads a model
        scale=0.2,  # random crops keep at least 80 % of the crop: the garbage at the edge is the evidence
        erasing=0.2,
    )
    return out_dir / "train" / "weights" / "best.pt"


def export_classifier(weights: Path, imgsz: int, out_path: Path) -> Path:
    """A fixed-size ONNX classifier for onnxruntime (fp32: a 96-pixel crop costs about a millisecond)."""
    from ultralytics import YOLO

    exported = YOLO(str(weights)).export(format="onnx", imgsz=imgsz, simplify=True, dynamic=False)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    Path(exported).replace(out_path)
    return out_path


def attach(detection_model: Path, classifier: Path, classes: CropClasses, weight: float, out_path: Path) -> Path:
    """A copy of the detection model whose metadata names the check, so the agent runs it by default;
        the classifier must sit beside it (the metadata names a bare file name). Calibrate the copy afterwards:
    the check changes the checked class's scores, so its threshold must be chosen anew."""
    spec = {"model": classifier.name, "class": classes.checked, "positive": classes.positive, "weight": weight}
    return write_metadata(detection_model, out_path, METADATA_KEY, json.dumps(spec))


__all__ = ["CropClasses", "attach", "crop_dataset", "export_classifier", "train_classifier"]

"""`edge-agent eval`: accuracy of an ONNX model on held-out labelled images, through the same
onnxruntime path the agent runs, and false positives per 1000 frames on footage without targets.
With `veto_with`, a second (general) model runs on every image and its cars, people and benches veto
the boxes they mostly cover (detectors/vetoes.py), so the effect of the veto is measured the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from detectors import Detections, Detector
from detectors.loading import load_detector
from detectors.metrics import ClassResult, Evaluation
from detectors.vetoes import apply_vetoes
from streams.video import VideoSource

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
MAP_CONF = 0.001  # mAP needs the whole precision-recall curve; P and R are reported at --conf


@dataclass
class EvalReport:
    model: str
    images: int
    operating_conf: float
    ms_per_image: float
    classes: list[ClassResult]
    confusion: list[list[int]]

    @property
    def map50(self) -> float:
        return float(np.mean([c.ap50 for c in self.classes]))

    @property
    def map50_95(self) -> float:
        return float(np.mean([c.ap50_95 for c in self.classes]))


def images_folder(data: Path) -> Path:
    """A data.yaml's validation images, or a dataset folder's images/."""
    if data.suffix in (".yaml", ".yml"):
        spec = yaml.safe_load(data.read_text())
        root = Path(spec.get("path") or data.parent)
        return (root / spec["val"]).resolve()
    return data / "images" if (data / "images").is_dir() else data


def read_labels(label_file: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLO labels (class cx cy w h, normalised) as pixel xyxy boxes and class ids."""
    if not label_file.exists():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    rows = np.array([line.split()[:5] for line in label_file.read_text().splitlines() if line.strip()], np.float64)
    if not len(rows):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return xyxy, rows[:, 0].astype(np.int64)


def _detect(detector: Detector, veto: Detector | None, image: np.ndarray) -> Detections:
    found = detector.detect(image)
    return found if veto is None else apply_vetoes(found, veto.detect(image))


def evaluate(model: Path, data: Path, conf: float, threads: int = 1, veto_with: Path | None = None) -> EvalReport:
    detector = load_detector(model, MAP_CONF, 0.5, threads)
    veto = None if veto_with is None else load_detector(veto_with, conf, 0.5, threads)
    evaluation = Evaluation(detector.class_names, operating_conf=conf)
    folder = images_folder(data)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"{folder}: no images")
    labels_dir = folder.parent / "labels"
    inference_s = 0.0
    for image_path in tqdm(images, desc="eval", unit="img", disable=None):
        image = cv2.imread(str(image_path))
        if image is None:
            continue
        started = time.perf_counter()
        found = _detect(detector, veto, image)
        inference_s += time.perf_counter() - started
        true_xyxy, true_cls = read_labels(labels_dir / (image_path.stem + ".txt"), image.shape[1], image.shape[0])
        evaluation.add(found.xyxy, found.confidence, found.class_id, true_xyxy, true_cls)
    return EvalReport(
        model=str(model),
        images=len(images),
        operating_conf=conf,
        ms_per_image=1000 * inference_s / len(images),
        classes=evaluation.results(),
        confusion=evaluation.confusion.tolist(),
    )


def false_positives_per_1000(
    model: Path, video: Path, conf: float, threads: int = 1, veto_with: Path | None = None
) -> tuple[int, int, dict]:
    """Run on every frame of footage that shows no target: (frames, frames with a box, boxes per class)."""
    detector = load_detector(model, conf, 0.5, threads)
    veto = None if veto_with is None else load_detector(veto_with, conf, 0.5, threads)
    source = VideoSource("negatives", str(video), sample_fps=1000)
    frames = flagged = 0
    per_class = dict.fromkeys(detector.class_names, 0)
    for frame in tqdm(source.frames(), desc=video.name, unit="frame", disable=None):
        found = _detect(detector, veto, frame.image)
        frames += 1
        flagged += bool(len(found))
        for name in found.names():
            per_class[name] += 1
    return frames, flagged, per_class


def print_report(report: EvalReport) -> None:
    timing = f"{report.ms_per_image:.1f} ms per image (letterbox, inference, NMS)"
    print(f"model {report.model}: {report.images} images, {timing}")
    print(f"{'class':<14} {'instances':>9} {'P@conf':>7} {'R@conf':>7} {'mAP50':>6} {'mAP50-95':>9}")
    for c in report.classes:
        print(f"{c.name:<14} {c.instances:>9} {c.precision:>7.3f} {c.recall:>7.3f} {c.ap50:>6.3f} {c.ap50_95:>9.3f}")
    print(
        f"{'all':<14} {sum(c.instances for c in report.classes):>9} {'':>7} {'':>7} "
        f"{report.map50:>6.3f} {report.map50_95:>9.3f}"
    )
    names = [c.name for c in report.classes] + ["background"]
    print(f"\nconfusion at conf {report.operating_conf} (rows predicted, columns labelled, IoU 0.5):")
    print(" " * 14 + "".join(f"{n[:11]:>12}" for n in names))
    for name, row in zip(names, report.confusion, strict=True):
        print(f"{name[:13]:<14}" + "".join(f"{v:>12}" for v in row))


def report_json(report: EvalReport) -> str:
    data = asdict(report) | {"map50": report.map50, "map50_95": report.map50_95}
    return json.dumps(data, indent=2)

"""`edge-agent eval`: accuracy of an ONNX model on held-out labelled images, through the same
onnxruntime path the agent runs, and false positives per 1000 frames on footage without targets.
P, R and the confusion are taken at the model's per-class thresholds (its metadata) unless a single
`conf` overrides them all; classes without one use DEFAULT_CONF. With `veto_with`, a second (general)
model runs on every image and its cars, people and benches veto the boxes they mostly cover
(detectors/vetoes.py), so the veto's effect is measured the same way. A crop check that the model names
(detectors/crop_check.py) runs as in the agent unless `crop_check` is False, to measure what it adds.
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
from detectors.crop_check import with_own_crop_check
from detectors.loading import load_detector
from detectors.metrics import ClassResult, Evaluation
from detectors.onnx_yolo import OnnxYoloDetector
from detectors.vetoes import apply_vetoes
from streams.video import VideoSource

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
MAP_CONF = 0.001  # mAP needs the whole precision-recall curve; P and R are reported at the thresholds
DEFAULT_CONF = 0.30  # the operating threshold of a class the model has none for (the agent's min_score)


@dataclass
class EvalReport:
    model: str
    images: int
    operating_conf: float
    thresholds: dict[str, str]  # class -> "0.42 (model)" / "0.30 (--conf)": where P and R were taken
    ms_per_image: float  # the detector alone: letterbox, inference, NMS
    check_ms_per_image: float  # the crop check, on every candidate over the mAP floor (the agent's is higher)
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


@dataclass
class LabelledResult:
    """One labelled image's detections (every box above MAP_CONF) and its labels, in its pixels."""

    image: Path
    found: Detections
    true_xyxy: np.ndarray
    true_cls: np.ndarray


def labelled_images(data: Path) -> list[Path]:
    folder = images_folder(data)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"{folder}: no images")
    return images


def detect_labelled(
    detector: Detector, images: list[Path], veto: Detector | None = None
) -> tuple[list[LabelledResult], float]:
    """Run the detector (and the veto model, if any) on each readable image beside its labels; also the
    seconds spent detecting."""
    results, inference_s = [], 0.0
    for image_path in tqdm(images, desc="eval", unit="img", disable=None):
        image = cv2.imread(str(image_path))
        if image is None:
            continue
        started = time.perf_counter()
        found = _detect(detector, veto, image)
        inference_s += time.perf_counter() - started
        label = image_path.parent.parent / "labels" / (image_path.stem + ".txt")
        true_xyxy, true_cls = read_labels(label, image.shape[1], image.shape[0])
        results.append(LabelledResult(image_path, found, true_xyxy, true_cls))
    return results, inference_s


def tally(class_names: tuple[str, ...], results: list[LabelledResult], thresholds: dict[str, float]) -> Evaluation:
    """The metrics of `results` with P and R at `thresholds` (DEFAULT_CONF for a class without one)."""
    evaluation = Evaluation(class_names, operating_conf=DEFAULT_CONF, class_conf=thresholds)
    for r in results:
        evaluation.add(r.found.xyxy, r.found.confidence, r.found.class_id, r.true_xyxy, r.true_cls)
    return evaluation


def _detect(detector: Detector, veto: Detector | None, image: np.ndarray) -> Detections:
    found = detector.detect(image)
    return found if veto is None else apply_vetoes(found, veto.detect(image))


def _veto_model(veto_with: Path | None, conf: float | None, threads: int) -> Detector | None:
    """The general model whose boxes veto, at `conf` (DEFAULT_CONF without one)."""
    return None if veto_with is None else load_detector(veto_with, DEFAULT_CONF if conf is None else conf, 0.5, threads)


def evaluate(
    model: Path,
    data: Path,
    conf: float | None = None,
    threads: int = 1,
    veto_with: Path | None = None,
    crop_check: bool = True,
) -> EvalReport:
    """`conf` None: P and R at the model's own per-class thresholds; a number: at it for every class."""
    detector = OnnxYoloDetector(model, min_score=MAP_CONF, threads=threads, model_thresholds=False)
    names = detector.class_names
    images = labelled_images(data)
    checked = with_own_crop_check(detector, model, threads) if crop_check else detector
    results, inference_s = detect_labelled(checked, images, _veto_model(veto_with, conf, threads))
    check_s = getattr(checked, "stage_s", {}).get("crop_check", 0.0)
    if conf is None:
        used = {n: detector.stored_thresholds.get(n, DEFAULT_CONF) for n in names}
        origin = {n: "model" if n in detector.stored_thresholds else "default" for n in names}
    else:
        used, origin = dict.fromkeys(names, conf), dict.fromkeys(names, "--conf")
    evaluation = tally(names, results, used)
    return EvalReport(
        model=str(model),
        images=len(images),
        operating_conf=DEFAULT_CONF if conf is None else conf,
        thresholds={n: f"{used[n]:.3f} ({origin[n]})" for n in names},
        ms_per_image=1000 * (inference_s - check_s) / len(images),
        check_ms_per_image=1000 * check_s / len(images),
        classes=evaluation.results(),
        confusion=evaluation.confusion.tolist(),
    )


def false_positives_per_1000(
    model: Path,
    video: Path,
    conf: float | None = None,
    threads: int = 1,
    veto_with: Path | None = None,
    crop_check: bool = True,
) -> tuple[int, int, dict]:
    """Run on every frame of footage that shows no target: (frames, frames with a box, boxes per class);
    at the model's thresholds, or at `conf` for every class."""
    detector: Detector = OnnxYoloDetector(
        model, min_score=DEFAULT_CONF if conf is None else conf, threads=threads, model_thresholds=conf is None
    )
    if crop_check:
        detector = with_own_crop_check(detector, model, threads)
    veto = _veto_model(veto_with, conf, threads)
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
    if report.check_ms_per_image:
        timing += (
            f", and {report.check_ms_per_image:.1f} of crop check (every overflow candidate over the mAP floor "
            f"of {MAP_CONF:g}; the agent checks only those that can reach the threshold)"
        )
    print(f"model {report.model}: {report.images} images, {timing}")
    print("P and R at thresholds: " + ", ".join(f"{n} {t}" for n, t in report.thresholds.items()))
    print(f"{'class':<14} {'instances':>9} {'P@conf':>7} {'R@conf':>7} {'mAP50':>6} {'mAP50-95':>9}")
    for c in report.classes:
        print(f"{c.name:<14} {c.instances:>9} {c.precision:>7.3f} {c.recall:>7.3f} {c.ap50:>6.3f} {c.ap50_95:>9.3f}")
    print(
        f"{'all':<14} {sum(c.instances for c in report.classes):>9} {'':>7} {'':>7} "
        f"{report.map50:>6.3f} {report.map50_95:>9.3f}"
    )
    names = [c.name for c in report.classes] + ["background"]
    print("\nconfusion at those thresholds (rows predicted, columns labelled, IoU 0.5):")
    print(" " * 14 + "".join(f"{n[:11]:>12}" for n in names))
    for name, row in zip(names, report.confusion, strict=True):
        print(f"{name[:13]:<14}" + "".join(f"{v:>12}" for v in row))


def report_json(report: EvalReport) -> str:
    data = asdict(report) | {"map50": report.map50, "map50_95": report.map50_95}
    return json.dumps(data, indent=2)

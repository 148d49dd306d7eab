"""`edge-agent calibrate`: per class, the lowest score whose precision on held-out images reaches a target.

Thresholds chosen and reported on the same images flatter them, so the report adds a 2-fold check by
source: the images are split by source block (agent.tools.training.source_group) into halves A and B,
thresholds are chosen on A and measured on B, and the reverse. `write_thresholds` stores them in a copy
of the model's ONNX metadata (detectors.thresholds), where the detector reads them by default.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.tools.evaluate import MAP_CONF, LabelledResult, detect_labelled, labelled_images, tally
from agent.tools.training import source_group
from detectors.crop_check import spec_from_metadata, with_own_crop_check
from detectors.input_shapes import METADATA_KEY as OTHER_INPUTS_KEY
from detectors.metrics import precision_recall_at, threshold_for_precision
from detectors.onnx_yolo import OnnxYoloDetector
from detectors.thresholds import THRESHOLDS_KEY


@dataclass(frozen=True)
class ClassCalibration:
    """One class: the threshold (None: the target is out of reach) and the P and R measured at it."""

    name: str
    instances: int
    threshold: float | None
    precision: float
    recall: float
    boxes: int  # predictions at or over the threshold


@dataclass(frozen=True)
class FoldCheck:
    """Thresholds chosen on one half of the images, measured on the other."""

    chosen_on: str
    measured_on: str
    classes: list[ClassCalibration]


@dataclass(frozen=True)
class CalibrationReport:
    model: str
    targets: dict[str, float]  # per class; classes not named take the default under the key ""
    images: int
    classes: list[ClassCalibration]  # chosen and measured on all the images (flattering)
    folds: list[FoldCheck]

    @property
    def thresholds(self) -> dict[str, float]:
        """The thresholds to store: classes whose target is out of reach get none (they keep min_score)."""
        return {c.name: c.threshold for c in self.classes if c.threshold is not None}  # exact: a box sits on it


def calibrate(model: Path, data: Path, target: float | dict[str, float], threads: int = 1) -> CalibrationReport:
    """Run the model once over `data`'s labelled images, then choose and cross-check the thresholds.

    `target` is one precision for every class, or per class ({"overflow": 0.9, "": 0.8}: "" for the rest),
    because a case type that must be trusted (overflow) and one that must be found (garbage) differ."""
    targets = {"": target} if isinstance(target, float) else dict(target)
    detector = with_own_crop_check(  # the thresholds are chosen for the scores the agent will see
        OnnxYoloDetector(model, min_score=MAP_CONF, threads=threads, model_thresholds=False), model, threads
    )
    results, _ = detect_labelled(detector, labelled_images(data))
    names = detector.class_names
    half_a, half_b = source_halves(results)
    folds = []
    for chosen_on, measured_on, train, test in (("A", "B", half_a, half_b), ("B", "A", half_b, half_a)):
        chosen = {c.name: c.threshold for c in choose(names, train, targets)}
        folds.append(FoldCheck(chosen_on, measured_on, measure(names, test, chosen)))
    return CalibrationReport(str(model), targets, len(results), choose(names, results, targets), folds)


def choose(names: tuple[str, ...], results: list[LabelledResult], targets: dict[str, float]) -> list[ClassCalibration]:
    """Per class the lowest threshold reaching its target precision on `results`, with its P and R there."""
    evaluation = tally(names, results, {})
    out = []
    for c, name in enumerate(names):
        scores, tp, instances = evaluation.curve(c)
        target = targets.get(name, targets.get("", 0.90))
        out.append(_at(name, scores, tp, instances, threshold_for_precision(scores, tp, target)))
    return out


def measure(
    names: tuple[str, ...], results: list[LabelledResult], thresholds: dict[str, float | None]
) -> list[ClassCalibration]:
    """P and R of `results` at given thresholds (a class with None is reported with zeros)."""
    evaluation = tally(names, results, {})
    out = []
    for c, name in enumerate(names):
        scores, tp, instances = evaluation.curve(c)
        out.append(_at(name, scores, tp, instances, thresholds.get(name)))
    return out


def _at(name: str, scores: np.ndarray, tp: np.ndarray, instances: int, threshold: float | None) -> ClassCalibration:
    if threshold is None:
        return ClassCalibration(name, instances, None, 0.0, 0.0, 0)
    precision, recall = precision_recall_at(scores, tp, instances, threshold)
    return ClassCalibration(name, instances, threshold, precision, recall, int((scores >= threshold).sum()))


def source_halves(results: list[LabelledResult]) -> tuple[list[LabelledResult], list[LabelledResult]]:
    """Halves A and B with no source block in both: the blocks in name order, alternately to A and B."""
    groups = sorted({source_group(r.image.name, 40) for r in results})
    in_a = set(groups[::2])
    half_a = [r for r in results if source_group(r.image.name, 40) in in_a]
    return half_a, [r for r in results if source_group(r.image.name, 40) not in in_a]


def write_thresholds(model: Path, out: Path, thresholds: dict[str, float]) -> Path:
    """A copy of `model` (fp32 or int8 alike) with `thresholds` in its metadata; the original is untouched."""
    return write_metadata(model, out, THRESHOLDS_KEY, json.dumps(thresholds, sort_keys=True))


def write_metadata(model: Path, out: Path, key: str, value: str) -> Path:
    """A copy of `model` with metadata `key` set to `value` (the rest kept); the original is untouched. The
    crop check's classifier that the copy names is copied beside it too, so the copy runs where it lies."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError("writing ONNX metadata needs the onnx package: pip install -e '.[test]'") from None
    if out.resolve() == model.resolve():
        raise ValueError(f"{out}: give a new file; the model itself is left as it is")
    proto = onnx.load(str(model))
    kept = [p for p in proto.metadata_props if p.key != key]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=key, value=value)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    spec = spec_from_metadata(model, {p.key: p.value for p in proto.metadata_props})
    if spec is not None and spec.model.is_file() and not (out.parent / spec.model.name).exists():
        shutil.copy2(spec.model, out.parent / spec.model.name)
    return out


def name_other_inputs(model: Path, others: list[Path], out: Path) -> Path:
    """A copy of `model` that names `others` (exports of the same weights at other input shapes, in `out`'s
    folder) in its metadata, so the agent sends each frame to the shape that shows it largest
    (detectors/input_shapes.py). Each of them keeps its own thresholds and crop check."""
    for other in others:
        if other.parent.resolve() != out.parent.resolve() or not other.is_file():
            raise ValueError(f"{other}: the other input shapes must be files beside {out}")
    return write_metadata(model, out, OTHER_INPUTS_KEY, json.dumps([other.name for other in others]))


def print_calibration(report: CalibrationReport) -> None:
    wanted = ", ".join(f"{name or 'others'} {value:.2f}" for name, value in report.targets.items())
    print(f"model {report.model}: {report.images} images, target precision {wanted}")
    _table(f"chosen and measured on all {report.images} images (flatters: same images)", report.classes)
    for fold in report.folds:
        _table(f"cross-check: chosen on half {fold.chosen_on}, measured on half {fold.measured_on}", fold.classes)


def _table(title: str, classes: list[ClassCalibration]) -> None:
    print(f"\n{title}")
    print(f"{'class':<14} {'instances':>9} {'threshold':>9} {'boxes':>6} {'P':>6} {'R':>6}")
    for c in classes:
        if c.threshold is None:
            print(f"{c.name:<14} {c.instances:>9} {'-':>9} {'-':>6} {'-':>6} {'-':>6}  target not reached")
        elif not c.boxes:
            print(f"{c.name:<14} {c.instances:>9} {c.threshold:>9.3f} {0:>6} {'-':>6} {0:>6.3f}  no box at it")
        else:
            print(
                f"{c.name:<14} {c.instances:>9} {c.threshold:>9.3f} {c.boxes:>6} {c.precision:>6.3f} {c.recall:>6.3f}"
            )

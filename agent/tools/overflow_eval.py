"""Which evidence says "overflowing bin" best, per box, on held-out photos (docs/overflow.md).

Three options against the labelled `overflow` boxes (IoU 0.5): (a) the model's overflow boxes, (b) boxes
composed from its garbage and bin boxes (agent.cases.overflow.garbage_at_bin), (c) either. Each option's
operating score is chosen for a target precision on one half of the images (split by source block) and
measured on the other half, both ways, and the two measured halves are pooled, so that no number is
measured on the images its threshold was chosen on.

    python -m agent.tools.overflow_eval MODEL --data data.yaml [--precision 0.90] [--floor 0.30]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.cases.overflow import garbage_at_bin, join
from agent.config.rules import OverflowConfig
from agent.tools.calibrate import source_halves
from agent.tools.evaluate import MAP_CONF, LabelledResult, detect_labelled, labelled_images
from detectors import Detections
from detectors.metrics import Evaluation, threshold_for_precision
from detectors.onnx_yolo import OnnxYoloDetector

OPTIONS = ("model_overflow", "garbage_at_bin", "either")


@dataclass
class Tally:
    """Pooled counts of one option over the measured halves."""

    predicted: int = 0
    correct: int = 0
    instances: int = 0
    thresholds: list[float | None] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.correct / max(self.predicted, 1)

    @property
    def recall(self) -> float:
        return self.correct / max(self.instances, 1)


def candidates(result: LabelledResult, ids: dict[str, int], config: OverflowConfig, floor: float) -> dict:
    """Per option, the image's overflow boxes before an operating score: (a) the model's, (b) composed
    from the garbage and bin boxes scoring at least `floor` (what the agent's min_score passes)."""
    found = result.found
    model = found[found.class_id == ids["overflow"]]
    inputs = found[found.confidence >= floor]
    garbage = np.array([ids[n] for n in config.garbage], np.int32)
    bins = np.array([ids[n] for n in config.bins], np.int32)
    return {"model_overflow": model, "garbage_at_bin": garbage_at_bin(inputs, garbage, bins, config.band)}


def choose(boxes: list[Detections], results: list[LabelledResult], overflow_id: int, target: float) -> float | None:
    """The lowest score of these boxes whose precision against the overflow labels reaches `target`."""
    evaluation = _matched(boxes, results, overflow_id)
    scores, tp, _ = evaluation.curve(0)
    return threshold_for_precision(scores, tp, target)


def _matched(boxes: list[Detections], results: list[LabelledResult], overflow_id: int) -> Evaluation:
    evaluation = Evaluation(("overflow",))
    for found, r in zip(boxes, results, strict=True):
        labelled = r.true_xyxy[r.true_cls == overflow_id]
        evaluation.add(
            found.xyxy, found.confidence, np.zeros(len(found), np.int64), labelled, np.zeros(len(labelled), np.int64)
        )
    return evaluation


def compare(
    results: list[LabelledResult], class_names: tuple[str, ...], target: float, floor: float, config: OverflowConfig
) -> dict[str, Tally]:
    """The three options, each chosen on one half and measured on the other, pooled over both ways."""
    ids = {n: i for i, n in enumerate(class_names)}
    tallies = {o: Tally() for o in OPTIONS}
    half_a, half_b = source_halves(results)
    for chosen_on, measured_on in ((half_a, half_b), (half_b, half_a)):
        chosen_boxes = [candidates(r, ids, config, floor) for r in chosen_on]
        measured_boxes = [candidates(r, ids, config, floor) for r in measured_on]
        at: dict[str, float | None] = {}
        for option in ("model_overflow", "garbage_at_bin"):
            at[option] = choose([c[option] for c in chosen_boxes], chosen_on, ids["overflow"], target)
        kept = [{o: _above(c[o], at[o]) for o in at} for c in measured_boxes]
        per_option = {
            "model_overflow": [k["model_overflow"] for k in kept],
            "garbage_at_bin": [k["garbage_at_bin"] for k in kept],
            "either": [join(k["model_overflow"], k["garbage_at_bin"], config.same_iou) for k in kept],
        }
        for option, boxes in per_option.items():
            scores, tp, instances = _matched(boxes, measured_on, ids["overflow"]).curve(0)
            tally = tallies[option]
            tally.predicted += len(scores)
            tally.correct += int(tp.sum())
            tally.instances += instances
            tally.thresholds.append(at.get(option))
    return tallies


def _above(found: Detections, threshold: float | None) -> Detections:
    return found[found.confidence >= threshold] if threshold is not None else found[found.confidence > 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--precision", type=float, default=0.90)
    parser.add_argument("--floor", type=float, default=0.30, help="garbage and bin boxes below it are not composed")
    parser.add_argument("--band", type=float, default=OverflowConfig().band)
    args = parser.parse_args(argv)
    detector = OnnxYoloDetector(args.model, min_score=MAP_CONF, model_thresholds=False)
    results, _ = detect_labelled(detector, labelled_images(args.data))
    config = OverflowConfig(band=args.band)
    tallies = compare(results, detector.class_names, args.precision, args.floor, config)
    print(f"{len(results)} images; target precision {args.precision}, inputs at {args.floor}, band {args.band}")
    print(f"{'option':<16} {'thresholds (A->B, B->A)':>24} {'boxes':>6} {'right':>6} {'labels':>6} {'P':>6} {'R':>6}")
    for option, t in tallies.items():
        shown = ", ".join("-" if v is None else f"{v:.3f}" for v in t.thresholds) if option != "either" else "(a)+(b)"
        print(
            f"{option:<16} {shown:>24} {t.predicted:>6} {t.correct:>6} {t.instances:>6} "
            f"{t.precision:>6.3f} {t.recall:>6.3f}"
        )
    return 0


__all__ = ["compare", "main"]

if __name__ == "__main__":
    raise SystemExit(main())

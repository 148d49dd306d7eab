"""Which held-out photos make good scenario segments: run the detector on them as a scenario shows them.

Every photo on the held-out side of `agent.tools.training.split_by_source` is rendered at the scenario size
(640x480) with the scenarios' camera shake, RENDERINGS times, and run through the model at its
threshold. Printed per photo: its labelled classes and, per class, the LOWEST best score over the
renderings (0: not found in at least one rendering). A good pile is labelled `garbage` only with a
high lowest `garbage` score and no `overflow` box; a good "nothing" photo has no case label and no
box at all. tests/agent/tools/test_scenarios.py and configs/scenarios/two-passes.yaml use photos picked so.

    python scripts/pick_scenario_photos.py ../shared/datasets/garbage-street-cn/train [builtin:garbage]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from agent.config.resources import builtin
from agent.tools.evaluate import read_labels
from agent.tools.scenario import shake
from agent.tools.training import split_side
from detectors.onnx_yolo import OnnxYoloDetector

RENDERINGS, SIZE, JITTER_PX, JITTER_SCALE = 6, (640, 480), 3.0, 0.02


def main(dataset: Path, model: str) -> None:
    path = builtin(model.removeprefix("builtin:")) if model.startswith("builtin:") else Path(model)
    detector = OnnxYoloDetector(path, 0.30)
    rng = np.random.default_rng(0)
    print("photo  labels  lowest best score per class:", ", ".join(detector.class_names))
    for image_path in sorted((dataset / "images").iterdir()):
        if split_side(image_path.name) != "val":
            continue
        image = cv2.resize(cv2.imread(str(image_path)), SIZE, interpolation=cv2.INTER_AREA)
        _, labelled = read_labels(dataset / "labels" / (image_path.stem + ".txt"), *SIZE)
        lowest = np.ones(len(detector.class_names))
        for _ in range(RENDERINGS):
            found = detector.detect(shake(image, rng, JITTER_PX, JITTER_SCALE))
            best = [found.confidence[found.class_id == c].max(initial=0.0) for c in range(len(lowest))]
            lowest = np.minimum(lowest, best)
        scores = " ".join(f"{s:.2f}" for s in lowest)
        print(f"{image_path.name.split('_')[0]}  {sorted(set(labelled.tolist()))}  {scores}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "builtin:garbage")

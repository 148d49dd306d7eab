"""Several detectors through main's per-frame paths (the merge of multimodel with main): the overflow
evidence composes each detector's own boxes by its own class names, `on_detect` times every detector
under its model's name, `/metrics`' class counts see every detector's boxes, and `privacy.persons`
masks person boxes from any detector that ran on the evidence frame. Real pipeline on the bundled
sample clip; the detectors are stubs that find fixed boxes, so what is under test is the wiring."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.config import load_config
from agent.config.resources import builtin
from agent.detector_setup import LoadedDetector
from agent.pipeline import Pipeline
from detectors import Detections
from protocol.signing import Signer
from uploader import Outbox

BIN = [100, 100, 200, 250]  # a bin box (640x480 frame)
ON_TOP = [120, 70, 180, 110]  # a garbage box over the bin's top edge
PERSON = [300, 50, 360, 200]


class _Fixed:
    """A model that finds the same boxes in every frame."""

    version = "0"

    def __init__(self, name: str, boxes: list[tuple[str, list[int], float]]) -> None:
        self.name = name
        self.class_names = tuple(dict.fromkeys(cls for cls, _, _ in boxes))
        self._boxes = boxes

    def detect(self, image: np.ndarray) -> Detections:
        ids = [self.class_names.index(cls) for cls, _, _ in self._boxes]
        return Detections(
            np.array([box for _, box, _ in self._boxes], np.float32),
            np.array([score for _, _, score in self._boxes], np.float32),
            np.array(ids, np.int32),
            self.class_names,
        )


def _run(tmp_path: Path, models: dict[str, _Fixed]) -> tuple[list[dict], list[str], Pipeline]:
    """Run the sample through a pipeline with these detectors; (case records, on_detect's model names)."""
    sample = builtin("sample")
    data = {
        "agent_id": "merge-box",
        "state_dir": str(tmp_path / "state"),
        "sources": [{"id": "cam", "kind": "fixed", "url": str(sample), "sample_fps": 2, "idle_every_s": 1}],
        "detectors": [{"id": key, "model": str(sample), "class_map": {}} for key in models],
        "cases": {"overflow": {"evidence": "garbage_at_bin"}},
        "privacy": {"faces": False, "persons": True, "clips": "local"},
        "evidence": {"clips": False},
    }
    path = tmp_path / "merge.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    loaded = [LoadedDetector(entry, models[entry.id], f"detectors[{i}]") for i, entry in enumerate(config.detectors)]
    pipeline = Pipeline(config, loaded, Outbox(tmp_path / "outbox"), Signer.load_or_create(tmp_path / "keys"))
    timed: list[str] = []
    pipeline.on_detect = lambda model, seconds: timed.append(model)
    summary = pipeline.run_source(config.sources[0], threading.Event())
    assert not summary.problem and summary.frames_analysed > 3
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "outbox" / "cases").glob("*/r1/case.json"))]
    return records, timed, pipeline


def test_overflow_evidence_composes_one_detectors_boxes_and_the_case_names_that_detector(tmp_path: Path) -> None:
    models = {
        "people": _Fixed("people-model", [("person", PERSON, 0.9)]),
        "bins": _Fixed("bins-model", [("garbage_bin", BIN, 0.9), ("garbage", ON_TOP, 0.8)]),
    }
    records, timed, pipeline = _run(tmp_path, models)
    [case] = records
    assert case["type"] == "overflowing_bin" and case["explanation"]["evidence"] == "garbage_at_bin"
    assert case["explanation"]["detector"] == "bins" and case["model"]["name"] == "bins-model"
    assert case["privacy"]["persons"] == 1  # the person came from the other detector, on the same frame
    frames = pipeline.running["cam"].summary.frames_analysed
    assert timed.count("people-model") == timed.count("bins-model") == frames  # each model timed on each frame
    assert pipeline.running["cam"].by_class == {"person": frames, "garbage_bin": frames, "garbage": frames}


@pytest.mark.parametrize("order", [("litter", "bins"), ("bins", "litter")])
def test_a_garbage_box_of_one_detector_never_makes_another_detectors_bin_overflow(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    found = {
        "litter": _Fixed("litter-model", [("garbage", ON_TOP, 0.8)]),
        "bins": _Fixed("bins-model", [("garbage_bin", BIN, 0.9)]),
    }
    records, _, _ = _run(tmp_path, {key: found[key] for key in order})
    assert records == []

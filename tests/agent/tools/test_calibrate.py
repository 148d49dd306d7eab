"""`edge-agent calibrate` on real held-out images: the thresholds it writes reach the target precision on the
split they were chosen on, `eval` measures at them by default and says so, and the cross-check is printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.config.resources import builtin
from agent.tools.calibrate import source_halves
from agent.tools.evaluate import LabelledResult, evaluate
from agent.tools.training import source_group, split_by_source
from detectors import Detections
from detectors.onnx_yolo import OnnxYoloDetector
from tests.agent.test_cli import ENV
from tests.conftest import agent_cmd, need_shared

CLASSES = ["garbage", "garbage_bin", "overflow"]
TARGET = 0.90


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    dataset = need_shared("datasets/garbage-street-cn/train")
    return split_by_source(dataset, CLASSES, tmp_path_factory.mktemp("split")).data_yaml


def test_calibrated_thresholds_reach_the_target_and_eval_uses_them(held_out: Path, tmp_path: Path) -> None:
    written = tmp_path / "calibrated-int8.onnx"
    done = subprocess.run(
        agent_cmd(
            "calibrate",
            str(builtin("garbage")),
            "--data",
            str(held_out),
            "--precision",
            str(TARGET),
            "--write",
            str(written),
        ),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "cross-check: chosen on half A, measured on half B" in done.stdout
    assert "cross-check: chosen on half B, measured on half A" in done.stdout
    stored = OnnxYoloDetector(written).thresholds
    assert set(stored) <= set(CLASSES) and "overflow" in stored and "garbage_bin" in stored
    report = evaluate(written, held_out)  # no --conf: at the model's own thresholds
    for c in report.classes:
        if c.name in stored:
            assert report.thresholds[c.name] == f"{stored[c.name]:.3f} (model)"
            assert c.precision >= TARGET, c
            assert c.recall > 0, c


def test_halves_keep_each_source_block_on_one_side() -> None:
    names = [f"{n:06d}_jpg.rf.x.jpg" for n in (1, 2, 41, 42, 81, 120, 121, 200)]
    results = [LabelledResult(Path(n), Detections.empty(), None, None) for n in names]  # type: ignore[arg-type]
    half_a, half_b = source_halves(results)
    blocks_a = {source_group(r.image.name, 40) for r in half_a}
    blocks_b = {source_group(r.image.name, 40) for r in half_b}
    assert blocks_a and blocks_b and not blocks_a & blocks_b
    assert len(half_a) + len(half_b) == len(names)

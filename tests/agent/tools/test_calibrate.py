"""`edge-agent calibrate` on real held-out images: the thresholds it writes reach the target precision on the
split they were chosen on, `eval` measures at them by default and says so, and the cross-check is printed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from agent.config import ConfigError
from agent.config.resources import builtin
from agent.tools.calibrate import calibrate, source_halves
from agent.tools.evaluate import LabelledResult, evaluate
from agent.tools.model_commands import _precision_targets
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


def test_per_class_targets_each_reach_their_own_precision(held_out: Path) -> None:
    """A case type that must be trusted (overflow) and one that must be found (garbage) get their own target."""
    targets = {"overflow": 0.90, "": 0.70}
    report = calibrate(builtin("garbage"), held_out, targets)
    by_name = {c.name: c for c in report.classes}
    assert by_name["overflow"].precision >= 0.90
    assert by_name["garbage_bin"].precision >= 0.70
    assert by_name["overflow"].threshold > by_name["garbage_bin"].threshold  # the stricter target costs score
    assert report.targets == targets


@pytest.mark.parametrize("text", ["1.5", "overflow=x", "overflow=0", "garbage=0.7,2"])
def test_a_bad_precision_target_says_what_to_give(text: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("give e.g. 0.90 or overflow=0.90,garbage=0.75")):
        _precision_targets(text)


def test_precision_targets_parse_per_class_and_default() -> None:
    assert _precision_targets("0.8") == {"": 0.8}
    assert _precision_targets("overflow=0.9, garbage=0.75") == {"overflow": 0.9, "garbage": 0.75, "": 0.90}

"""The bundled smoke model on frames it never trained on, and cooking fumes as the agent decides them.

The held-out side of the by-clip split (`split_by_source`, val fraction 0.25, as in the model card)
holds the whole clip `test3_mp4`: consecutive frames of real drifting smoke. Encoded into a video they
must make exactly one cooking_fumes case; one of those frames held still (smoke frozen, as a grey
patch on a wall would be) must make none, because the rule requires the boxes to change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from agent.config.resources import builtin
from agent.tools.evaluate import evaluate
from agent.tools.scenario import encode_h264
from agent.tools.training import split_by_source
from detectors.onnx_yolo import OnnxYoloDetector
from tests.agent.test_cli import run_cli
from tests.conftest import need_shared

CLASSES = ["Fire", "default", "smoke"]


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    dataset = need_shared("datasets/smoke-fire")
    return split_by_source(dataset, CLASSES, tmp_path_factory.mktemp("smoke-split"), 0.25).data_yaml


def test_smoke_accuracy_on_held_out_clips_meets_the_target(held_out: Path) -> None:
    report = evaluate(builtin("smoke"), held_out, conf=0.30, threads=2)
    smoke = next(c for c in report.classes if c.name == "smoke")
    assert smoke.instances > 50
    assert smoke.ap50 >= 0.60  # the more-models issue's target; the card states 0.805


def _encode(frames: list[np.ndarray], path: Path, seconds_per_frame: float, fps: int = 10) -> Path:
    """Each frame held for `seconds_per_frame`, encoded to H.264 with ffmpeg."""
    repeat = round(seconds_per_frame * fps)
    height, width = frames[0].shape[:2]
    encode_h264(path, (frame for frame in frames for _ in range(repeat)), (width, height), fps)
    return path


def _clip_frames(held_out: Path) -> list[np.ndarray]:
    images = sorted(
        (held_out.parent / "val" / "images").glob("test3_mp4-*"),
        key=lambda p: int(re.search(r"test3_mp4-(\d+)_", p.name).group(1)),
    )
    run = [p for p in images if int(re.search(r"-(\d+)_", p.name).group(1)) <= 23]  # frames 6-23 in a row
    assert len(run) >= 15
    return [cv2.resize(cv2.imread(str(p)), (640, 480)) for p in run]


def _config(tmp_path: Path, state: str) -> Path:
    config = {
        "agent_id": "smoke-test-box",
        "state_dir": state,
        "sources": [{"id": "unused", "kind": "fixed", "url": "builtin:sample"}],  # replaced by the video given
        "detector": {"model": "builtin:smoke", "class_map": {"smoke": "cooking_fumes"}},
        "cases": {"rules": {"cooking_fumes": {"min_detections": 4, "window_s": 10, "min_present_s": 3}}},
        "evidence": {"clips": False},
    }
    path = tmp_path / f"{state}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _cases(state: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "outbox" / "cases").glob("*/r1/case.json"))]


def test_drifting_smoke_makes_one_cooking_fumes_case_and_frozen_smoke_none(held_out: Path, tmp_path: Path) -> None:
    frames = _clip_frames(held_out)
    moving = _encode(frames, tmp_path / "smoke.mp4", seconds_per_frame=0.5)
    config = _config(tmp_path, "moving")
    done = run_cli("process", str(moving), "--kind", "fixed", "--sample-fps", "2", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [c["type"] for c in _cases(tmp_path / "moving")] == ["cooking_fumes"], done.stdout

    detector = OnnxYoloDetector(builtin("smoke"), min_score=0.30)
    scores = [
        max((c for c, n in zip(d.confidence, d.names(), strict=True) if n == "smoke"), default=0)
        for d in map(detector.detect, frames)
    ]
    still = frames[int(np.argmax(scores))]  # the frame the model is surest of: smoke is seen, only motion is missing
    frozen = _encode([still] * len(frames), tmp_path / "frozen.mp4", seconds_per_frame=0.5)
    config = _config(tmp_path, "frozen")
    done = run_cli("process", str(frozen), "--kind", "fixed", "--sample-fps", "2", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"frozen\s+\d+\s+\d+\s+([1-9]\d*)\s+0\s", done.stdout), done.stdout  # smoke seen, no case
    assert _cases(tmp_path / "frozen") == [], done.stdout

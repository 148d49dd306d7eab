"""Regression guard on the pipeline's relative cost per stage (no absolute times: machines are noisy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.tools import bench_common
from agent.tools.bench import run_agent
from tests.conftest import make_clip


def test_stage_costs_stay_in_proportion(tmp_path: Path, model_path: Path) -> None:
    clip = make_clip(tmp_path / "cam.mp4", seconds=8, size="1280x720", rate=25)
    report = run_agent(clip, model_path, kind="vehicle", sample_fps=5)
    stages = report["stage_ms_per_analysed_frame"]
    assert report["analysed"] == 40 and report["decoded"] == 200  # 5 of every 25 frames reach the detector
    inference = stages["detect: inference"]
    # our own pre- and post-processing (letterbox, NMS) must stay cheaper than the model itself
    assert stages["detect: preprocess"] + stages["detect: postprocess"] < inference
    # the rules are bookkeeping: a tenth of the model's time is already generous
    assert stages["rules"] < 0.1 * inference
    # tracking with camera-motion compensation (optical flow on a 320 px grey copy) is small beside the model
    assert stages["tracking"] < inference
    # decoding 5 frames (and converting one to BGR) costs less than 5 inferences at 720p
    assert stages["decode+sample"] < 5 * inference


def test_the_keyframes_only_row_decodes_only_keyframes(tmp_path: Path, model_path: Path) -> None:
    clip = make_clip(tmp_path / "cam.mp4", seconds=8, size="1280x720", rate=25)  # a keyframe a second
    report = run_agent(clip, model_path, kind="fixed", sample_fps=1, keyframes_only=True)
    assert report["name"] == "edge-agent (fixed, keyframes only)"
    assert report["decoded"] == 8 and 1 <= report["analysed"] <= 8


def test_a_box_without_ffmpeg_is_told_to_install_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg anywhere on it
    with pytest.raises(SystemExit, match="apt-get install ffmpeg"):
        bench_common.make_clip(tmp_path / "in.mp4", tmp_path / "out.mp4", 360, 25, 768, 2)
    assert not (tmp_path / "out.mp4").exists()

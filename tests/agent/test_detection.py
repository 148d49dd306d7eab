"""Several detectors on one decode, through the real pipeline and the real models on real imagery.

The clip: a held-out garbage photo (000393, the pile the scenario tests use) held still for 8 s, then
the held-out smoke clip `test3_mp4` (frames 6-23, each 0.5 s, as tests/detectors/test_smoke_model.py
plays it). One source, a fixed camera; garbage, smoke and the general model watch it, each at its own
pace. It must be decoded once and raise one garbage and one cooking-fumes case, each recording the
model that raised it.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from agent.config import load_config
from agent.config.resources import builtin
from agent.detection import DetectorTypes, SourceDetectors
from agent.detector_setup import LoadedDetector
from agent.runner import run_agent
from agent.tools.scenario import encode_h264
from detectors import Detections
from streams import Frame
from tests.conftest import need_shared
from tests.detectors.test_smoke_model import _clip_frames, held_out  # noqa: F401 - held_out is a fixture

FPS = 10
PILE = "000393"


def _clip(folder: Path, smoke_frames: list[np.ndarray]) -> tuple[Path, int]:
    """(the H.264 file, its number of frames)."""
    photos = need_shared("datasets/garbage-street-cn/train/images")
    pile = cv2.resize(cv2.imread(str(next(photos.glob(f"{PILE}_jpg*")))), (640, 480))
    frames = [pile] * (8 * FPS) + [f for f in smoke_frames for _ in range(FPS // 2)]
    path = folder / "street.mp4"
    encode_h264(path, iter(frames), (640, 480), FPS, start=datetime(2026, 6, 1, 4, 0, tzinfo=UTC))  # 12:00 +08
    return path, len(frames)


def _config(folder: Path, clip: Path) -> Path:
    data = {
        "agent_id": "street-box",
        "state_dir": str(folder / "state"),
        "sources": [{"id": "street", "kind": "fixed", "url": str(clip), "sample_fps": 2, "idle_every_s": 1}],
        "detectors": [
            {"id": "garbage", "model": "builtin:garbage", "class_map": {"garbage": "garbage_pile"}, "every_s": 1},
            {"id": "smoke", "model": "builtin:smoke", "class_map": {"smoke": "cooking_fumes"}},
            {"id": "general", "model": "builtin:general", "class_map": {}, "every_s": 2},
        ],
        "cases": {"rules": {"cooking_fumes": {"min_detections": 4, "window_s": 10, "min_present_s": 3}}},
        "evidence": {"clips": False},
    }
    path = folder / "street.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _frames_in(clip: Path) -> int:
    probe = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"]
    probe += ["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(clip)]
    return int(subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip())


def test_three_models_on_one_decode_raise_garbage_and_smoke_cases(held_out: Path, tmp_path: Path) -> None:  # noqa: F811
    clip, written = _clip(tmp_path, _clip_frames(held_out))
    config = load_config(_config(tmp_path, clip))
    result = run_agent(config)
    [summary] = result.summaries
    assert not summary.problem, summary.problem
    assert summary.frames_decoded == _frames_in(clip) == written  # each frame decoded once, for all three models
    runs = summary.model_runs
    assert runs["smoke"] == summary.frames_analysed  # every sampled frame
    assert 0 < runs["general"] < runs["garbage"] < runs["smoke"]  # each at its own pace, on the same frames
    assert set(summary.model_s) == {"garbage", "smoke", "general"}

    records = [json.loads(p.read_text()) for p in (tmp_path / "state" / "outbox" / "cases").glob("*/r1/case.json")]
    made = {r["type"]: (r["model"]["name"], r["explanation"]["detector"]) for r in records}
    assert sorted(r["type"] for r in records) == ["cooking_fumes", "garbage_pile"]
    assert made["garbage_pile"] == ("garbage-yolov8n-int8", "garbage")
    assert made["cooking_fumes"] == ("smoke-yolov8n-int8", "smoke")
    versions = {r["type"]: r["model"]["version"] for r in records}
    assert versions["garbage_pile"] != versions["cooking_fumes"]


class _Counting:
    """A detector that finds nothing and counts its calls (the schedule alone is under test)."""

    name, version, class_names = "counting", "0", ("thing",)

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray) -> Detections:
        self.calls += 1
        return Detections.empty(self.class_names)


@pytest.mark.parametrize("every_s, expected", [(None, 12), (1.0, 6), (2.0, 3), (0.4, 12)])
def test_a_detector_runs_once_per_every_s_of_video(tmp_path: Path, every_s: float | None, expected: int) -> None:
    sample = builtin("sample")
    entry = {"id": "counting", "model": str(sample), "class_map": {}} | ({"every_s": every_s} if every_s else {})
    data = {"agent_id": "b", "sources": [{"id": "s", "kind": "fixed", "url": str(sample)}], "detectors": [entry]}
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    counting = _Counting()
    types = DetectorTypes(LoadedDetector(config.detectors[0], counting), [])
    source = SourceDetectors([types], config.sources[0])
    start = datetime(2026, 6, 1, tzinfo=UTC)
    image = np.zeros((4, 4, 3), np.uint8)
    for i in range(12):  # 6 s at 2 frames a second, with a little jitter
        media_s = i * 0.5 + (0.01 if i % 3 else -0.01)
        source.detect(Frame("s", i, start + timedelta(seconds=media_s), 0.0, media_s, image))
    assert counting.calls == expected == source.runs["counting"]


def _veto_config(folder: Path, clip: Path, vetoes: list[dict]) -> Path:
    data = {
        "agent_id": "veto-box",
        "state_dir": str(folder / "state"),
        "sources": [{"id": "lane", "kind": "fixed", "url": str(clip), "sample_fps": 2, "idle_every_s": 1}],
        "detectors": [
            {"id": "garbage", "model": "builtin:garbage", "every_s": 1, "vetoes": vetoes},
            {"id": "general", "model": "builtin:general", "class_map": {}, "every_s": 60},
        ],
        "evidence": {"clips": False},
    }
    path = folder / "veto.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_veto_drops_the_garbage_boxes_the_general_model_sees_as_vehicles(tmp_path: Path) -> None:
    """Held-out photo 000383: a green dumpster, overflowing, between parked bicycles; the general model calls
    the dumpster a truck and sees a car and bicycles over it. Without a veto it is an overflowing_bin case;
    vetoed by the general model's vehicles it is none: the veto works, and this is a true case it costs
    (docs/street-vending.md, "Vetoes")."""
    photos = need_shared("datasets/garbage-street-cn/train/images")
    bin_photo = cv2.resize(cv2.imread(str(next(photos.glob("000383_jpg*")))), (640, 480))
    clip = tmp_path / "bin.mp4"
    encode_h264(clip, iter([bin_photo] * 8 * FPS), (640, 480), FPS, start=datetime(2026, 6, 1, 4, 0, tzinfo=UTC))
    runs = {}
    for name, vetoes in (("plain", []), ("vetoed", [{"veto_with": "general"}])):
        folder = tmp_path / name
        folder.mkdir()
        result = run_agent(load_config(_veto_config(folder, clip, vetoes)))
        records = [json.loads(p.read_text()) for p in (folder / "state" / "outbox" / "cases").glob("*/r1/case.json")]
        runs[name] = (result.summaries[0], [r["type"] for r in records])
    plain, vetoed = runs["plain"], runs["vetoed"]
    assert plain[1] == ["overflowing_bin"] and vetoed[1] == []
    assert plain[0].model_runs["general"] == 1  # every 60 s: once in 8 s
    assert vetoed[0].model_runs["general"] == vetoed[0].model_runs["garbage"] > 3  # it runs beside the vetoed one
    assert vetoed[0].detections < plain[0].detections / 3  # most boxes go; those left are too few for a case

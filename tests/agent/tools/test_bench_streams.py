"""`edge-agent bench --streams N`: the table and the report are complete and consistent (no timings
against thresholds: machines here are noisy; speed is what the bench itself reports)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from agent.config import resources
from agent.tools.bench_clips import cut_at_moments
from agent.tools.bench_common import make_clip as make_bench_clip
from agent.tools.bench_streams import bench_config, busiest
from tests.conftest import REPO, agent_cmd, make_clip


def test_two_paced_streams_report_lag_latency_and_memory(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "cam.mp4", seconds=5, size="640x360", rate=25)
    report_path = tmp_path / "report.json"
    args = ("bench", "--streams", "2", "--seconds", "5", "--clip", str(clip), "--json", str(report_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(agent_cmd(*args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("stream"))
    for column in ("decoded", "sampled", "dropped", "analysed", "lag p95 ms", "lag max ms", "result p95 ms", "kept up"):
        assert column in header
    assert "streams kept up" in done.stdout and "MB per added stream" in done.stdout

    report = json.loads(report_path.read_text())
    assert [r["stream"] for r in report["rows"]] == ["cam00", "cam01"]
    for row in report["rows"]:
        assert not row["error"]
        assert 0 < row["decoded"] <= 125  # 5 s at 25 fps, each frame once
        assert 0 < row["analysed"] <= row["sampled"] < row["decoded"]  # the gate keeps about 1 a second
        assert row["analysed"] + row["dropped"] <= row["sampled"]
        assert 0 <= row["lag_p95_s"] <= row["lag_max_s"]  # no frame is analysed before its time
        assert row["result_p95_s"] > 0
        assert (row["outbox_n"] > 0) == (row["outbox_p95_s"] is not None)
    if not any(r["outbox_n"] for r in report["rows"]):
        assert "latency is detection-to-result" in done.stdout
    assert report["cpu_s"] > 0 and report["peak_rss_mb"] > report["rss_1_stream_mb"] > 0
    assert report["rss_per_added_stream_mb"] == report["peak_rss_mb"] - report["rss_1_stream_mb"]


def test_cases_raised_together_are_counted_with_their_cpu(tmp_path: Path) -> None:
    # The outbox column is set by how much case work comes at once: the report gives each case's raise time
    # and CPU, and the table the busiest few seconds.
    clip = make_bench_clip(resources.builtin("sample"), tmp_path / "sample.mp4", 360, 10, 800, 10)
    report_path = tmp_path / "report.json"
    args = ("bench", "--streams", "2", "--seconds", "10", "--clip", str(clip), "--json", str(report_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(agent_cmd(*args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    raised = [t for r in report["rows"] for t in r["raised_mono_s"]]
    assert raised, "the sample shows garbage within its first seconds"
    for row in report["rows"]:
        assert len(row["raised_mono_s"]) == len(row["case_cpu_s"]) == row["outbox_n"]
        assert all(cpu > 0 for cpu in row["case_cpu_s"])
    assert sum(c for r in report["rows"] for c in r["case_cpu_s"]) < report["cpu_s"]  # a part of the run's CPU
    line = next(line for line in done.stdout.splitlines() if line.startswith("cases: "))
    peak = int(line.split("the busiest 5 s raised ")[1].split(":")[0])
    assert peak == busiest(raised, 5.0) and 1 <= peak <= len(raised)


def test_the_busiest_window_counts_times_within_it_of_each_other() -> None:
    assert busiest([], 5.0) == 0
    assert busiest([30.0, 0.0, 5.1, 1.0, 4.9], 5.0) == 3  # 0, 1, 4.9 or 1, 4.9, 5.1; never 0 with 5.1
    assert busiest([2.0, 2.0, 2.0], 0.0) == 3


def test_a_configuration_gives_its_rules_and_detector_but_not_its_sources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "x")
    monkeypatch.setenv("MQTT_PASSWORD", "x")
    clip = make_clip(tmp_path / "cam.mp4", seconds=1)
    own = [{"id": "cam00", "kind": "fixed", "url": str(clip), "realtime": True}]
    config = bench_config(Path("unused.onnx"), REPO / "configs" / "fixed-cameras.yaml", tmp_path, own)
    assert [s.id for s in config.sources] == ["cam00"] and config.sources[0].realtime
    assert config.state_dir == tmp_path and config.inbox is None
    assert config.cases.rules["garbage_pile"].min_present_s == 120  # the file's rule, not the default
    assert config.detector.model.name == "garbage-yolov8n-int8.onnx"


def test_the_street_camera_bench_shows_each_detectors_share(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "cam.mp4", seconds=4, size="640x360", rate=25)
    report_path = tmp_path / "report.json"
    args = ("bench", "--streams", "1", "--seconds", "4", "--sample-fps", "2", "--clip", str(clip))
    args += ("-c", str(REPO / "configs" / "street-camera.yaml"), "--json", str(report_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(agent_cmd(*args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(report_path.read_text())["rows"]
    assert set(row["model_s"]) == {"garbage", "smoke", "general"} and all(s > 0 for s in row["model_s"].values())
    assert row["model_runs"]["smoke"] == row["analysed"] > row["model_runs"]["garbage"] > 0  # every 2 s
    shares = [
        int(line.split(": ")[1].split(" %")[0]) for line in done.stdout.splitlines() if line.startswith("detector ")
    ]
    assert len(shares) == 3 and 97 <= sum(shares) <= 103  # rounded shares of one whole


def test_the_settings_side_by_side_include_substreams(tmp_path: Path) -> None:
    """`--settings substream,full`: each camera's detect input is a 640x360 substream made from the clip, its
    record input the clip itself; one table gives both settings' verdicts and costs."""
    clip = make_clip(tmp_path / "main.mp4", seconds=5, size="1280x720", rate=25)
    report_path = tmp_path / "report.json"
    args = ("bench", "--streams", "2", "--seconds", "5", "--clip", str(clip), "--settings", "substream,full")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}  # the substream clip is made there
    done = subprocess.run(
        agent_cmd(*args, "--json", str(report_path)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    substream = tmp_path / "edge-agent-bench" / "main-640x360p25-768k-g25-5s.mp4"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", str(substream)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "640,360"
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("setting"))
    for column in ("kept up", "p95s < 1 s", "lag p95 ms", "outbox p95 ms", "CPU %/camera", "MB/added camera"):
        assert column in lines[header]
    assert [line.split()[0] for line in lines[header + 2 : header + 4]] == ["substream", "full"]
    rows = json.loads(report_path.read_text())
    assert [(r["setting"], r["streams"]) for r in rows] == [("substream", 2), ("full", 2)]
    for row in rows:
        assert 0 <= row["meet_p95"] <= 2 and 0 <= row["kept_up"] <= 2
        assert row["cpu_per_camera_pct"] > 0 and row["rss_per_added_mb"] is not None
        assert row["analysed_per_s"] > 0


def test_an_unknown_setting_is_named_with_the_accepted_ones(tmp_path: Path) -> None:
    done = subprocess.run(
        agent_cmd("bench", "--streams", "2", "--settings", "full,substreams"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (
        done.returncode == 2
        and "unknown setting substreams; accepted: full, keyframes, substream, substream-keyframes" in done.stderr
    )


def test_staggered_cameras_show_their_moment_of_one_encode(tmp_path: Path) -> None:
    # --stagger: cameras that do not all raise their cases in the same second. Each moment is cut from one
    # encode at the first keyframe at or after it, and the camera waits the difference.
    whole = make_bench_clip(resources.builtin("sample"), tmp_path / "whole.mp4", 360, 10, 800, 8)  # keyframes 0, 2, ..
    clips, waits = cut_at_moments(whole, [0.0, 2.5, 4.0], 3)

    def frames(video: Path) -> list[np.ndarray]:
        with av.open(str(video)) as container:
            return [f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)]

    original = frames(whole)
    assert waits == pytest.approx([0.0, 1.5, 0.0])
    for clip, keyframe_s in zip(clips, [0.0, 4.0, 4.0], strict=True):
        cut = frames(clip)
        assert 35 <= len(cut) <= 50  # about 3 s (+1) at 10 fps
        start = round(keyframe_s * 10)
        assert np.abs(cut[0] - original[start]).mean() < 0.5  # not re-encoded: the very frame
        assert np.abs(cut[5] - original[start + 5]).mean() < 0.5
    assert clips[1] == clips[2]  # one cut a keyframe
    assert np.abs(frames(clips[0])[0] - frames(clips[1])[0]).mean() > 5  # and they show different moments

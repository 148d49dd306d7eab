"""configs/street-camera.yaml: one fixed camera, three models, every case type; as shipped.

It runs as it is on the bundled sample; pedestrians walking across a plaza (vtest.avi) make no case,
also with street vending's `min_present_s` cut to 20 s (the clip is shorter than the shipped 5 minutes,
so only the grouping and stillness decide); and a real street-market photo held in view for six minutes
(configs/scenarios/street-stall.yaml) is one street_vending case, raised by the general model.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from agent.config import load_config
from agent.runner import run_agent
from agent.tools.scenario import build, load_spec
from agent.tools.scenario_eval import scenario_config
from tests.agent.test_cli import run_cli
from tests.conftest import REPO, need_shared

CONFIG = REPO / "configs" / "street-camera.yaml"
STALL = REPO / "configs" / "scenarios" / "street-stall.yaml"


def _records(state: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "outbox" / "cases").glob("*/r1/case.json"))]


def test_the_street_camera_runs_as_it_is_on_the_bundled_sample(tmp_path: Path) -> None:
    shutil.copy(CONFIG, tmp_path / CONFIG.name)  # its outbox goes beside the file
    done = run_cli("check-config", CONFIG.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = run_cli("run", "-c", CONFIG.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"street-east\s+240\s+\d+\s+\d+\s+\d+\s+24\.0\s+ok", done.stdout), done.stdout
    for model in ("garbage-yolov8n-int8", "smoke-yolov8n-int8", "general-yolox-nano"):
        assert f"model {model} " in done.stderr  # each loaded once
        assert done.stderr.count(f"model {model} ") == 1


def test_pedestrians_walking_through_make_no_case(tmp_path: Path) -> None:
    vtest = need_shared("video/vtest.avi")
    shutil.copy(CONFIG, tmp_path / CONFIG.name)
    short = yaml.safe_load(CONFIG.read_text())
    short["cases"]["rules"]["street_vending"]["min_present_s"] = 20  # groups and stillness decide, not the clock
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(short))
    for config in (CONFIG.name, "short.yaml"):
        done = run_cli("process", str(vtest), "-c", config, "--kind", "fixed", cwd=tmp_path, timeout=600)
        assert done.returncode == 0, done.stderr
        assert re.search(r"vtest\s+795\s+\d+\s+\d+\s+0\s", done.stdout), done.stdout
    assert _records(tmp_path / "edge-agent-data") == []


def test_a_market_stall_in_view_for_six_minutes_is_one_street_vending_case(tmp_path: Path) -> None:
    need_shared("datasets/garbage-street-cn/train")
    scenario = build(load_spec(STALL), tmp_path)
    config = scenario_config(scenario, load_config(CONFIG), tmp_path / "state")
    result = run_agent(config)
    assert not result.summaries[0].problem
    records = _records(tmp_path / "state")
    assert [r["type"] for r in records] == ["street_vending"]
    [case] = records
    assert case["model"]["name"] == "general-yolox-nano" and case["explanation"]["detector"] == "general"
    assert "umbrella" in case["explanation"]["members"] and "person" in case["explanation"]["members"]
    assert case["explanation"]["present_s"] >= 300  # stationary for min_present_s
    assert case["explanation"]["shift"] <= 0.3

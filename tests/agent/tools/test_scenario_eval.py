"""`edge-agent eval --scenario`: event-level precision and recall, checked against a count made here."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from agent.config import default_config
from agent.tools.scenario import load_spec, photo_path
from agent.tools.scenario_eval import EventReport, ExpectedCase, RaisedCase, match
from agent.tools.training import split_side
from tests.conftest import REPO, agent_cmd, need_shared

EXAMPLE = REPO / "configs" / "scenarios" / "two-passes.yaml"
EVENTS = re.compile(
    r"^events: expected (\d+), raised (\d+), matched (\d+); precision ([0-9.]+), recall ([0-9.]+)$", re.M
)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (a[0] - b[0]) * 111_320.0
    east = (a[1] - b[1]) * 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot(north, east)


def test_eval_scenario_prints_event_precision_and_recall(tmp_path: Path) -> None:
    need_shared("datasets/garbage-street-cn/train")
    run = subprocess.run(
        agent_cmd("eval", "--scenario", str(EXAMPLE), "--out", str(tmp_path), "--json", str(tmp_path / "ev.json")),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    found = EVENTS.search(run.stdout)
    assert found, run.stdout
    expected_n, raised_n, matched_n = (int(g) for g in found.groups()[:3])
    precision, recall = float(found.group(4)), float(found.group(5))
    assert 0.0 <= precision <= 1.0 and 0.0 <= recall <= 1.0

    # counted here, from the outbox and from what the scenario file says it shows
    newest: dict[str, dict] = {}
    for path in (tmp_path / "state" / "outbox" / "cases").glob("*/r*/case.json"):
        record = json.loads(path.read_bytes())
        if record["revision"] > newest.get(record["id"], {"revision": 0})["revision"]:
            newest[record["id"]] = record
    lat0, lon0 = 30.27415, 120.15515
    places = {"A": 0.0, "B": 150.0, "C": 200.0}  # metres east, as in the file
    want = [("garbage_pile", "A"), ("garbage_pile", "B"), ("overflowing_bin", "C")]  # D is one frame: no case
    unmatched = list(newest.values())
    matched = 0
    for case_type, place in want:
        where = (lat0, lon0 + places[place] / (111_320.0 * math.cos(math.radians(lat0))))
        for record in unmatched:
            here = (record["location"]["lat"], record["location"]["lon"])
            if record["type"] == case_type and _metres(where, here) <= 50:
                unmatched.remove(record)
                matched += 1
                break
    assert (expected_n, raised_n, matched_n) == (len(want), len(newest), matched)
    assert precision == pytest.approx(matched / len(newest), abs=5e-4)
    assert recall == pytest.approx(matched / len(want), abs=5e-4)
    saved = json.loads((tmp_path / "ev.json").read_text())["events"]
    assert (saved["precision"], saved["recall"]) == pytest.approx((precision, recall), abs=5e-4)


def test_precision_and_recall_count_misses_and_false_alarms() -> None:
    config = default_config()
    a, b, far = (30.0, 120.0), (30.0, 120.001), (30.01, 120.0)  # b is about 96 m east of a; far 1.1 km north
    expected = [ExpectedCase("garbage_pile", a, [1]), ExpectedCase("garbage_pile", b, [2])]
    raised = [
        RaisedCase("c1", "garbage_pile", (30.0, 120.0001), (1, 2), "t1", "t1"),  # a, 10 m off
        RaisedCase("c2", "overflowing_bin", b, (1,), "t2", "t2"),  # the wrong type at b
        RaisedCase("c3", "garbage_pile", far, (1,), "t3", "t3"),  # nothing there
    ]
    pairs = match(expected, raised, config)
    report = EventReport(expected, raised, pairs, 0, 0)
    assert pairs == {0: "c1"}
    assert (report.precision, report.recall) == (pytest.approx(1 / 3), 0.5)
    assert (EventReport([], [], {}, 0, 0).precision, EventReport([], [], {}, 0, 0).recall) == (1.0, 1.0)


def test_a_photo_the_model_trained_on_is_refused() -> None:
    dataset = need_shared("datasets/garbage-street-cn/train")
    trained_on = next(p for p in sorted((dataset / "images").iterdir()) if split_side(p.name) == "train")
    with pytest.raises(ValueError, match="training side"):
        photo_path(dataset, trained_on.name.split("_")[0])


def test_a_scenario_names_an_unknown_place(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("from: D,", "from: E,")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"segments\[7\]: unknown place 'E'"):
        load_spec(tmp_path / "bad.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_load_and_show_held_out_photos_only(path: Path) -> None:
    need_shared("datasets/garbage-street-cn/train")
    spec = load_spec(path)
    for segment in spec.segments:
        if segment.show != "blank":
            assert split_side(photo_path(spec.dataset, segment.show).name) == "val"

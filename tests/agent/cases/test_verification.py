"""Verification by the next pass on the agent: a fixed camera that sees a held-out pile, then the pile
removed (real H.264 footage), raises one case then one signed `cleared` observation in the outbox;
the pile still there raises none; seen again later, the case gets its next revision and is watched
again. The footprint test of moving cameras on known geometry."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from agent.cases.registry import CaseRegistry
from agent.cases.verification import Clearance, Verifier, in_footprint
from agent.config import AgentConfig, default_config
from agent.config.sources import CameraMount
from agent.geo.earth import Location
from agent.geo.geometry import offset
from agent.runner import run_agent
from detectors import Detections
from protocol import CLEARED_SCHEMA
from protocol.signing import PUBLIC_KEY_FILE, verify_record
from streams import Frame, GeoPoint, PositionFix
from tests.case_records import make_case
from tests.cleared_footage import fixed_camera, footage, pile_photos
from tests.conftest import REPO

START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def outbox_records(state_dir: Path) -> tuple[dict[str, list[dict]], list[dict]]:
    """(case id -> its revisions' records, the cleared observations) in the outbox."""
    cases: dict[str, list[dict]] = {}
    cleared = []
    for path in sorted((state_dir / "outbox" / "cases").glob("*/r*/case.json")):
        record = json.loads(path.read_text())
        if "case_revision" in record:
            cleared.append(record | {"_folder": path.parent})
        else:
            cases.setdefault(record["id"], []).append(record)
    return cases, cleared


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return pile_photos(tmp_path_factory.mktemp("photos"))


def test_a_pile_removed_gives_one_case_then_one_cleared(tmp_path: Path, photos: tuple[Path, Path]) -> None:
    pile, removed = photos
    video = footage(tmp_path / "pass.mp4", [(pile, 20), (removed, 50)])
    config = fixed_camera(tmp_path / "state", video, START)
    assert run_agent(config).summaries[0].cases == 1
    cases, cleared = outbox_records(config.state_dir)
    assert len(cases) == 1 and len(cleared) == 1, (list(cases), cleared)
    (case_id,) = cases
    observation = cleared[0]
    jsonschema.Draft202012Validator(json.loads(CLEARED_SCHEMA.read_text())).validate(
        {k: v for k, v in observation.items() if k != "_folder"}
    )
    public_pem = (config.state_dir / "keys" / PUBLIC_KEY_FILE).read_bytes()
    assert verify_record({k: v for k, v in observation.items() if k != "_folder"}, public_pem) is None
    assert observation["case_id"] == case_id and observation["type"] == "garbage_pile"
    assert observation["case_revision"] == max(r["revision"] for r in cases[case_id])
    clear_from, until = (
        datetime.fromisoformat(observation[k].replace("Z", "+00:00")) for k in ("clear_from", "clear_until")
    )
    assert START + timedelta(seconds=19) <= clear_from <= START + timedelta(seconds=22)  # when the pile went
    assert (until - clear_from).total_seconds() >= 30 and observation["view"]["method"] == "fixed_box"
    (snapshot,) = observation["evidence"]
    assert (observation["_folder"] / "snapshot.jpg").stat().st_size == snapshot["bytes"]


def test_the_pile_still_there_gives_no_cleared(tmp_path: Path, photos: tuple[Path, Path]) -> None:
    pile, _removed = photos
    config = fixed_camera(tmp_path / "state", footage(tmp_path / "pass.mp4", [(pile, 70)]), START)
    assert run_agent(config).summaries[0].cases == 1
    cases, cleared = outbox_records(config.state_dir)
    assert len(cases) == 1 and cleared == []


def test_seen_again_after_cleared_is_the_next_revision_and_watched_again(
    tmp_path: Path, photos: tuple[Path, Path]
) -> None:
    pile, removed = photos
    state = tmp_path / "state"
    run_agent(fixed_camera(state, footage(tmp_path / "1.mp4", [(pile, 20), (removed, 40)]), START))
    (case_id,), _ = outbox_records(state)
    day = START + timedelta(days=1)  # the pile is back the next day, then taken away again
    run_agent(fixed_camera(state, footage(tmp_path / "2.mp4", [(pile, 20), (removed, 40)]), day))
    cases, cleared = outbox_records(state)
    assert list(cases) == [case_id]  # the same problem: no second case
    assert any(r["revision"] > 2 and r["last_seen"] > day.isoformat()[:10] for r in cases[case_id])
    assert len({c["id"] for c in cleared}) == 2 and {c["case_id"] for c in cleared} == {case_id}
    assert sorted(c["case_revision"] for c in cleared)[-1] > 2


def test_a_registry_from_before_verification_opens_and_lists_its_cases(tmp_path: Path) -> None:
    path = tmp_path / "cases.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE known_cases (case_id TEXT PRIMARY KEY, type TEXT NOT NULL, source_id TEXT NOT NULL, lat REAL, "
        "lon REAL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, revision INTEGER NOT NULL, box TEXT);"
        "CREATE TABLE sightings (sighting_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, revision INTEGER NOT NULL, "
        "seen TEXT);"
        f"INSERT INTO known_cases VALUES ('c1', 'garbage_pile', 'cam', NULL, NULL, '{START.isoformat()}', "
        f"'{START.isoformat()}', 2, '[1, 2, 30, 40]');"
    )
    db.commit()
    db.close()
    registry = CaseRegistry(path, remember_days=7)
    (case,) = registry.open_cases("cam", START - timedelta(days=1))
    assert (case.case_id, case.revision, list(case.box)) == ("c1", 2, [1, 2, 30, 40])
    registry.mark_cleared("c1", START)
    assert registry.open_cases("cam", START - timedelta(days=1)) == []


def fix(heading: float | None, corners: tuple[GeoPoint, ...] | None = None) -> PositionFix:
    return PositionFix(lat=30.0, lon=120.0, heading_deg=heading, corners=corners)


def test_the_footprint_of_a_moving_camera() -> None:
    ahead = (30.0002, 120.0)  # about 22 m north
    assert in_footprint(fix(0.0), *ahead, hfov_deg=90)
    assert in_footprint(fix(30.0), *ahead, hfov_deg=90)
    assert not in_footprint(fix(180.0), *ahead, hfov_deg=90)  # behind
    assert not in_footprint(fix(0.0), *ahead, hfov_deg=90, yaw_offset_deg=90)  # a camera looking right
    assert not in_footprint(fix(None), *ahead, hfov_deg=90)  # unknown heading: never guessed
    assert not in_footprint(fix(0.0), *ahead, hfov_deg=None)
    corners = tuple(
        GeoPoint(lat, lon)
        for lat, lon in ((30.0003, 119.9999), (30.0003, 120.0001), (30.0001, 120.0001), (30.0001, 119.9999))
    )
    assert in_footprint(fix(None, corners), *ahead, hfov_deg=None)
    assert not in_footprint(fix(None, corners), 30.0005, 120.0, hfov_deg=None)


def test_frames_the_garbage_detector_is_not_due_on_neither_clear_nor_see(
    tmp_path: Path, photos: tuple[Path, Path]
) -> None:
    """Garbage runs once every 4 s, smoke on every frame: the frames between say nothing about the pile."""
    pile, _removed = photos
    config = fixed_camera(tmp_path / "state", footage(tmp_path / "pass.mp4", [(pile, 40)]), START)
    document = config.model_dump()
    document["cases"]["rules"]["garbage_pile"] |= {"clear_after_s": 2.5, "window_s": 12}  # shorter than 4 s
    detector = document.pop("detector")
    document["detectors"] = [
        detector | {"id": "garbage", "every_s": 4, "class_map": {"garbage": "garbage_pile"}},
        detector
        | {
            "id": "smoke",
            "model": REPO / "models" / "smoke-yolov8n-int8.onnx",
            "class_map": {"smoke": "cooking_fumes"},
        },
    ]
    config = AgentConfig.model_validate(document)
    assert run_agent(config).summaries[0].cases == 1
    cases, cleared = outbox_records(config.state_dir)
    assert len(cases) == 1 and cleared == []


PILE = offset(30.0, 120.0, -1.0, 20.0)  # a pile case 20 m east of the patrol car's start, 1 m right of its track


def patrol_pass(tmp_path: Path, seen_on: int | None) -> list[tuple[int, Clearance]]:
    """The next day's pass of a car driving east from (30, 120), 5 m between analysed frames (10 m/s at 2 a
    second), with a forward camera (60 degrees, 30 m range) past the located pile case; a box of the type
    on frame `seen_on` only (None: never). (the frame each clearance came on, the clearance)."""
    base = default_config()
    source = base.sources[0].model_copy(update={"camera": CameraMount(hfov_deg=60, height_m=2)})
    registry = CaseRegistry(tmp_path / "cases.sqlite3", remember_days=7)
    located = Location(*PILE, 4.5, "ray_cast")
    registry.record(make_case("c1", 2, START, source_id=source.id, source_kind="vehicle", location=located))
    verifier = Verifier(registry, source, base.cases)
    box = Detections(np.array([[100, 200, 300, 400]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int32))
    done = []
    for index in range(8):
        fix = PositionFix(*offset(30.0, 120.0, 0.0, 5.0 * index), heading_deg=90.0)
        utc = START + timedelta(days=1, seconds=index / 2)
        frame = Frame(source.id, index, utc, index / 2, index / 2, np.zeros((48, 64, 3), np.uint8), fix)
        found = box if index == seen_on else Detections.empty()
        done += [(index, c) for c in verifier.update(frame, {"garbage_pile": found})]
    return done


def test_a_moving_camera_judges_the_whole_pass_past_the_place(tmp_path: Path) -> None:
    """In view on frames 0-3 (20 to 5 m ahead), passed on frame 4. A pile found only on the last frame of the
    pass (a detector finds it late, close up) is still there; a pass with no box clears it once passed,
    with the pass's last frame as the snapshot."""
    in_view = [
        i for i in range(8) if in_footprint(PositionFix(*offset(30.0, 120.0, 0, 5.0 * i), heading_deg=90.0), *PILE, 60)
    ]
    assert in_view == [0, 1, 2, 3]
    assert patrol_pass(tmp_path / "late", seen_on=3) == []
    ((on, clearance),) = patrol_pass(tmp_path / "clear", seen_on=None)
    assert on == 4 and clearance.frame.index == 3 and clearance.frames == 4
    assert clearance.clear_from == START + timedelta(days=1) and clearance.view["method"] == "footprint"
    assert patrol_pass(tmp_path / "first", seen_on=0) == []

"""Property tests of the case engine (persistence rule + case registry) over random detection streams.

Detections are made up here (the rule and the registry are pure logic over boxes, times and
positions); everything downstream is real: `Pipeline.accept` builds, signs and stores each case in a
real outbox, and the registry is the SQLite file the agent keeps.
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cases.case import Case
from agent.cases.registry import CaseRegistry
from agent.cases.rules import PersistenceRule
from agent.config import AgentConfig, SourceConfig, default_config
from agent.config.resources import builtin
from agent.config.rules import CasesConfig
from agent.geo.earth import Location, distance_m
from agent.pipeline import Pipeline
from detectors import Detections
from detectors.onnx_yolo import OnnxYoloDetector
from protocol.signing import Signer
from streams import Frame, PositionFix
from uploader import Outbox

START = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
ORIGIN = (30.27415, 120.15515)
METRES_PER_DEGREE = 111_320.0
TYPES = ("garbage_pile", "overflowing_bin")
IMAGE = np.full((48, 64, 3), 90, np.uint8)
RULES = {t: {"min_detections": 2, "window_s": 10, "max_distance_m": 50, "close_after_s": 60} for t in TYPES}


def _boxes(n: int, score: float) -> Detections:
    xyxy = np.tile(np.array([[8, 8, 40, 40]], np.float32), (n, 1))
    return Detections(xyxy, np.full(n, score, np.float32), np.zeros(n, np.int32), ("garbage",))


def _frame(i: int, t_s: float, east_m: float, north_m: float) -> Frame:
    lat = ORIGIN[0] + north_m / METRES_PER_DEGREE
    lon = ORIGIN[1] + east_m / (METRES_PER_DEGREE * np.cos(np.radians(ORIGIN[0])))
    utc = START + timedelta(seconds=t_s)
    return Frame("prop", i, utc, t_s, t_s, IMAGE, PositionFix(lat, lon, utc=utc, source="nmea"))


# one step of a patrol: seconds since the last frame, metres moved east and north, and per type a score
# (None: not detected in this frame)
STEP = st.tuples(
    st.floats(0.1, 30.0),
    st.floats(-40.0, 40.0),
    st.floats(-40.0, 40.0),
    st.tuples(*(st.one_of(st.none(), st.floats(0.2, 0.99)) for _ in TYPES)),
)


@pytest.fixture(scope="module")
def detector() -> OnnxYoloDetector:
    return OnnxYoloDetector(builtin("garbage"), 0.3)  # only its name and version go into the cases


def _pipeline(state: Path, detector: OnnxYoloDetector) -> tuple[Pipeline, AgentConfig, SourceConfig]:
    base = default_config()
    source = SourceConfig(id="prop", kind="vehicle", url=str(builtin("sample")))
    config = base.model_copy(
        update={
            "state_dir": state,
            "sources": [source],
            "grid": None,
            "cases": CasesConfig.model_validate({"rules": RULES}),
        }
    )
    outbox = Outbox(state / "outbox")
    return Pipeline(config, detector, outbox, Signer.load_or_create(state / "keys")), config, source


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=80))
def test_one_open_case_per_place_and_ordered_times(detector, steps) -> None:
    with tempfile.TemporaryDirectory() as folder:
        pipeline, config, source = _pipeline(Path(folder), detector)
        rule = PersistenceRule(config.cases.rule, source.kind, config.cases.tz)
        cases: dict[str, list[Case]] = {}
        t_s = east = north = 0.0
        for i, (dt, de, dn, scores) in enumerate(steps):
            t_s, east, north = t_s + dt, east + de, north + dn
            by_type = {t: _boxes(3, s) for t, s in zip(TYPES, scores, strict=True) if s is not None}
            for sighting in rule.update(_frame(i, t_s, east, north), by_type):
                assert sighting.first_seen <= sighting.last_seen
                case, _ = pipeline.accept(source, sighting)
                cases.setdefault(case.id, []).append(case)
        pipeline.outbox.close()
        pipeline.registry.close()
    for revisions in cases.values():
        assert [c.revision for c in revisions] == list(range(1, len(revisions) + 1))
        assert all(c.first_seen <= c.last_seen for c in revisions)
        assert len({c.first_seen for c in revisions}) == 1  # a case keeps the time it was first seen
    firsts = [revisions[0] for revisions in cases.values()]  # the registry keeps a case where it was raised
    for a, b in combinations(firsts, 2):
        if a.type == b.type:
            assert distance_m(a.location.lat, a.location.lon, b.location.lat, b.location.lon) > 50


def test_memory_stays_bounded_over_a_million_detections(tmp_path: Path) -> None:
    """100,000 frames, a patrol 8 m a frame along a loop, 20 boxes in each frame that shows something.

    The rule keeps only the hits inside its window and one open case per type; the registry forgets
    cases and sightings older than `remember_days` of footage time. Both must stay small however
    long the run. (The sightings table grew by one row per sighting of a pile passed again and again,
    10,000 rows here, until `forget_before` dropped old sightings by time as well.)
    """
    cases_config = CasesConfig.model_validate({"rules": RULES, "remember_days": 0.01})  # 864 s of footage
    rule = PersistenceRule(cases_config.rule, "vehicle")
    registry = CaseRegistry(tmp_path / "cases.sqlite3", cases_config.remember_days)
    # a pile, and a grey patch taken for smoke that never moves: the smoke rule never confirms it
    seen = {TYPES[0]: _boxes(10, 0.8), "cooking_fumes": _boxes(10, 0.8)}
    nothing: dict[str, Detections] = {}
    detections = most_hits = most_known = revisions = 0
    for i in range(100_000):
        t_s = i * 1.0
        east = (i * 8.0) % 4000.0  # a 4 km loop, passed again every 500 frames
        shown = (i // 5) % 2 == 0  # seen in 5 frames, then not in 5
        detections += 20 if shown else 0
        for sighting in rule.update(_frame(i, t_s, east, 0.0), seen if shown else nothing):
            fix = sighting.best_frame.fix
            known = registry.match(sighting.case_type, "prop", sighting.first_seen, fix.lat, fix.lon, 50)
            case_id, revision = (known.case_id, known.revision + 1) if known else (f"case-{i}", 1)
            revisions += known is not None
            registry.record(_case(case_id, revision, sighting, fix), f"sighting-{i}")
        if i % 1000 == 0:
            most_known = max(most_known, len(registry))
        most_hits = max(most_hits, sum(len(s.hits) for s in rule._states.values()))
    with sqlite3.connect(tmp_path / "cases.sqlite3") as db:
        (sightings,) = db.execute("SELECT COUNT(*) FROM sightings").fetchone()
    registry.close()
    assert detections == 1_000_000
    assert revisions > 0  # the loop brings the patrol past remembered piles again
    assert set(rule._states) == {TYPES[0], "cooking_fumes"}
    assert most_hits <= 11  # at most a window's worth of frames (10 s at one a second)
    # 864 s of footage at 8 m a second over a 4 km loop: at most a few dozen piles remembered at once
    assert 0 < most_known <= 100
    assert sightings <= 100  # the sightings of a pile passed again and again are forgotten too


def _case(case_id: str, revision: int, sighting, fix: PositionFix) -> Case:
    return Case(
        id=case_id,
        revision=revision,
        agent_id="prop",
        source_id="prop",
        source_kind="vehicle",
        type=sighting.case_type,
        codes=(),
        first_seen=sighting.first_seen,
        last_seen=sighting.last_seen,
        location=Location(fix.lat, fix.lon, 10.0, "camera_position:nmea"),
        score_max=sighting.score_max,
        score_mean=sighting.score_mean,
        frames=sighting.frames,
        model_name="prop",
        model_version="0",
    )

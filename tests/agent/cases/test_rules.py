"""The persistence rule's per-type checks: active hours, presence on fixed cameras, smoke that moves,
and seasonal profiles chosen by the frame's local date. Pure logic on hand-made frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from agent.cases.rules import PersistenceRule, Sighting
from agent.config import CasesConfig
from detectors import Detections
from streams import Frame, PositionFix
from tests.conftest import need_shared

BLACK = np.zeros((480, 640, 3), np.uint8)
BOX = (100.0, 100.0, 200.0, 200.0)


def detections(xyxy: tuple[float, float, float, float] = BOX, score: float = 0.9) -> Detections:
    return Detections(np.array([xyxy], np.float32), np.array([score], np.float32), np.array([0], np.int32))


def frame(utc: datetime, image: np.ndarray = BLACK) -> Frame:
    return Frame("cam", 0, utc, 0.0, 0.0, image)


def feed(
    rule: PersistenceRule, case_type: str, start: datetime, seconds: float, every_s: float = 1.0, **kw
) -> list[Sighting]:
    """Frames every `every_s` from `start` for `seconds` (inclusive), each showing the type."""
    out: list[Sighting] = []
    steps = int(seconds / every_s)
    for i in range(steps + 1):
        out += rule.update(
            frame(start + timedelta(seconds=i * every_s), kw.get("image", BLACK)),
            {case_type: kw.get("dets", detections())},
        )
    return out


def rule_with(cases: dict, kind: str = "vehicle") -> PersistenceRule:
    config = CasesConfig.model_validate(cases)
    return PersistenceRule(config.rule, kind, config.tz)


@pytest.mark.parametrize(
    "hours, zone, start_utc, expected",
    [
        # 12:00 in Beijing is inside 06:00-22:00
        (["06:00-22:00"], "+08:00", datetime(2026, 7, 1, 4, 0, tzinfo=UTC), 1),
        # 23:00 in Beijing (15:00 UTC) is outside
        (["06:00-22:00"], "+08:00", datetime(2026, 7, 1, 15, 0, tzinfo=UTC), 0),
        # the same instant with the hours read in UTC is inside
        (["06:00-22:00"], "UTC", datetime(2026, 7, 1, 15, 0, tzinfo=UTC), 1),
        # a night window across midnight: 01:30 local is inside 20:00-02:00
        (["20:00-02:00"], "+08:00", datetime(2026, 7, 1, 17, 30, tzinfo=UTC), 1),
        # 03:00 local is after the night window closed
        (["20:00-02:00"], "+08:00", datetime(2026, 7, 1, 19, 0, tzinfo=UTC), 0),
        # 20:30 local with an IANA zone
        (["20:00-02:00"], "Asia/Shanghai", datetime(2026, 7, 1, 12, 30, tzinfo=UTC), 1),
        # two windows: 13:00 local lies in neither 06:00-09:00 nor 17:00-24:00
        (["06:00-09:00", "17:00-24:00"], "+08:00", datetime(2026, 7, 1, 5, 0, tzinfo=UTC), 0),
        # ... 23:00 local lies in the second, which ends at midnight
        (["06:00-09:00", "17:00-24:00"], "+08:00", datetime(2026, 7, 1, 15, 0, tzinfo=UTC), 1),
        # no hours: all day
        ([], "+08:00", datetime(2026, 7, 1, 19, 0, tzinfo=UTC), 1),
    ],
)
def test_active_hours_in_local_time(hours: list[str], zone: str, start_utc: datetime, expected: int) -> None:
    rule = rule_with({"timezone": zone, "rules": {"street_vending": {"hours": hours}}})
    assert len(feed(rule, "street_vending", start_utc, 2)) == expected


def test_frames_outside_hours_do_not_count_towards_a_case() -> None:
    rule = rule_with({"rules": {"street_vending": {"hours": ["06:00-22:00"], "window_s": 30}}})
    before_open = datetime(2026, 7, 1, 13, 59, 58, tzinfo=UTC)  # 21:59:58 local: 2 frames inside, 3 after
    assert feed(rule, "street_vending", before_open, 4) == []


def test_a_disabled_type_never_counts_and_the_old_call_still_works() -> None:
    t0 = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    assert feed(rule_with({"rules": {"garbage_pile": {"enabled": False}}}), "garbage_pile", t0, 5) == []
    assert len(feed(PersistenceRule(CasesConfig().rule), "garbage_pile", t0, 2)) == 1  # defaults: moving, UTC


@pytest.mark.parametrize(
    "kind, min_present_s, runs, expected",
    [
        # a bag carried past a fixed camera for 20 s is not a pile
        ("fixed", 120, [(0, 20)], 0),
        # a pile standing there for 3 minutes is
        ("fixed", 120, [(0, 180)], 1),
        # two bags 40 s apart (unseen longer than the window) do not add up to 120 s
        ("fixed", 120, [(0, 70), (110, 70)], 0),
        # moving cameras pass by; presence does not apply to them
        ("vehicle", 120, [(0, 20)], 1),
        # off (the default): 20 s is enough from a fixed camera too
        ("fixed", 0, [(0, 20)], 1),
    ],
)
def test_fixed_camera_minimum_presence(kind: str, min_present_s: float, runs: list, expected: int) -> None:
    rule = rule_with({"rules": {"garbage_pile": {"min_present_s": min_present_s}}}, kind)
    t0 = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    sightings: list[Sighting] = []
    for start_s, seconds in runs:
        sightings += feed(rule, "garbage_pile", t0 + timedelta(seconds=start_s), seconds, every_s=2)
    for i in range(60):  # then nothing for two minutes
        sightings += rule.update(frame(t0 + timedelta(seconds=400 + 2 * i)), {})
    assert len(sightings) == expected


def test_presence_case_records_the_whole_run() -> None:
    rule = rule_with({"rules": {"garbage_pile": {"min_present_s": 120}}}, "fixed")
    t0 = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    [case] = feed(rule, "garbage_pile", t0, 180, every_s=2)
    assert case.first_seen == t0  # from the first hit, not the start of the last window
    assert case.last_seen == t0 + timedelta(seconds=180)  # extended while it stayed
    assert case.frames == 91  # 61 hits up to 120 s, then 30 more extending it


def _smoke_frames() -> tuple[np.ndarray, np.ndarray]:
    folder = need_shared("datasets/smoke-fire/valid/images")
    a, b = (cv2.imread(str(next(folder.glob(f"newsmoke1_mp4-{n}_jpg*")))) for n in (55, 56))
    return a, b


SMOKE_BOX = (180.0, 200.0, 410.0, 395.0)  # the plume in the 608x608 smoke frames


@pytest.mark.parametrize(
    "images, boxes, require_motion, expected",
    [
        # a static grey patch: identical box, identical pixels
        ("black", [BOX] * 4, True, 0),
        # a box that spreads (area grows 30 %)
        ("black", [BOX, (100, 100, 210, 210), (95, 95, 215, 215), (90, 90, 220, 220)], True, 1),
        # a box that drifts sideways by half its size
        ("black", [BOX, (120, 100, 220, 200), (150, 100, 250, 200), (150, 100, 250, 200)], True, 1),
        # the check off: the static patch counts
        ("black", [BOX] * 4, False, 1),
        # real smoke: two frames of a plume, the same box; the pixels inside change
        ("smoke", [SMOKE_BOX] * 4, True, 1),
        # one real frame repeated, the same box: a photo of smoke is not smoke
        ("smoke-still", [SMOKE_BOX] * 4, True, 0),
    ],
)
def test_smoke_must_change(images: str, boxes: list, require_motion: bool, expected: int) -> None:
    if images == "black":
        frames = [BLACK] * len(boxes)
    else:
        a, b = _smoke_frames()
        frames = [a, b] * (len(boxes) // 2) if images == "smoke" else [a] * len(boxes)
    rule = rule_with({"rules": {"cooking_fumes": {"require_motion": require_motion}}})
    t0 = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    sightings: list[Sighting] = []
    for i, (image, box) in enumerate(zip(frames, boxes, strict=True)):
        sightings += rule.update(frame(t0 + timedelta(seconds=i), image), {"cooking_fumes": detections(box)})
    assert len(sightings) == expected


def test_cooking_fumes_require_motion_by_default() -> None:
    config = CasesConfig()
    assert config.rule("cooking_fumes").require_motion
    assert not config.rule("garbage_pile").require_motion
    # giving other keys for the type keeps the type's default
    assert (
        CasesConfig.model_validate({"rules": {"cooking_fumes": {"min_detections": 5}}})
        .rule("cooking_fumes")
        .require_motion
    )


WINTER = {
    "rules": {"street_vending": {"hours": ["06:00-22:00"]}},
    "profiles": [
        {
            "name": "winter",
            "from": "12-01",
            "to": "02-28",
            "rules": {"street_vending": {"hours": ["10:00-16:00"], "min_detections": 5}},
        },
        # never chosen where winter already covers the date: the first covering profile applies
        {"name": "january", "from": "01-01", "to": "01-31", "rules": {"street_vending": {"enabled": False}}},
    ],
}


@pytest.mark.parametrize(
    "utc, season",
    [
        # 23:59 on 30 November in Beijing: base rules
        (datetime(2026, 11, 30, 15, 59, tzinfo=UTC), "base"),
        # 00:00 on 1 December in Beijing (still 30 November in UTC): winter, by the local date
        (datetime(2026, 11, 30, 16, 0, tzinfo=UTC), "winter"),
        # across the year end
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "winter"),
        # January: winter is listed first, so it wins over the january profile
        (datetime(2027, 1, 15, 4, 0, tzinfo=UTC), "winter"),
        # the last day of winter, 23:59 local
        (datetime(2027, 2, 28, 15, 59, tzinfo=UTC), "winter"),
        # 1 March local
        (datetime(2027, 2, 28, 16, 0, tzinfo=UTC), "base"),
        # a leap day lies outside 12-01..02-28
        (datetime(2028, 2, 29, 4, 0, tzinfo=UTC), "base"),
    ],
)
def test_profile_chosen_by_local_date(utc: datetime, season: str) -> None:
    rule = CasesConfig.model_validate(WINTER).rule("street_vending", utc)
    if season == "winter":
        assert (rule.hours, rule.min_detections, rule.enabled) == (["10:00-16:00"], 5, True)
    else:
        assert (rule.hours, rule.min_detections, rule.enabled) == (["06:00-22:00"], 3, True)
    assert rule.window_s == 10  # keys the profile does not give keep the base value


@pytest.mark.parametrize(
    "start_utc, seconds, expected",
    [
        # summer, 20:00 local: vending hours run to 22:00
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), 2, 1),
        # winter, 20:00 local: the winter profile dropped the evening
        (datetime(2026, 12, 15, 12, 0, tzinfo=UTC), 6, 0),
        # winter, 12:00 local after the year end: 3 frames no longer suffice ...
        (datetime(2027, 1, 5, 4, 0, tzinfo=UTC), 2, 0),
        # ... 5 do
        (datetime(2027, 1, 5, 4, 0, tzinfo=UTC), 4, 1),
    ],
)
def test_winter_profile_in_the_rule(start_utc: datetime, seconds: float, expected: int) -> None:
    assert len(feed(rule_with(WINTER), "street_vending", start_utc, seconds)) == expected


def test_a_long_window_holds_the_pixels_of_two_frames_only() -> None:
    """A fixed camera waiting 2 minutes for presence keeps every hit of its window, but only the best
    (the evidence) and the latest (the next motion check) keep their image: 1080p frames are 6 MB each."""
    rule = rule_with(
        {"rules": {"garbage_pile": {"min_detections": 200, "window_s": 60, "min_present_s": 120}}}, "fixed"
    )
    start = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    for i in range(40):
        image = np.full((108, 192, 3), i, np.uint8)
        score = 0.95 if i == 7 else 0.6
        assert rule.update(frame(start + timedelta(seconds=i), image), {"garbage_pile": detections(score=score)}) == []
    hits = rule._states["garbage_pile"].hits
    assert len(hits) == 40
    holding = [int(h.frame.image[0, 0, 0]) for h in hits if h.frame.image.size]
    assert holding == [7, 39]


def tracked(track_id: int | None) -> Detections:
    ids = None if track_id is None else np.array([track_id], np.int64)
    return Detections(np.array([BOX], np.float32), np.array([0.9], np.float32), np.array([0], np.int32), tracker_id=ids)


@pytest.mark.parametrize(
    "track_ids, expected",
    [
        ([7] * 13, 1),  # one object followed for 120 m: one case, however far the car drove
        ([None] * 13, 2),  # no tracker: past max_distance_m a sighting may be another pile
        ([7] * 6 + [8] * 7, 2),  # another object beyond max_distance_m: another case
    ],
)
def test_a_tracked_object_stays_one_case_past_max_distance(track_ids: list[int | None], expected: int) -> None:
    rule = rule_with({"rules": {"garbage_pile": {"min_detections": 3, "max_distance_m": 50}}})
    start, found = datetime(2026, 7, 1, 4, 0, tzinfo=UTC), []
    for i, track_id in enumerate(track_ids):  # 10 m/s east along the equator, one analysed frame a second
        utc = start + timedelta(seconds=i)
        here = Frame("cam", i, utc, float(i), float(i), BLACK, PositionFix(0.0, i * 10 / 111_320, utc=utc))
        found += rule.update(here, {"garbage_pile": tracked(track_id)})
    assert len(found) == expected

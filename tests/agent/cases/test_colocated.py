"""Street vending from co-located objects (`cases.colocated`) and the stationary-stall check (`max_shift`).

Pure logic: a stub detector stands in for a city's own stall model (no shipped model has these
classes) and returns scripted boxes; everything after it is the agent's own pipeline: class map and
groups (`Pipeline.detect`), zones (`SourcePlaces`), the persistence rule, and the case record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.cases.colocated import Colocator, concat, group_labels
from agent.cases.places import SourcePlaces
from agent.cases.rules import PersistenceRule, Sighting
from agent.config import AgentConfig, ConfigError, load_config, parse_config, resources
from agent.config.rules import ColocatedConfig
from agent.pipeline import Pipeline
from agent.runner import check_class_map
from detectors import Detections
from protocol.signing import Signer
from streams import Frame
from uploader import Outbox

CLASSES = ("stall", "umbrella", "cart", "table", "goods", "person")
STALL = {
    "case_type": "street_vending",
    "objects": ["stall", "umbrella", "cart", "table", "goods"],
    "people": ["person"],
}
EXAMPLE = Path(__file__).resolve().parents[3] / "configs" / "street-vending-colocated.yaml"
IMAGE = np.zeros((720, 1280, 3), np.uint8)
NOON_LOCAL = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # 12:00 at +08:00
NIGHT_LOCAL = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)  # 22:00 at +08:00

Box = tuple[str, tuple[float, float, float, float]]


def dets(*boxes: Box, score: float = 0.8) -> Detections:
    n = len(boxes)
    return Detections(
        np.array([b for _, b in boxes], np.float32).reshape(n, 4),
        np.full(n, score, np.float32),
        np.array([CLASSES.index(name) for name, _ in boxes], np.int32),
        CLASSES,
    )


def groups(boxes: list[Box], **config: object) -> Detections:
    colocator = Colocator([ColocatedConfig.model_validate(STALL | config)], CLASSES)
    return colocator.add_groups({}, dets(*boxes)).get("street_vending", Detections.empty())


@pytest.mark.parametrize(
    "boxes, config, labels",
    [
        # two umbrellas far apart: shade, not a stall
        ([("umbrella", (0, 0, 100, 100)), ("umbrella", (400, 0, 500, 100))], {}, []),
        # an umbrella and a table touching: a stall
        ([("umbrella", (0, 0, 100, 100)), ("table", (100, 50, 200, 100))], {}, ["table+umbrella"]),
        # a person alone: a passer-by
        ([("person", (0, 0, 40, 100))], {}, []),
        # a cart and a person beside it: a vendor at a cart (min_people 1)
        ([("cart", (0, 40, 100, 100)), ("person", (110, 0, 150, 100))], {}, ["cart+person"]),
        # the same with people not configured: a cart alone
        ([("cart", (0, 40, 100, 100)), ("person", (110, 0, 150, 100))], {"people": []}, []),
        # the same needing two people: one vendor is not enough
        ([("cart", (0, 40, 100, 100)), ("person", (110, 0, 150, 100))], {"min_people": 2}, []),
        # two people beside each other: people never make a group alone
        ([("person", (0, 0, 40, 100)), ("person", (40, 0, 80, 100))], {}, []),
        # a gap of 0.4 x the height joins at max_gap 0.5 ...
        ([("umbrella", (0, 0, 100, 100)), ("table", (140, 0, 240, 100))], {}, ["table+umbrella"]),
        # ... a gap of 0.6 x the height does not
        ([("umbrella", (0, 0, 100, 100)), ("table", (160, 0, 260, 100))], {}, []),
        # a diagonal gap is the distance between corners: (40, 40) is 0.57 x the height
        ([("umbrella", (0, 0, 100, 100)), ("table", (140, 140, 240, 240))], {}, []),
        # a vendor between an umbrella and a table bridges them into one group
        (
            [("umbrella", (0, 0, 100, 100)), ("person", (120, 0, 160, 100)), ("table", (180, 0, 280, 100))],
            {},
            ["person+table+umbrella"],
        ),
        # two stalls far apart: two groups
        (
            [
                ("umbrella", (0, 0, 100, 100)),
                ("goods", (90, 60, 150, 100)),
                ("stall", (800, 0, 1000, 200)),
                ("table", (1000, 100, 1100, 200)),
            ],
            {},
            ["goods+umbrella", "stall+table"],
        ),
        # min_objects 3: an umbrella and a table are not enough, with goods they are
        ([("umbrella", (0, 0, 100, 100)), ("table", (100, 50, 200, 100))], {"min_objects": 3}, []),
        (
            [("umbrella", (0, 0, 100, 100)), ("table", (100, 50, 200, 100)), ("goods", (120, 30, 180, 50))],
            {"min_objects": 3},
            ["goods+table+umbrella"],
        ),
    ],
)
def test_groups(boxes: list[Box], config: dict, labels: list[str]) -> None:
    found = groups(boxes, **config)
    assert sorted(found.names()) == labels


def test_a_group_is_the_union_of_its_members_scored_by_their_mean() -> None:
    found = Colocator([ColocatedConfig.model_validate(STALL)], CLASSES).add_groups(
        {},
        Detections(
            np.array([[10, 20, 110, 120], [100, 80, 220, 140], [600, 0, 700, 100]], np.float32),
            np.array([0.9, 0.5, 0.99], np.float32),
            np.array([CLASSES.index("umbrella"), CLASSES.index("table"), CLASSES.index("stall")], np.int32),
            CLASSES,
        ),
    )["street_vending"]
    np.testing.assert_array_equal(found.xyxy, [[10, 20, 220, 140]])  # the lone stall makes no group
    np.testing.assert_allclose(found.confidence, [0.7])


def test_group_labels_are_transitive() -> None:
    chain = np.array([[0, 0, 10, 10], [12, 0, 22, 10], [24, 0, 34, 10], [100, 0, 110, 10]], np.float32)
    assert group_labels(chain, 0.5).tolist() == [0, 0, 0, 3]
    assert group_labels(chain, 0.1).tolist() == [0, 1, 2, 3]


def test_groups_join_the_class_maps_boxes_of_the_same_type() -> None:
    mapped = dets(("stall", (0, 0, 50, 50)))
    colocator = Colocator([ColocatedConfig.model_validate(STALL)], CLASSES)
    merged = colocator.add_groups(
        {"street_vending": mapped}, dets(("umbrella", (300, 0, 400, 100)), ("table", (400, 50, 500, 100)))
    )["street_vending"]
    assert merged.names() == ["stall", "table+umbrella"]
    assert concat(Detections.empty(), mapped).names() == ["stall"]


# The whole path on a fixed camera: class map and groups, the no-vending zone, hours, the rule.


class StubDetector:
    """Stands in for a city's stall model: returns whatever boxes the test set for the next frame."""

    name = "stalls-stub"
    version = "0"
    class_names = CLASSES

    def __init__(self) -> None:
        self.next = Detections.empty(CLASSES)

    def detect(self, image: np.ndarray) -> Detections:
        return self.next


def config_for(
    tmp_path: Path, kind: str = "fixed", colocated: tuple[dict, ...] = (STALL,), **rule: object
) -> AgentConfig:
    """A camera with a pixel no-vending zone (fixed only: a vehicle's zones are geographic), vending hours
    07:00-21:00 at +08:00, and the co-located stall rule."""
    zone = {
        "name": "no-vending",
        "types": ["street_vending"],
        "polygon_px": [[0, 400], [1280, 360], [1280, 720], [0, 720]],
    }
    data = {
        "agent_id": "test-box",
        "state_dir": str(tmp_path / "state"),
        "sources": [
            {"id": "lane", "kind": kind, "url": "rtsp://10.0.0.1/live", "zones": [zone] if kind == "fixed" else []}
        ],
        "detector": {"model": "builtin:garbage", "class_map": {}},  # any model file; the stub detects
        "cases": {
            "timezone": "+08:00",
            "rules": {
                "street_vending": {"hours": ["07:00-21:00"], "min_detections": 5, "window_s": 30, "min_present_s": 60}
                | rule
            },
            "colocated": list(colocated),
        },
    }
    return parse_config(yaml.safe_dump(data), base_dir=tmp_path, origin="test")


def watch(tmp_path: Path, config: AgentConfig, boxes_at, start: datetime, seconds: int = 120, every_s: int = 2):
    """Run frames every `every_s` through detect -> zones -> rule; `boxes_at(i)` are frame i's boxes.
    Returns the pipeline and the sightings."""
    stub = StubDetector()
    pipeline = Pipeline(config, stub, Outbox(tmp_path / "outbox"), Signer.load_or_create(tmp_path / "keys"))
    source = config.sources[0]
    places = SourcePlaces.from_config(source)
    rule = PersistenceRule(config.cases.rule, source.kind, config.cases.tz)
    sightings: list[Sighting] = []
    for i in range(seconds // every_s + 1):
        frame = Frame(source.id, i, start + timedelta(seconds=i * every_s), 0.0, float(i * every_s), IMAGE)
        stub.next = dets(*boxes_at(i))
        sightings += rule.update(frame, places.filter(frame, pipeline.by_type(stub.detect(frame.image))))
    return pipeline, sightings


def stall_at(y_bottom: float):
    """An umbrella over a table, standing with its bottom at `y_bottom`, with 2 px of detector jitter."""
    return lambda i: [
        ("umbrella", (500 + i % 2 * 2, y_bottom - 160, 640, y_bottom - 60)),
        ("table", (560, y_bottom - 100, 700 + i % 3, y_bottom)),
    ]


def cart_pushed_past(i: int) -> list[Box]:
    """A cart and the person pushing it, crossing the zone at 10 px/s (20 px between frames)."""
    x = 100 + 20 * i
    return [("cart", (x, 420, x + 120, 520)), ("person", (x + 120, 340, x + 170, 520))]


def test_a_stall_standing_in_the_zone_in_hours_is_one_case(tmp_path: Path, case_validator) -> None:
    config = config_for(tmp_path)
    pipeline, sightings = watch(tmp_path, config, stall_at(520), NOON_LOCAL)
    assert len(sightings) == 1
    case, _ = pipeline.accept(config.sources[0], sightings[0])
    assert case.type == "street_vending"
    assert case.first_seen == NOON_LOCAL  # present from the first frame
    explanation = case.explanation
    assert explanation["members"] == ["table", "umbrella"]
    assert explanation["present_s"] == 60.0 and explanation["min_present_s"] == 60
    assert 0 < explanation["shift"] < 0.05 and explanation["max_shift"] == 0.3  # the default for street_vending
    record = case.to_record()
    case_validator.validate({**record, "signature": {"alg": "Ed25519", "key_id": "0" * 16, "value": ""}})
    assert record["explanation"] == explanation


@pytest.mark.parametrize(
    "boxes_at, start, rule, kind, expected",
    [
        # standing above the zone's edge (its bottom centre outside the no-vending zone): allowed there
        (stall_at(300), NOON_LOCAL, {}, "fixed", 0),
        # standing in the zone at 22:00 local, outside 07:00-21:00
        (stall_at(520), NIGHT_LOCAL, {}, "fixed", 0),
        # standing there only 40 s, under min_present_s
        (lambda i: stall_at(520)(i) if i <= 20 else [], NOON_LOCAL, {}, "fixed", 0),
        # a cart pushed past: it moves more than 0.3 of its size, so its time never adds up
        (cart_pushed_past, NOON_LOCAL, {}, "fixed", 0),
        # the same cart with the stationary check off: 2 minutes in the zone make a case
        (cart_pushed_past, NOON_LOCAL, {"max_shift": None}, "fixed", 1),
        # a camera on a vehicle cannot judge stationarity: the check (and min_present_s) is skipped
        (cart_pushed_past, NOON_LOCAL, {}, "vehicle", 1),
    ],
)
def test_when_a_group_is_not_a_case(
    tmp_path: Path, boxes_at, start: datetime, rule: dict, kind: str, expected: int
) -> None:
    config = config_for(tmp_path, kind, **rule)
    _, sightings = watch(tmp_path, config, boxes_at, start)
    assert len(sightings) == expected


def test_two_stalls_in_view_do_not_reset_each_other(tmp_path: Path) -> None:
    """The best box may switch between two stalls from frame to frame; neither has moved."""

    def two_stalls(i: int) -> list[Box]:
        left = [("umbrella", (100, 400, 240, 500)), ("table", (160, 440, 300, 540))]
        right = [("stall", (900, 380, 1100, 560)), ("goods", (1100, 480, 1160, 560))]
        return left + right if i % 2 else right + left

    _, sightings = watch(tmp_path, config_for(tmp_path), two_stalls, NOON_LOCAL)
    assert len(sightings) == 1


# Configuration: what the model lacks and what does not make sense is refused with the key and the fix.


def test_unknown_class_names_are_refused_at_start_up(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    check_class_map(config, CLASSES)  # all known
    with pytest.raises(ConfigError) as refused:
        check_class_map(config, ("garbage", "overflow"))  # the shipped garbage model has no stall classes
    message = str(refused.value)
    assert "cases.colocated[0].objects: 'cart', 'goods', 'stall', 'table', 'umbrella' not among" in message
    assert "cases.colocated[0].people: 'person' not among the classes of garbage-yolov8n-int8.onnx" in message
    assert "list the model's own class names" in message


@pytest.mark.parametrize(
    "composite, problem",
    [
        # a class both makes and joins a group
        (STALL | {"people": ["person", "cart"]}, "cases.colocated[0]: 'cart' listed more than once"),
        # nothing to make a group of
        (STALL | {"objects": []}, "cases.colocated[0].objects: List should have at least 1 item"),
        # a case type the agent does not know
        (STALL | {"case_type": "vending"}, "cases.colocated[0].case_type"),
        # a misspelt key
        (STALL | {"max_gap_px": 40}, "cases.colocated[0].max_gap_px: unknown key"),
    ],
)
def test_a_bad_composite_is_refused_with_its_key(tmp_path: Path, composite: dict, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config_for(tmp_path, colocated=(composite,))
    assert problem in str(refused.value)


def test_the_worked_example_is_valid_with_the_citys_model(monkeypatch) -> None:
    """configs/street-vending-colocated.yaml names its model by $VENDING_MODEL; the garbage model stands in
    for the file, and the class names it uses are the ones models/README.md tells a city to label."""
    for name in ("CAM_PASSWORD", "MQTT_PASSWORD"):
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("VENDING_MODEL", raising=False)
    with pytest.raises(ConfigError, match="VENDING_MODEL is not set"):
        load_config(EXAMPLE)
    monkeypatch.setenv("VENDING_MODEL", str(resources.builtin("garbage")))
    config = load_config(EXAMPLE)
    check_class_map(config, CLASSES)
    assert config.cases.rule("street_vending").max_shift == 0.3
    assert [c.case_type for c in config.cases.colocated] == ["street_vending"]

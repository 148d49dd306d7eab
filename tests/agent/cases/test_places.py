"""Zones and masks: which boxes count, on hand-made detections and on the bundled sample clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.cases.places import GeoZone, PixelZone, SourcePlaces, anchors_xy
from agent.config import ConfigError, SourceConfig, default_config, load_config
from agent.geo.polygons import pixel_polygon
from agent.runner import run_agent
from detectors import Detections


def boxes(*xyxy: tuple[float, float, float, float]) -> Detections:
    n = len(xyxy)
    return Detections(
        np.array(xyxy, np.float32).reshape(n, 4), np.full(n, 0.9, np.float32), np.zeros(n, np.int32), ("garbage",)
    )


SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]
SOURCE = SourceConfig(id="cam", kind="fixed", url="rtsp://10.0.0.1/live")


def test_anchor_is_the_bottom_centre() -> None:
    x, y = anchors_xy(boxes((10, 20, 30, 60)))
    assert (x[0], y[0]) == (20, 60)


@pytest.mark.parametrize(
    "box, expected",
    [
        ((150, 150, 250, 250), True),  # wholly inside
        ((150, 50, 250, 200), True),  # top sticks out, anchor (200, 200) inside
        ((150, 200, 250, 350), False),  # most of it inside, but it stands below the zone: anchor (200, 350)
        ((0, 0, 50, 50), False),  # far away
        ((250, 250, 350, 300), True),  # anchor (300, 300) on the corner: edges count as inside
        ((290, 100, 400, 200), False),  # anchor (345, 200) right of the zone
    ],
)
def test_pixel_zone_trigger(box, expected) -> None:
    zone = PixelZone("z", pixel_polygon(SQUARE))
    assert zone.trigger(boxes(box)).tolist() == [expected]


def test_pixel_zone_trigger_is_vectorised_and_empty_safe() -> None:
    zone = PixelZone("z", pixel_polygon(SQUARE))
    mask = zone.trigger(boxes((150, 150, 250, 250), (0, 0, 50, 50), (120, 100, 180, 299)))
    assert mask.dtype == bool and mask.tolist() == [True, False, True]
    assert zone.trigger(Detections.empty()).shape == (0,)


INSIDE, OUTSIDE = (150, 150, 250, 250), (400, 400, 500, 500)
HERE, ELSEWHERE = (30.27415, 120.1560), (30.30, 120.20)
AROUND_HERE = pixel_polygon([(120.155, 30.274), (120.157, 30.274), (120.157, 30.2745), (120.155, 30.2745)])


@pytest.mark.parametrize(
    "places, case_type, position, expected",
    [
        # no zones, no masks: everything counts
        (dict(), "garbage_pile", None, [True, True]),
        # a zone for every type keeps only boxes anchored inside it
        (dict(zones=[PixelZone("z", pixel_polygon(SQUARE))]), "garbage_pile", None, [True, False]),
        # a zone for vending only: garbage raises nothing from this source
        (
            dict(zones=[PixelZone("z", pixel_polygon(SQUARE), frozenset({"street_vending"}))]),
            "garbage_pile",
            None,
            [False, False],
        ),
        # ... while vending inside it counts
        (
            dict(zones=[PixelZone("z", pixel_polygon(SQUARE), frozenset({"street_vending"}))]),
            "street_vending",
            None,
            [True, False],
        ),
        # a mask drops boxes anchored in it, with or without zones
        (dict(masks=[pixel_polygon(SQUARE)]), "garbage_pile", None, [False, True]),
        # a mask wins over a zone
        (
            dict(
                zones=[PixelZone("all", pixel_polygon([(0, 0), (640, 0), (640, 640), (0, 640)]))],
                masks=[pixel_polygon(SQUARE)],
            ),
            "garbage_pile",
            None,
            [False, True],
        ),
        # a geo zone keeps the whole frame when the frame was taken inside it
        (dict(geo_zones=[GeoZone("g", AROUND_HERE)]), "garbage_pile", HERE, [True, True]),
        # ... and drops it outside
        (dict(geo_zones=[GeoZone("g", AROUND_HERE)]), "garbage_pile", ELSEWHERE, [False, False]),
        # ... and without a position (never guessed)
        (dict(geo_zones=[GeoZone("g", AROUND_HERE)]), "garbage_pile", None, [False, False]),
        # a geo zone for another type keeps nothing of this type
        (
            dict(geo_zones=[GeoZone("g", AROUND_HERE, frozenset({"cooking_fumes"}))]),
            "garbage_pile",
            HERE,
            [False, False],
        ),
        # both kinds: the box must be in the pixel zone and the frame in the geo zone
        (
            dict(zones=[PixelZone("z", pixel_polygon(SQUARE))], geo_zones=[GeoZone("g", AROUND_HERE)]),
            "garbage_pile",
            HERE,
            [True, False],
        ),
    ],
)
def test_source_places_trigger(places, case_type, position, expected) -> None:
    assert SourcePlaces(SOURCE, **places).trigger(boxes(INSIDE, OUTSIDE), case_type, position).tolist() == expected


def _geojson(path: Path, rings: list[list[tuple[float, float]]], **properties) -> Path:
    features = [
        {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for ring in rings
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _box_ring(west: float, south: float, east: float, north: float) -> list[tuple[float, float]]:
    return [(west, south), (east, south), (east, north), (west, north), (west, south)]


def test_zones_decide_which_cases_the_sample_clip_raises(tmp_path: Path) -> None:
    """Five copies of the demo source in one run, each with other places; the demo itself raises a case."""
    track = _geojson(
        tmp_path / "track.geojson", [_box_ring(120.1545, 30.2735, 120.1590, 30.2750)], types=["overflowing_bin"]
    )
    far = _geojson(tmp_path / "far.geojson", [_box_ring(120.20, 30.30, 120.21, 30.31)])
    demo = default_config().sources[0]
    whole_frame = [(0, 0), (640, 0), (640, 480), (0, 480)]
    variants = {
        "corner-zone": dict(zones=[{"name": "corner", "polygon_px": [(0, 0), (10, 0), (10, 10), (0, 10)]}]),
        "frame-zone": dict(zones=[{"name": "frame", "polygon_px": whole_frame}]),
        "masked": dict(masks_px=[whole_frame]),
        "geo-track": dict(geo_zones=track),
        "geo-far": dict(geo_zones=far),
    }
    sources = [SourceConfig(**{**demo.model_dump(), "id": sid, **extra}) for sid, extra in variants.items()]
    config = default_config().model_copy(update={"sources": sources, "state_dir": tmp_path / "state"})
    cases = {s.source_id: s.cases for s in run_agent(config).summaries}
    assert cases["corner-zone"] == cases["masked"] == cases["geo-far"] == 0
    assert cases["frame-zone"] >= 1 and cases["geo-track"] >= 1


def _write(tmp_path: Path, **source) -> Path:
    data = {
        "agent_id": "box-1",
        "sources": [{"id": "cam1", "kind": "fixed", "url": "rtsp://10.0.0.1/live", **source}],
        "detector": {"model": "builtin:garbage"},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


BOWTIE = [[0, 0], [100, 100], [100, 0], [0, 100]]


@pytest.mark.parametrize(
    "source, expected",
    [
        # corners that cross: the key, the reason and how to fix it
        (
            dict(zones=[{"name": "z", "polygon_px": BOWTIE}]),
            ["sources[0].zones[0].polygon_px", "Self-intersection", "list its corners in order"],
        ),
        # too few corners
        (dict(zones=[{"name": "z", "polygon_px": [[0, 0], [1, 1]]}]), ["sources[0].zones[0].polygon_px", "at least 3"]),
        # corners on one line
        (dict(zones=[{"name": "z", "polygon_px": [[0, 0], [1, 1], [2, 2]]}]), ["no area", "not lie on one line"]),
        # an unknown case type lists the accepted ones
        (
            dict(zones=[{"name": "z", "polygon_px": SQUARE, "types": ["litter"]}]),
            ["sources[0].zones[0].types[0]", "'litter'", "'garbage_pile'"],
        ),
        # a bad mask is named by its index
        (dict(masks_px=[SQUARE, BOWTIE]), ["sources[0].masks_px", "mask 1", "Self-intersection"]),
        # a missing geo zones file
        (dict(geo_zones="nope.geojson"), ["sources[0].geo_zones", "file not found", "nope.geojson"]),
    ],
)
def test_bad_zones_are_refused_with_path_value_and_fix(tmp_path: Path, source, expected) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, **source))
    for text in expected:
        assert text in str(error.value)


def test_geo_zone_with_unknown_type_names_file_and_feature(tmp_path: Path) -> None:
    zones = _geojson(
        tmp_path / "zones.geojson", [_box_ring(120.15, 30.27, 120.16, 30.28)], name="old-town", types=["litter"]
    )
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, kind="vehicle", geo_zones="zones.geojson"))
    message = str(error.value)
    assert "sources[0].geo_zones" in message and str(zones) in message
    assert "features[0]" in message and "'litter'" in message and "garbage_pile" in message


def test_good_zones_load(tmp_path: Path) -> None:
    _geojson(tmp_path / "zones.geojson", [_box_ring(120.15, 30.27, 120.16, 30.28)], name="old-town")
    config = load_config(
        _write(
            tmp_path,
            zones=[{"name": "z", "polygon_px": SQUARE, "types": ["street_vending"]}],
            masks_px=[SQUARE],
            geo_zones="zones.geojson",
        )
    )
    places = SourcePlaces.from_config(config.sources[0])
    assert config.sources[0].geo_zones == tmp_path / "zones.geojson"  # relative to the file
    assert [z.name for z in places.geo_zones] == ["old-town"] and places.zones[0].types == {"street_vending"}


def test_zone_outside_the_image_is_warned_about_once(caplog) -> None:
    from datetime import UTC, datetime

    from streams import Frame

    places = SourcePlaces(SOURCE, zones=[PixelZone("far", pixel_polygon([(1000, 600), (1900, 600), (1900, 1000)]))])
    frame = Frame("cam", 0, datetime(2026, 1, 1, tzinfo=UTC), 0.0, 0.0, np.zeros((480, 640, 3), np.uint8))
    with caplog.at_level("WARNING", logger="agent.cases.places"):
        assert places.filter(frame, {"garbage_pile": boxes(INSIDE)}) == {}
        places.filter(frame, {"garbage_pile": boxes(INSIDE)})
    assert [r.getMessage() for r in caplog.records] == [
        "cam: zone far lies outside the 640x480 image; draw it in this stream's pixels"
    ]

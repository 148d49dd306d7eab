"""The grid layer: lookups on the example grid, the demo's cases carry their cell, bad files are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.config import ConfigError, default_config, load_config, resources
from agent.geo.earth import Location, wgs84_to_gcj02
from agent.geo.grid import GridIndex
from agent.runner import run_agent

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = resources.builtin("sample-grid")


@pytest.fixture(scope="module")
def example() -> GridIndex:
    return GridIndex.load(EXAMPLE)


@pytest.mark.parametrize(
    "lat, lon, code",
    [
        (30.27415, 120.15515, "EX-0101"),  # where the sample track starts
        (30.27415, 120.15651, "EX-0102"),  # ~130 m east, where the demo raises its case
        (30.27415, 120.15775, "EX-0103"),  # where the track ends
        (30.2758, 120.1550, "EX-0201"),  # the block north of the street
        (30.2725, 120.1580, "EX-0301"),  # the block south of it
        (30.27415, 120.1560, "EX-0101"),  # on the edge EX-0101 shares with EX-0102: the first in the file wins
        (30.27415, 120.1600, None),  # east of every cell
        (39.9042, 116.4074, None),  # Beijing
    ],
)
def test_lookup_on_the_example_grid(example: GridIndex, lat: float, lon: float, code: str | None) -> None:
    cell = example.lookup(lat, lon)
    assert (cell.code if cell else None) == code


def test_lookup_many_agrees_with_lookup(example: GridIndex) -> None:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(30.2715, 30.2770, 500), rng.uniform(120.1535, 120.1595, 500)
    found = example.lookup_many(lat, lon)
    expected = [example.lookup(a, o) for a, o in zip(lat, lon, strict=True)]
    assert [example.cells[i] if i >= 0 else None for i in found] == expected
    assert (found >= 0).any() and (found < 0).any()


def test_grid_record_has_code_name_street_district(example: GridIndex) -> None:
    record = example.grid_for(Location(30.27415, 120.15651, 15.0, "camera_position:nmea"))
    assert record == {
        "code": "EX-0102",
        "name": "示例网格二（虚构）",
        "street": "示例东街道（虚构）",
        "district": "示例区（虚构）",
    }
    assert example.grid_for(None) is None


def test_gcj02_grid_is_looked_up_with_the_shifted_position(tmp_path: Path) -> None:
    lat, lon = 30.27415, 120.15651
    g_lat, g_lon = wgs84_to_gcj02(lat, lon)  # ~500 m away from the WGS-84 point
    d = 0.0005
    ring = [
        [g_lon - d, g_lat - d],
        [g_lon + d, g_lat - d],
        [g_lon + d, g_lat + d],
        [g_lon - d, g_lat + d],
        [g_lon - d, g_lat - d],
    ]
    path = _collection(tmp_path, [_feature({"WGBM": 330106001}, ring)])
    assert GridIndex.load(path, "WGS84", {"code": "WGBM"}).lookup(lat, lon) is None
    gcj = GridIndex.load(path, "GCJ02", {"code": "WGBM"})
    assert gcj.lookup(lat, lon).code == "330106001"  # numbers in the file become text
    assert gcj.lookup_many(np.array([lat]), np.array([lon])).tolist() == [0]


def test_demo_cases_carry_their_grid_cell_and_validate(tmp_path: Path, case_validator) -> None:
    result = run_agent(default_config().model_copy(update={"state_dir": tmp_path / "state"}))
    records = [json.loads(p.read_bytes()) for p in (tmp_path / "state" / "outbox" / "cases").glob("*/r*/case.json")]
    assert len({r["id"] for r in records}) == result.summaries[0].cases >= 1  # revision 2 adds the clip
    # the example cells along the track, west to east (the track runs along 30.27415 N)
    along = [(120.1540, 120.1560, "EX-0101"), (120.1560, 120.1575, "EX-0102"), (120.1575, 120.1590, "EX-0103")]
    for record in records:
        case_validator.validate(record)
        lon = record["location"]["lon"]
        code = next(c for west, east, c in along if west <= lon <= east)
        assert record["grid"]["code"] == code
        assert record["grid"]["street"] and record["grid"]["district"] == "示例区（虚构）"


def _feature(properties: dict, ring: list, kind: str = "Polygon") -> dict:
    return {"type": "Feature", "properties": properties, "geometry": {"type": kind, "coordinates": [ring]}}


def _collection(tmp_path: Path, features: list[dict]) -> Path:
    path = tmp_path / "grid.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


SQUARE = [[120.15, 30.27], [120.16, 30.27], [120.16, 30.28], [120.15, 30.28], [120.15, 30.27]]
GOOD = _feature({"code": "G-01"}, SQUARE)


@pytest.mark.parametrize(
    "content, expected",
    [
        # not JSON: where it breaks
        ("{not json", ["not valid JSON at line 1"]),
        # JSON but not a FeatureCollection
        ({"type": "Feature"}, ["expected a GeoJSON FeatureCollection", "'Feature'"]),
        # an empty layer
        ({"type": "FeatureCollection", "features": []}, ["has no features"]),
        # a point where a cell should be: the feature by index and code
        (
            [
                GOOD,
                {
                    "type": "Feature",
                    "properties": {"code": "G-02"},
                    "geometry": {"type": "Point", "coordinates": [120, 30]},
                },
            ],
            ["features[1] (code 'G-02')", "geometry is Point", "Polygon or MultiPolygon"],
        ),
        # a cell without its code says which setting names the property
        ([GOOD, _feature({"name": "x"}, SQUARE)], ["features[1]", "no 'code' property", "grid.fields.code"]),
        # latitude and longitude swapped
        ([_feature({"code": "G-03"}, [[y, x] for x, y in SQUARE])], ["features[0] (code 'G-03')", "swapped"]),
        # a ring that crosses itself
        (
            [
                _feature(
                    {"code": "G-04"},
                    [[120.15, 30.27], [120.16, 30.28], [120.16, 30.27], [120.15, 30.28], [120.15, 30.27]],
                )
            ],
            ["features[0] (code 'G-04')", "Self-intersection", "edges not crossing"],
        ),
        # a ring too short to be a polygon
        ([_feature({"code": "G-05"}, SQUARE[:2])], ["features[0] (code 'G-05')", "malformed Polygon"]),
    ],
)
def test_bad_grid_file_is_refused_naming_file_and_feature(tmp_path: Path, content, expected) -> None:
    path = tmp_path / "grid.geojson"
    if isinstance(content, list):
        content = {"type": "FeatureCollection", "features": content}
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, {"file": "grid.geojson"}))
    message = str(error.value)
    assert "grid.file" in message and str(path) in message
    for text in expected:
        assert text in message


def test_a_long_missing_path_is_named_with_its_file_name(tmp_path: Path) -> None:
    """A box's paths can be long; the error keeps the file name (the end) and stays one readable line."""
    missing = tmp_path / ("district-" * 30) / "grid-2026.geojson"
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, {"file": str(missing)}))
    message = str(error.value)
    assert "grid.file" in message and "grid-2026.geojson" in message and "characters)" in message
    assert len(message) < 800


@pytest.mark.parametrize(
    "grid, expected",
    [
        # a missing file
        ({"file": "nope.geojson"}, ["grid.file", "file not found", "nope.geojson"]),
        # an unknown datum lists the accepted ones
        ({"file": "grid.geojson", "crs": "BD09"}, ["grid.crs", "'BD09'", "'WGS84' or 'GCJ02'"]),
        # a misspelt key
        ({"file": "grid.geojson", "feilds": {}}, ["grid.feilds", "unknown key"]),
    ],
)
def test_bad_grid_settings_are_refused(tmp_path: Path, grid: dict, expected: list[str]) -> None:
    _collection(tmp_path, [GOOD])
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, grid))
    for text in expected:
        assert text in str(error.value)


def test_grid_settings_load(tmp_path: Path) -> None:
    _collection(tmp_path, [_feature({"WGBM": "G-9", "WGMC": "九"}, SQUARE)])
    config = load_config(_config(tmp_path, {"file": "grid.geojson", "fields": {"code": "WGBM", "name": "WGMC"}}))
    assert config.grid.file == tmp_path / "grid.geojson"
    assert config.grid.index().lookup(30.275, 120.155).name == "九"


def _config(tmp_path: Path, grid: dict) -> Path:
    data = {
        "agent_id": "box-1",
        "sources": [{"id": "cam1", "kind": "fixed", "url": "rtsp://10.0.0.1/live"}],
        "detector": {"model": "builtin:garbage"},
        "grid": grid,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_grid_benchmark_completes() -> None:
    """Completes and checks its own answers; its time is for people to read, not for a test to assert."""
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_grid.py"), "--cells", "500", "--points", "1000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "500 cells" in run.stdout and "answers agree" in run.stdout


def test_the_outlines_near_a_position_are_the_cells_around_it_for_the_pages_map(example: GridIndex) -> None:
    near = dict(example.outlines_near(30.27415, 120.15515, 0.0005))
    assert "EX-0101" in near and "EX-0103" not in near  # ~250 m east is outside 0.0005 degrees
    ring = near["EX-0101"]
    assert ring[0] == ring[-1] and len(ring) >= 4 and ring[0] == (120.154, 30.2735)  # (lon, lat), closed
    assert example.outlines_near(39.9042, 116.4074, 0.01) == []

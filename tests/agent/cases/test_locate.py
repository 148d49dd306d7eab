"""Cases are placed where the object is when the geometry is known, and say how they were placed."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from agent.cases.locate import locate
from agent.config import SourceConfig
from agent.geo.geometry import Camera, Pose, ground_to_pixel, local_metres, offset
from streams import Frame, PositionFix

LAT0, LON0 = 30.27415, 120.15515


def frame(fix: PositionFix | None, width: int = 1920, height: int = 1080) -> Frame:
    return Frame("cam", 1, datetime(2026, 11, 20, tzinfo=UTC), 0.0, 0.0, np.zeros((height, width, 3), np.uint8), fix)


def source(sample_clip: Path, **extra) -> SourceConfig:
    return SourceConfig(id="cam", kind=extra.pop("kind", "vehicle"), url=str(sample_clip), **extra)


def box_at(u: float, v: float) -> np.ndarray:
    return np.array([u - 40, v - 60, u + 40, v], np.float32)  # bottom centre at (u, v)


def test_vehicle_with_mounting_places_the_object_ahead(sample_clip: Path) -> None:
    mount = {"hfov_deg": 90, "height_m": 2.0, "pitch_deg": -10, "yaw_offset_deg": 90}  # looks out to the right
    fix = PositionFix(lat=LAT0, lon=LON0, heading_deg=0.0, accuracy_m=3.0, source="nmea")  # driving north
    u, v = ground_to_pixel(0.0, 8.0, Camera(1920, 1080, 90), Pose(2.0, 90, -10))  # a pile 8 m east
    where = locate(frame(fix), source(sample_clip, camera=mount), box_at(u, v))
    assert where.method == "ray_cast"
    assert local_metres(LAT0, LON0, where.lat, where.lon) == pytest.approx((0.0, 8.0), abs=0.05)
    assert 3.0 < where.accuracy_m < 6.0


def test_drone_gimbal_from_dji_telemetry(sample_clip: Path) -> None:
    fix = PositionFix(
        lat=LAT0,
        lon=LON0,
        alt_m=100.0,
        sensor_elevation_deg=-90.0,
        sensor_azimuth_deg=0.0,
        sensor_roll_deg=0.0,
        source="dji-srt",
    )
    where = locate(frame(fix), source(sample_clip, kind="drone", camera={"hfov_deg": 84}), box_at(1920, 540))
    assert where.method == "ray_cast"
    assert local_metres(LAT0, LON0, where.lat, where.lon) == pytest.approx(
        (0, 100 * math.tan(math.radians(42))), abs=0.1
    )


def test_fixed_camera_homography(sample_clip: Path) -> None:
    camera, pose = Camera(1920, 1080, 70), Pose(8, 180, -25)
    refs = [(-10.0, -5.0), (-10.5, 5.0), (-25.0, -10.0), (-24.0, 11.0)]
    points = [{"pixel": ground_to_pixel(n, e, camera, pose), "position": offset(LAT0, LON0, n, e)} for n, e in refs]
    u, v = ground_to_pixel(-15.0, 2.0, camera, pose)
    where = locate(frame(None), source(sample_clip, kind="fixed", homography=points), box_at(u, v))
    assert where.method == "homography"
    assert math.dist(local_metres(LAT0, LON0, where.lat, where.lon), (-15.0, 2.0)) < 0.05


def test_without_geometry_the_camera_position_with_an_honest_accuracy(sample_clip: Path) -> None:
    fix = PositionFix(lat=LAT0, lon=LON0, accuracy_m=4.5, source="nmea")
    where = locate(frame(fix), source(sample_clip), box_at(900, 900))
    assert (where.lat, where.lon, where.method) == (LAT0, LON0, "camera_position:nmea")
    assert where.accuracy_m == pytest.approx(24.5)  # the fix's error plus the distance the camera sees
    assert locate(frame(None), source(sample_clip), box_at(900, 900)) is None  # never invented


def test_degenerate_reference_points_are_a_config_error(sample_clip: Path) -> None:
    from pydantic import ValidationError

    line = [{"pixel": (i * 100.0, 500.0), "position": (LAT0 + i * 1e-5, LON0)} for i in range(4)]
    with pytest.raises(ValidationError, match="do not determine a homography"):
        source(sample_clip, kind="fixed", homography=line)


def test_misb_corners_place_the_image_centre_on_the_frame_centre(sample_clip: Path) -> None:
    from agent.geo.geometry import local_metres as metres
    from streams.telemetry import load_track
    from tests.conftest import need_shared

    fixes = [f for f in load_track(need_shared("telemetry/klv/klvdata_Cheyenne.bin")).fixes if f.corners]
    misses = []
    for fix in fixes[::10]:
        where = locate(frame(fix, 1280, 720), source(sample_clip, kind="drone"), box_at(640, 360))
        assert where.method == "misb_corners"
        centre = fix.frame_center
        slant = fix.slant_range_m
        misses.append(math.dist(metres(centre.lat, centre.lon, where.lat, where.lon), (0, 0)) / slant)
    # a plane through four corners is not the terrain, and the corners are offsets of limited precision
    assert len(misses) >= 30 and max(misses) < 0.01  # measured: median 0.006 %, worst 0.6 % of the slant range

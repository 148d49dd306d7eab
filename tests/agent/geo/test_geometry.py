"""Pixel-to-ground geometry against known answers, synthetic cameras and a real MISB flight."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from agent.geo.geometry import (
    Camera,
    Homography,
    Pose,
    ground_sample_distance_m,
    ground_to_pixel,
    local_metres,
    offset,
    pixel_to_ground,
    ray_cast_error_m,
)
from tests.conftest import need_shared

HD = Camera(1920, 1080, hfov_deg=60)


def test_nadir_edges_by_hand() -> None:
    nadir = Pose(height_m=100, yaw_deg=0, pitch_deg=-90)
    north, east = pixel_to_ground(1920, 540, HD, nadir)  # right edge, middle row
    assert (north, east) == pytest.approx((0, 100 * math.tan(math.radians(30))), abs=1e-6)  # 57.74 m east
    north, east = pixel_to_ground(960, 0, HD, nadir)  # top edge: the image's top faces the heading
    assert (north, east) == pytest.approx((100 * 540 / 960 * math.tan(math.radians(30)), 0), abs=1e-6)
    assert ground_sample_distance_m(100, HD) == pytest.approx(2 * 57.735 / 1920, rel=1e-4)
    facing_east = Pose(height_m=100, yaw_deg=90, pitch_deg=-90)
    north, east = pixel_to_ground(960, 0, HD, facing_east)
    assert east > 30 and abs(north) < 1e-6


def test_nadir_round_trip_within_a_metre() -> None:
    rng = random.Random(1)
    pose = Pose(height_m=100, yaw_deg=37, pitch_deg=-90)
    for _ in range(200):
        north, east = rng.uniform(-25, 25), rng.uniform(-40, 40)
        u, v = ground_to_pixel(north, east, HD, pose)
        back = pixel_to_ground(round(u), round(v), HD, pose)  # pixels are whole numbers
        assert math.dist(back, (north, east)) < 1.0


def test_oblique_round_trip_within_five_percent_of_range_with_attitude_error() -> None:
    rng = random.Random(2)
    true_pose = Pose(height_m=2.5, yaw_deg=80, pitch_deg=-12, roll_deg=1.0)  # a car's camera
    believed = Pose(height_m=2.5, yaw_deg=80.5, pitch_deg=-12.5, roll_deg=1.0)  # mounting known to 0.5 deg
    checked = 0
    for _ in range(300):
        u, v = rng.uniform(0, 1920), rng.uniform(700, 1080)  # below the horizon
        truth = pixel_to_ground(u, v, HD, true_pose)
        if truth is None or math.hypot(*truth) > 20:
            continue
        estimate = pixel_to_ground(u, v, HD, believed)
        assert math.dist(estimate, truth) <= 0.05 * math.hypot(*truth)
        checked += 1
    assert checked > 50


def test_sky_has_no_ground_point() -> None:
    assert pixel_to_ground(960, 0, HD, Pose(height_m=2.5, yaw_deg=0, pitch_deg=0)) is None


def test_fixed_camera_homography_from_four_points_maps_twenty_others() -> None:
    camera, pose = Camera(1920, 1080, 70), Pose(height_m=8, yaw_deg=180, pitch_deg=-25)  # on a pole, facing south
    lat0, lon0 = 30.25961, 120.16321
    references = [(-10.0, -5.0), (-10.5, 5.0), (-25.0, -10.0), (-24.0, 11.0)]  # north, east of the pole (m)
    pixels = [tuple(round(c) for c in ground_to_pixel(n, e, camera, pose)) for n, e in references]
    assert all(0 <= u < 1920 and 0 <= v < 1080 for u, v in pixels)
    fitted = Homography(pixels, [offset(lat0, lon0, n, e) for n, e in references])
    rng = random.Random(3)
    for _ in range(20):
        north = rng.uniform(-24, -11)
        east = rng.uniform(-0.4, 0.4) * -north  # inside the view
        u, v = ground_to_pixel(north, east, camera, pose)
        lat, lon = fitted.to_latlon(round(u), round(v))
        assert math.dist(local_metres(lat0, lon0, lat, lon), (north, east)) < 0.5


def test_homography_needs_four_points() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        Homography([(0, 0)] * 3, [(30.0, 120.0)] * 3)


def test_offset_and_local_metres_are_inverse() -> None:
    lat, lon = offset(30.27415, 120.15515, 123.4, -56.7)
    assert local_metres(30.27415, 120.15515, lat, lon) == pytest.approx((123.4, -56.7), abs=0.01)


def test_misb_frame_centre_agrees_with_the_ray_cast_centre() -> None:
    """Cheyenne 2012 flight: 407 packets give the sensor's position and angles and, separately, the frame
    centre the sensor computed. Casting the image centre onto the plane at the frame centre's elevation
    must land where the packet says, within the spread a 1.5 degree pointing error makes (the sensor
    uses its own terrain model); typically within 1 % of the slant range."""
    from streams.telemetry import load_track

    track = load_track(need_shared("telemetry/klv/klvdata_Cheyenne.bin"))
    relative = []
    for fix in track.fixes:
        centre = fix.frame_center
        if centre is None or centre.alt_m is None or fix.sensor_azimuth_deg is None:
            continue
        height = fix.alt_m - centre.alt_m
        pose = Pose(
            height,
            fix.heading_deg,
            fix.pitch_deg,
            fix.roll_deg,
            fix.sensor_azimuth_deg,
            fix.sensor_elevation_deg,
            fix.sensor_roll_deg or 0.0,
        )
        cast = pixel_to_ground(640, 360, Camera(1280, 720, fix.hfov_deg, fix.vfov_deg), pose)
        truth = local_metres(fix.lat, fix.lon, centre.lat, centre.lon)
        miss = math.dist(cast, truth)
        assert miss <= ray_cast_error_m(*truth, height, attitude_error_deg=1.5)
        slant = math.hypot(math.hypot(*truth), height)
        assert slant == pytest.approx(fix.slant_range_m, rel=0.01)  # tag 21 agrees with the geometry
        relative.append(miss / slant)
    assert len(relative) == 407
    assert statistics.median(relative) < 0.01

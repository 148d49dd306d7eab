"""From a pixel to a place on the ground: pinhole ray casting, image-to-map homographies, offsets.

A drone 120 m up or a car passing at 40 km/h does not stand where the problem is. With the camera's
attitude the ray through the pixel (the box's bottom centre) is intersected with the ground plane;
for a fixed camera a homography fitted to surveyed reference points maps pixels to the map.

Conventions (aerospace): the world is local north-east-down (metres from the camera's ground point);
attitude is yaw (clockwise from north), pitch (up positive; -90 looks straight down) and roll (right
side down positive). A sensor on a gimbal adds its own yaw/pitch/roll relative to the platform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

EARTH_RADIUS_M = 6371008.8


@dataclass(frozen=True)
class Camera:
    """Image size and horizontal field of view; square pixels unless `vfov_deg` is given."""

    width_px: int
    height_px: int
    hfov_deg: float
    vfov_deg: float | None = None

    @property
    def focal_px(self) -> tuple[float, float]:
        fx = (self.width_px / 2) / math.tan(math.radians(self.hfov_deg) / 2)
        fy = fx if self.vfov_deg is None else (self.height_px / 2) / math.tan(math.radians(self.vfov_deg) / 2)
        return fx, fy


@dataclass(frozen=True)
class Pose:
    """Where the camera looks: height above the ground and the attitudes, in degrees."""

    height_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float = 0.0
    sensor_yaw_deg: float = 0.0
    sensor_pitch_deg: float = 0.0
    sensor_roll_deg: float = 0.0


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Body (x forward, y right, z down) to north-east-down: Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    return rz @ ry @ rx


def _camera_to_ned(pose: Pose) -> np.ndarray:
    return rotation(pose.yaw_deg, pose.pitch_deg, pose.roll_deg) @ rotation(
        pose.sensor_yaw_deg, pose.sensor_pitch_deg, pose.sensor_roll_deg
    )


def pixel_to_ground(u: float, v: float, camera: Camera, pose: Pose) -> tuple[float, float] | None:
    """(north, east) metres from the camera's ground point, or None when the ray misses the ground."""
    fx, fy = camera.focal_px
    ray_camera = np.array([1.0, (u - camera.width_px / 2) / fx, (v - camera.height_px / 2) / fy])
    north, east, down = _camera_to_ned(pose) @ ray_camera
    if down <= 1e-9:
        return None  # at or above the horizon
    t = pose.height_m / down
    return float(t * north), float(t * east)


def ground_to_pixel(north_m: float, east_m: float, camera: Camera, pose: Pose) -> tuple[float, float] | None:
    """The pixel that sees a ground point, or None when it is behind the camera."""
    point = np.array([north_m, east_m, pose.height_m])
    x, y, z = _camera_to_ned(pose).T @ point
    if x <= 1e-9:
        return None
    fx, fy = camera.focal_px
    return float(camera.width_px / 2 + fx * y / x), float(camera.height_px / 2 + fy * z / x)


def ground_sample_distance_m(height_m: float, camera: Camera) -> float:
    """Metres per pixel straight down (nadir)."""
    return 2 * height_m * math.tan(math.radians(camera.hfov_deg) / 2) / camera.width_px


def ray_cast_error_m(north_m: float, east_m: float, height_m: float, attitude_error_deg: float = 1.0) -> float:
    """How far a ground point moves when the pointing is off by `attitude_error_deg`: R^2 / h per radian,
    plus the same angle across the line of sight (R per radian)."""
    ground_range = math.hypot(north_m, east_m)
    slant = math.hypot(ground_range, height_m)
    error = math.radians(attitude_error_deg)
    along = error * slant * slant / max(height_m, 1e-3)
    return math.hypot(along, error * slant)


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The position `north_m`, `east_m` from (lat, lon) on a local tangent plane (exact to cm over km)."""
    d_lat = math.degrees(north_m / EARTH_RADIUS_M)
    d_lon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + d_lat, lon + d_lon


def local_metres(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """(north, east) metres of (lat, lon) from (lat0, lon0): the inverse of `offset`."""
    north = math.radians(lat - lat0) * EARTH_RADIUS_M
    east = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    return north, east


class Homography:
    """Image pixels to WGS-84 for a fixed camera, fitted to four or more surveyed reference points.

    Fitted in local metres around the first reference point, where the ground is a plane and the
    numbers are well conditioned; `residual_m` is the worst misfit of the reference points.
    """

    def __init__(self, pixels: list[tuple[float, float]], positions: list[tuple[float, float]]) -> None:
        if len(pixels) < 4 or len(pixels) != len(positions):
            raise ValueError("a homography needs at least 4 pixel/position pairs, as many of each")
        self.origin = positions[0]
        ground = np.array([local_metres(*self.origin, lat, lon) for lat, lon in positions], np.float64)
        image = np.array(pixels, np.float64)
        matrix, _ = cv2.findHomography(image, ground[:, ::-1], 0)  # east as x, north as y
        if matrix is None:
            raise ValueError("the reference points do not determine a homography (three or more on a line?)")
        self.matrix = matrix
        fitted = [self.to_local(u, v) for u, v in pixels]
        self.residual_m = max(math.dist(f, g) for f, g in zip(fitted, ground.tolist(), strict=True))

    def to_local(self, u: float, v: float) -> tuple[float, float]:
        east, north, w = self.matrix @ np.array([u, v, 1.0])
        return north / w, east / w

    def to_latlon(self, u: float, v: float) -> tuple[float, float]:
        return offset(*self.origin, *self.to_local(u, v))

"""Where a case is: the ground point under the box's bottom centre when the camera's geometry is
known, else the camera's own position with an accuracy that says so. Never an invented position.

Methods, best first: `homography` (fixed camera with surveyed reference points), `misb_corners`
(MISB frame corners spanning the image), `ray_cast` (a
drone's or a mounted camera's attitude and height: the ray through the pixel meets the ground),
`camera_position:*` (the object is somewhere in view of the camera).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from agent.config import ReferencePoint, SourceConfig
from agent.geo.earth import Location
from agent.geo.geometry import Camera, Homography, Pose, offset, pixel_to_ground, ray_cast_error_m
from streams import Frame, PositionFix

GPS_DEFAULT_ACCURACY_M = 10.0  # a receiver that reports no accuracy
VIEW_DISTANCE_M = 20.0  # without geometry the object is somewhere in front of the camera
ATTITUDE_ERROR_DEG = 1.0  # mounting or gimbal angles known to about a degree


def locate(frame: Frame, source: SourceConfig, box_xyxy: np.ndarray | None = None) -> Location | None:
    height, width = frame.image.shape[:2]
    if box_xyxy is not None:
        u, v = float((box_xyxy[0] + box_xyxy[2]) / 2), float(box_xyxy[3])  # bottom centre: on the ground
        if source.homography:
            mapping = _homography(tuple(source.homography))
            lat, lon = mapping.to_latlon(u, v)
            return Location(lat, lon, max(mapping.residual_m, 1.0), "homography")
        if frame.fix is not None and frame.fix.corners is not None and len(frame.fix.corners) == 4:
            return _from_corners(frame.fix, u, v, width, height)
        if frame.fix is not None:
            cast = _ray_cast(frame.fix, source, u, v, width, height)
            if cast is not None:
                return cast
    if frame.fix is not None:
        accuracy = (frame.fix.accuracy_m or GPS_DEFAULT_ACCURACY_M) + VIEW_DISTANCE_M
        return Location(frame.fix.lat, frame.fix.lon, accuracy, f"camera_position:{frame.fix.source}")
    if source.position is not None:
        p = source.position
        return Location(p.lat, p.lon, p.accuracy_m, "camera_position:configured")
    return None


def _ray_cast(fix: PositionFix, source: SourceConfig, u: float, v: float, width: int, height: int) -> Location | None:
    mount = source.camera
    hfov = fix.hfov_deg or (mount.hfov_deg if mount else None)
    above_ground = _height(fix, source)
    if hfov is None or above_ground is None:
        return None
    if fix.sensor_elevation_deg is not None:  # a gimbal or sensor that reports where it points
        pose = Pose(
            above_ground,
            fix.heading_deg or 0.0,
            fix.pitch_deg or 0.0,
            fix.roll_deg or 0.0,
            fix.sensor_azimuth_deg or 0.0,
            fix.sensor_elevation_deg,
            fix.sensor_roll_deg or 0.0,
        )
    elif mount is not None and fix.heading_deg is not None:  # a fixed mount on a vehicle that reports its heading
        pose = Pose(above_ground, fix.heading_deg + mount.yaw_offset_deg, mount.pitch_deg, mount.roll_deg)
    else:
        return None
    ground = pixel_to_ground(u, v, Camera(width, height, hfov, fix.vfov_deg), pose)
    if ground is None:
        return None
    lat, lon = offset(fix.lat, fix.lon, *ground)
    error = ray_cast_error_m(*ground, above_ground, ATTITUDE_ERROR_DEG)
    return Location(lat, lon, math.hypot(fix.accuracy_m or GPS_DEFAULT_ACCURACY_M, error), "ray_cast")


def _from_corners(fix: PositionFix, u: float, v: float, width: int, height: int) -> Location:
    """MISB ST 0601 frame corners (upper left, upper right, lower right, lower left) span the image:
    the homography through them places any pixel; as good as the sensor's own terrain model."""
    image = [(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))]
    mapping = Homography(image, [(c.lat, c.lon) for c in fix.corners])
    lat, lon = mapping.to_latlon(u, v)
    footprint_width_m = max(
        math.dist(mapping.to_local(*a), mapping.to_local(*b)) for a, b in ((image[0], image[1]), (image[3], image[2]))
    )
    ten_pixels_m = 10 * footprint_width_m / width  # a box's bottom edge is not exact to the pixel
    return Location(lat, lon, math.hypot(fix.accuracy_m or GPS_DEFAULT_ACCURACY_M, ten_pixels_m), "misb_corners")


def _height(fix: PositionFix, source: SourceConfig) -> float | None:
    """Height above the ground: the mounting's, else altitude over the frame centre (KLV), else DJI's
    height above the take-off point."""
    if source.camera is not None and source.camera.height_m is not None:
        return source.camera.height_m
    if fix.frame_center is not None and fix.frame_center.alt_m is not None and fix.alt_m is not None:
        return fix.alt_m - fix.frame_center.alt_m
    if fix.source == "dji-srt" and fix.alt_m is not None and fix.alt_m > 0:
        return fix.alt_m
    return None


@lru_cache(maxsize=64)
def _homography(points: tuple[ReferencePoint, ...]) -> Homography:
    return Homography([p.pixel for p in points], [p.position for p in points])

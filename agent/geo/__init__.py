"""Where things are: WGS-84/GCJ-02 and distances, a case's Location (`earth`), the camera model and
homographies (`geometry`), GeoJSON polygons (`polygons`) and the grid layer (`grid`). Needs no config."""

from agent.geo.earth import Location, distance_m, wgs84_to_gcj02
from agent.geo.geometry import Camera, Homography, Pose, pixel_to_ground
from agent.geo.grid import GridIndex
from agent.geo.polygons import GeoDataError, read_polygon_features

__all__ = [
    "Camera",
    "GeoDataError",
    "GridIndex",
    "Homography",
    "Location",
    "Pose",
    "distance_m",
    "pixel_to_ground",
    "read_polygon_features",
    "wgs84_to_gcj02",
]

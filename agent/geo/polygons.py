"""Reading and checking the polygons that places are made of: GeoJSON layers (grid cells, zones for
moving cameras) and polygons in image pixels (zones and masks for fixed cameras).

A bad polygon is a start-up error, never a silent miss at run time: a self-crossing ring makes
point-in-polygon answers wrong, and swapped or projected coordinates put every case outside.
Messages name the file and the feature (`features[3] (code 'G-07')`) and say how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape

_POLYGON_TYPES = ("Polygon", "MultiPolygon")


class GeoDataError(ValueError):
    """A GeoJSON file or a polygon cannot be used; the message names the file, the feature and the fix."""


@dataclass(frozen=True)
class PolygonFeature:
    """One polygon feature of a GeoJSON layer, in (lon, lat) degrees as GeoJSON orders them."""

    index: int
    geometry: shapely.Geometry
    properties: dict[str, Any]


def read_polygon_features(path: Path, label_key: str = "name") -> list[PolygonFeature]:
    """Every feature of a GeoJSON FeatureCollection of WGS-84 polygons; GeoDataError on the first bad one.

    `label_key` is the property that names a feature in error messages (the grid code, a zone name).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GeoDataError(f"{path}: cannot read the GeoJSON file ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GeoDataError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise GeoDataError(
            f"{path}: expected a GeoJSON FeatureCollection, found {found!r}; export the layer as GeoJSON"
        )
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise GeoDataError(f"{path}: the FeatureCollection has no features; the layer is empty")
    return [_feature(path, i, f, label_key) for i, f in enumerate(features)]


def _feature(path: Path, index: int, feature: Any, label_key: str) -> PolygonFeature:
    where = f"{path}: features[{index}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise GeoDataError(f"{where}: not a GeoJSON Feature (an object with type 'Feature')")
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise GeoDataError(f"{where}: properties must be an object, not {type(properties).__name__}")
    if label_key in properties:
        where += f" ({label_key} {properties[label_key]!r})"
    geometry = feature.get("geometry")
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in _POLYGON_TYPES:
        raise GeoDataError(f"{where}: geometry is {kind or 'missing'}; give a Polygon or MultiPolygon")
    try:
        polygon = shape(geometry)
    except Exception as exc:  # shapely raises ValueError, TypeError, IndexError or GEOSException here
        raise GeoDataError(f"{where}: malformed {kind} coordinates ({exc}); rings are lists of [lon, lat]") from exc
    problem = polygon_problem(polygon)
    if problem:
        raise GeoDataError(f"{where}: {problem}")
    min_lon, min_lat, max_lon, max_lat = polygon.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise GeoDataError(
            f"{where}: coordinates {polygon.bounds} are not longitude/latitude in degrees; GeoJSON is WGS-84"
            " [lon, lat] (projected metres, or latitude and longitude swapped?)"
        )
    shapely.prepare(polygon)
    return PolygonFeature(index, polygon, properties)


def pixel_polygon(points: Sequence[Sequence[float]]) -> shapely.Polygon:
    """A polygon from image-pixel corners [[x, y], ...]; ValueError naming the corners and what is wrong."""
    corners = [[_number(c) for c in point] for point in points]
    try:
        polygon = shapely.Polygon(points)
    except Exception as exc:  # too few points, wrong nesting
        raise ValueError(f"corners {corners}: not a polygon ({exc}); give at least 3 corners as [[x, y], ...]") from exc
    problem = polygon_problem(polygon)
    if problem:
        raise ValueError(f"corners {corners}: {problem}")
    shapely.prepare(polygon)
    return polygon


def polygon_problem(polygon: shapely.Geometry) -> str | None:
    """Why a polygon would give wrong point-in-polygon answers, or None when it is fine."""
    if polygon.is_empty or polygon.convex_hull.area == 0:
        return "the polygon has no area; give at least 3 corners that do not lie on one line"
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        return f"the polygon is not valid ({reason}); list its corners in order around the area, edges not crossing"
    return None


def _number(value: float) -> float | int:
    """A coordinate as written in a configuration: 120, not 120.0."""
    return int(value) if float(value).is_integer() else round(float(value), 1)


__all__ = ["GeoDataError", "PolygonFeature", "pixel_polygon", "polygon_problem", "read_polygon_features"]

"""The grid layer (网格): which grid cell, street office (街道) and district (区) own a position.

City grids have thousands of cells, so cells sit in a shapely STRtree: a lookup tests only the few
cells whose bounding boxes hold the point, and `lookup_many` answers a whole array in one call.
Where cells overlap (or a point lies on a shared edge) the first cell in the file wins, so the
answer never depends on the index's internal order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from agent.geo.earth import Location, wgs84_to_gcj02
from agent.geo.polygons import GeoDataError, read_polygon_features

DEFAULT_FIELDS = {"code": "code", "name": "name", "street": "street", "district": "district"}


@dataclass(frozen=True)
class GridCell:
    """One grid cell's identity as a case carries it (`grid` in schema case-v1)."""

    code: str
    name: str | None
    street: str | None
    district: str | None

    def to_record(self) -> dict[str, str | None]:
        return {"code": self.code, "name": self.name, "street": self.street, "district": self.district}


class GridIndex:
    """Grid cells in a spatial index; `lookup(lat, lon)` gives the cell holding a WGS-84 position."""

    def __init__(self, cells: list[GridCell], polygons: list[shapely.Geometry], crs: str = "WGS84") -> None:
        if len(cells) != len(polygons):
            raise ValueError(f"{len(cells)} cells but {len(polygons)} polygons")
        self.cells = cells
        self.crs = crs
        self._tree = shapely.STRtree(polygons)

    @classmethod
    def load(cls, path: Path, crs: str = "WGS84", fields: Mapping[str, str] | None = None) -> GridIndex:
        """Read a GeoJSON FeatureCollection of grid cells; GeoDataError naming the file and feature.

        `fields` maps code/name/street/district to the property names the file uses (city layers
        often use their own, such as WGBM for the grid code). `crs` is the datum of the file's
        coordinates: WGS84, or GCJ02 for layers drawn on AutoNavi or Tencent maps.
        """
        names = {**DEFAULT_FIELDS, **(fields or {})}
        features = read_polygon_features(path, label_key=names["code"])
        cells = []
        for feature in features:
            props = feature.properties
            code = _text(props.get(names["code"]))
            if not code:
                raise GeoDataError(
                    f"{path}: features[{feature.index}]: no {names['code']!r} property; every grid cell needs its"
                    " grid code (set grid.fields.code to the property that holds it)"
                )
            cells.append(
                GridCell(
                    code,
                    _text(props.get(names["name"])),
                    _text(props.get(names["street"])),
                    _text(props.get(names["district"])),
                )
            )
        return cls(cells, [f.geometry for f in features], crs)

    def __len__(self) -> int:
        return len(self.cells)

    def lookup(self, lat: float, lon: float) -> GridCell | None:
        """The cell holding a WGS-84 position (its edge included), or None outside every cell."""
        if self.crs == "GCJ02":
            lat, lon = wgs84_to_gcj02(lat, lon)
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return self.cells[int(hits.min())] if len(hits) else None

    def lookup_many(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """For arrays of WGS-84 positions, the index into `cells` of each one's cell, -1 outside all."""
        lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
        if self.crs == "GCJ02":
            converted = np.array([wgs84_to_gcj02(a, o) for a, o in zip(lat, lon, strict=True)]).reshape(-1, 2)
            lat, lon = converted[:, 0], converted[:, 1]
        point_idx, cell_idx = self._tree.query(shapely.points(lon, lat), predicate="intersects")
        first = np.full(len(lat), len(self.cells), dtype=np.int64)
        np.minimum.at(first, point_idx, cell_idx)
        first[first == len(self.cells)] = -1
        return first

    def outlines_near(self, lat: float, lon: float, radius_deg: float) -> list[tuple[str, list[tuple[float, float]]]]:
        """(code, [(lon, lat), ...] of the outer ring) of the cells within `radius_deg` of a position, in the
        layer's own datum: for a map drawn on the box's page."""
        hits = self._tree.query(shapely.box(lon - radius_deg, lat - radius_deg, lon + radius_deg, lat + radius_deg))
        outlines = []
        for i in sorted(int(h) for h in hits):
            geometry = self._tree.geometries[i]
            polygon = max(getattr(geometry, "geoms", [geometry]), key=lambda g: g.area)
            outlines.append((self.cells[i].code, [(x, y) for x, y in polygon.exterior.coords]))
        return outlines

    def grid_for(self, location: Location | None) -> dict[str, str | None] | None:
        """A case's `grid` record: null without a position or outside every cell."""
        if location is None:
            return None
        cell = self.lookup(location.lat, location.lon)
        return cell.to_record() if cell else None


def _text(value: Any) -> str | None:
    """Property values as text: codes are sometimes stored as numbers."""
    if value is None or value == "":
        return None
    return str(value)


__all__ = ["DEFAULT_FIELDS", "GridCell", "GridIndex"]

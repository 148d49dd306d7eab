"""Zones and masks: where a source's detections count.

Fixed cameras have zones and masks drawn in image pixels; a box is placed by its anchor, the bottom
centre, because that is where the object stands on the ground (the top of a tall stall can reach
into a zone it does not stand in). Moving cameras have zones as WGS-84 polygons, tested against the
frame's position. A source with zones raises cases only inside them, and only for the case types
each zone lists; a box anchored in a mask never counts (a timestamp overlay, the car's own bonnet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely

from agent.cases.locate import locate
from agent.config import SourceConfig
from agent.geo.polygons import pixel_polygon, read_polygon_features
from detectors import Detections
from streams import Frame

log = logging.getLogger(__name__)


def anchors_xy(detections: Detections) -> tuple[np.ndarray, np.ndarray]:
    """The bottom centre of every box, in image pixels: (x, y) arrays."""
    xyxy = detections.xyxy
    return (xyxy[:, 0] + xyxy[:, 2]) / 2.0, xyxy[:, 3]


@dataclass(frozen=True)
class PixelZone:
    """A polygon in image pixels and the case types it applies to (empty: every type)."""

    name: str
    polygon: shapely.Polygon
    types: frozenset[str] = frozenset()

    def applies_to(self, case_type: str) -> bool:
        return not self.types or case_type in self.types

    def trigger(self, detections: Detections) -> np.ndarray:
        """True for each box whose anchor lies in the zone (its edge included)."""
        x, y = anchors_xy(detections)
        return np.asarray(shapely.intersects_xy(self.polygon, x, y), dtype=bool)


@dataclass(frozen=True)
class GeoZone:
    """A WGS-84 polygon and the case types it applies to (empty: every type)."""

    name: str
    polygon: shapely.Geometry
    types: frozenset[str] = frozenset()

    def applies_to(self, case_type: str) -> bool:
        return not self.types or case_type in self.types

    def contains(self, lat: float, lon: float) -> bool:
        return bool(shapely.intersects_xy(self.polygon, lon, lat))


def load_geo_zones(path: str) -> list[GeoZone]:
    """Zones for moving cameras from a GeoJSON file; properties `name` and `types` (a list) are optional."""
    zones = []
    for feature in read_polygon_features(path, label_key="name"):
        props = feature.properties
        types = props.get("types") or []
        if isinstance(types, str):
            types = [types]
        zones.append(
            GeoZone(str(props.get("name") or f"features[{feature.index}]"), feature.geometry, frozenset(types))
        )
    return zones


class SourcePlaces:
    """The zones and masks of one source, applied to each frame's detections in one step."""

    def __init__(
        self,
        source: SourceConfig,
        zones: list[PixelZone] | None = None,
        masks: list[shapely.Polygon] | None = None,
        geo_zones: list[GeoZone] | None = None,
    ) -> None:
        self.source = source
        self.zones = zones or []
        self.masks = masks or []
        self.geo_zones = geo_zones or []
        self._size_checked = False

    @classmethod
    def from_config(cls, source: SourceConfig) -> SourcePlaces:
        return cls(
            source,
            zones=[PixelZone(z.name, pixel_polygon(z.polygon_px), frozenset(z.types)) for z in source.zones],
            masks=[pixel_polygon(m) for m in source.masks_px],
            geo_zones=load_geo_zones(str(source.geo_zones)) if source.geo_zones else [],
        )

    @property
    def active(self) -> bool:
        return bool(self.zones or self.masks or self.geo_zones)

    def trigger(self, detections: Detections, case_type: str, position: tuple[float, float] | None) -> np.ndarray:
        """True for each box of `case_type` that counts: inside an applicable zone of every kind the
        source has (pixel zones by the box's anchor, geo zones by the frame's `position` as
        (lat, lon)), and in no mask."""
        keep = np.ones(len(detections), dtype=bool)
        if self.zones:
            inside = np.zeros(len(detections), dtype=bool)
            for zone in self.zones:
                if zone.applies_to(case_type):
                    inside |= zone.trigger(detections)
            keep &= inside
        if self.geo_zones:
            here = position is not None and any(
                z.applies_to(case_type) and z.contains(*position) for z in self.geo_zones
            )
            keep &= here
        if self.masks and keep.any():
            x, y = anchors_xy(detections)
            for mask in self.masks:
                keep &= ~np.asarray(shapely.intersects_xy(mask, x, y), dtype=bool)
        return keep

    def filter(self, frame: Frame, by_type: dict[str, Detections]) -> dict[str, Detections]:
        """The detections that count, grouped by case type as `Pipeline.detect` gives them."""
        if not self._size_checked:
            self._warn_outside(frame.image.shape[1], frame.image.shape[0])
        if not self.active or not by_type:
            return by_type
        position = None
        if self.geo_zones:
            location = locate(frame, self.source)  # the frame's fix, or a fixed camera's configured position
            position = (location.lat, location.lon) if location else None
        kept = {}
        for case_type, detections in by_type.items():
            mask = self.trigger(detections, case_type, position)
            if mask.any():
                kept[case_type] = detections[mask]
            if not mask.all():
                log.debug("%s: %d of %d %s boxes outside zones", self.source.id, (~mask).sum(), len(mask), case_type)
        return kept

    def _warn_outside(self, width_px: int, height_px: int) -> None:
        """Zones drawn for another resolution (the main stream, not the sub-stream) silently match nothing."""
        self._size_checked = True
        frame = shapely.box(0, 0, width_px, height_px)
        named = [("zone", z.name, z.polygon) for z in self.zones]
        named += [("mask", str(i), m) for i, m in enumerate(self.masks)]
        for kind, name, polygon in named:
            if not polygon.intersects(frame):
                log.warning(
                    "%s: %s %s lies outside the %dx%d image; draw it in this stream's pixels",
                    self.source.id,
                    kind,
                    name,
                    width_px,
                    height_px,
                )


__all__ = ["GeoZone", "PixelZone", "SourcePlaces", "anchors_xy", "load_geo_zones"]

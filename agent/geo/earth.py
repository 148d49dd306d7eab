"""Coordinate helpers: WGS-84 to GCJ-02 (the datum of AutoNavi and Tencent maps), distances, and a
case's Location (here, below the configuration and the grid layer that use it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as the GCJ-02 algorithm uses
_EE = 0.00669342162296594323
EARTH_RADIUS_M = 6371008.8


def in_china(lat: float, lon: float) -> bool:
    """The rough box inside which GCJ-02 differs from WGS-84 (outside it the two are equal)."""
    return 72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """Convert a WGS-84 position to GCJ-02 with the published forward algorithm (about 1 m exact)."""
    if not in_china(lat, lon):
        return lat, lon
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    d_lat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    d_lon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    d_lon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lat + d_lat, lon + d_lon


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Location:
    """Where the problem is, WGS-84, with how it was worked out and how far off it may be."""

    lat: float
    lon: float
    accuracy_m: float | None
    method: str

    def to_record(self) -> dict[str, Any]:
        g_lat, g_lon = wgs84_to_gcj02(self.lat, self.lon)
        return {
            "lat": round(self.lat, 7),
            "lon": round(self.lon, 7),
            "crs": "WGS84",
            "gcj02": {"lat": round(g_lat, 7), "lon": round(g_lon, 7)},
            "accuracy_m": None if self.accuracy_m is None else round(self.accuracy_m, 1),
            "method": self.method,
        }

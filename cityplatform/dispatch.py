"""Dispatch fields of a platform case: the grid cell, street office and district from the city's grid
layer (loaded into PostGIS), the type's case code, and its due time counted in working hours."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cityplatform.config import WorkingHours

log = logging.getLogger(__name__)

_MAX_DAYS = 400  # a due time further than this many calendar days away is a configuration error


def due_at(start: datetime, hours: float, calendar: WorkingHours) -> datetime:
    """`start` plus `hours` of working time (weekdays and hours of `calendar`, holidays skipped), in UTC."""
    zone = ZoneInfo(calendar.timezone)
    holidays = {date.fromisoformat(day) for day in calendar.holidays}
    now = start.astimezone(zone)
    left = timedelta(hours=hours)
    for _ in range(_MAX_DAYS):
        day = now.date()
        opens = datetime.combine(day, calendar.start, zone)
        closes = datetime.combine(day, calendar.end, zone)
        if day.isoweekday() in calendar.weekdays and day not in holidays and now < closes:
            now = max(now, opens)
            if now + left <= closes:
                return (now + left).astimezone(ZoneInfo("UTC"))
            left -= closes - now
        now = datetime.combine(day + timedelta(days=1), calendar.start, zone)
    raise ValueError(f"no due time within {_MAX_DAYS} days: check platform.working_hours (weekdays, holidays)")


def load_grid(run, path: Path) -> int:
    """Replace the grid_cells table with the cells of a GeoJSON grid layer (the agent's grid format:
    properties code, name, street, district); the number of cells. ValueError names what is wrong."""
    try:
        layer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"platform.grid {path}: not a readable GeoJSON file ({exc})") from None
    cells = [_cell(path, n, feature) for n, feature in enumerate(layer.get("features") or [])]
    if not cells:
        raise ValueError(f"platform.grid {path}: no features; give the city's grid layer (FeatureCollection)")
    run("DELETE FROM grid_cells", ())
    for code, props, geometry in cells:
        run(
            "INSERT INTO grid_cells VALUES (?, ?, ?, ?, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(?), 4326)))",
            (code, props.get("name"), props.get("street"), props.get("district"), json.dumps(geometry)),
        )
    log.info("platform: %d grid cells loaded from %s", len(cells), path)
    return len(cells)


def _cell(path: Path, n: int, feature: Any) -> tuple[str, dict, dict]:
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        raise ValueError(f"platform.grid {path}: feature {n} is not a GeoJSON Feature with properties")
    props, geometry = feature["properties"], feature.get("geometry")
    code = props.get("code")
    if not isinstance(code, str) or not code:
        raise ValueError(f"platform.grid {path}: feature {n} has no properties.code (the grid cell's code)")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"platform.grid {path}: cell {code} needs a Polygon or MultiPolygon geometry")
    return code, props, geometry


def grid_cell(run, lat: float, lon: float) -> tuple[str, str | None, str | None, str | None] | None:
    """(code, name, street, district) of the cell holding the point, or None outside every cell."""
    row = run(
        "SELECT code, name, street, district FROM grid_cells WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(?, ?), "
        "4326)) ORDER BY code LIMIT 1",
        (lon, lat),
    ).fetchone()
    return tuple(row) if row else None

"""GPX 1.0/1.1 tracks (phone apps, Garmin, dashcams): every `trkpt` with a time becomes a fix.

Read with an incremental parser so that a file cut short (a logger that lost power) keeps the
points before the cut. Elements are matched by local name: GPX 1.0, 1.1 and the Garmin
TrackPointExtension (speed, course) all work.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from streams import PositionFix
from streams.nmea import NMEA_HDOP_TO_METRES

log = logging.getLogger(__name__)

_FIX_QUALITY = {"2d": 1, "3d": 1, "dgps": 2, "pps": 3}  # GPX <fix> to the NMEA GGA scale


def parse_gpx(text: str) -> tuple[list[PositionFix], int]:
    """Returns (fixes, skipped points); a syntax error ends the read and counts as one skip."""
    parser = ET.XMLPullParser(events=("end",))
    fixes: list[PositionFix] = []
    skipped = 0
    try:
        parser.feed(text)
        parser.close()
    except ET.ParseError as exc:
        log.debug("GPX parse stopped: %s", exc)
        skipped += 1
    try:
        for _event, elem in parser.read_events():
            if _local(elem.tag) != "trkpt":
                continue
            fix = _trkpt(elem)
            if fix is None:
                skipped += 1
            else:
                fixes.append(fix)
            elem.clear()
    except ET.ParseError:
        skipped += 1
    return fixes, skipped


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _trkpt(elem: ET.Element) -> PositionFix | None:
    """A fix from one track point; None when its position or time is missing or unreadable."""
    values = {_local(child.tag): (child.text or "").strip() for child in elem.iter() if child is not elem}
    try:
        lat, lon = float(elem.attrib["lat"]), float(elem.attrib["lon"])
        utc = _time(values["time"])
    except (KeyError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or values.get("fix") == "none":
        return None
    hdop = _number(values.get("hdop"))
    return PositionFix(
        lat=lat,
        lon=lon,
        alt_m=_number(values.get("ele")),
        utc=utc,
        accuracy_m=hdop * NMEA_HDOP_TO_METRES if hdop else None,
        heading_deg=_number(values.get("course")),
        speed_mps=_number(values.get("speed")),
        source="gpx",
        fix_quality=_FIX_QUALITY.get(values.get("fix", "")),
    )


def _time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None

"""Position tracks from telemetry sidecars: DJI .SRT subtitles and NMEA 0183 logs.

Bad lines and blocks are skipped with one warning per file that counts them; a file that yields
no position at all raises StreamError so that the operator learns the sidecar is useless.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams import PositionFix, StreamError

log = logging.getLogger(__name__)

NMEA_HDOP_TO_METRES = 5.0  # a consumer GNSS receiver's user range error times HDOP, roughly


@dataclass(frozen=True)
class Track:
    """Position fixes ordered by time, looked up by media offset (sidecars) or by UTC (loggers)."""

    fixes: tuple[PositionFix, ...]
    max_gap_s: float = 2.0

    def at(self, media_s: float, utc: datetime) -> PositionFix | None:
        """The fix nearest in time, or None when the nearest is more than `max_gap_s` away."""
        if not self.fixes:
            return None
        if self.fixes[0].media_s is not None:
            keys = [f.media_s for f in self.fixes]
            target = media_s
        else:
            keys = [f.utc.timestamp() for f in self.fixes]
            target = utc.timestamp()
        i = bisect.bisect_left(keys, target)
        candidates = [j for j in (i - 1, i) if 0 <= j < len(keys)]
        best = min(candidates, key=lambda j: abs(keys[j] - target))
        return self.fixes[best] if abs(keys[best] - target) <= self.max_gap_s else None


def load_track(path: Path) -> Track:
    """Read a sidecar by its suffix (.srt, .nmea/.log/.txt)."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise StreamError(f"telemetry {path}: cannot read ({exc.strerror})") from exc
    suffix = path.suffix.lower()
    if suffix == ".srt":
        fixes, skipped = parse_dji_srt(text)
    elif suffix in {".nmea", ".log", ".txt"}:
        fixes, skipped = parse_nmea(text.splitlines())
    else:
        raise StreamError(f"telemetry {path}: unknown format {suffix!r}; use a DJI .SRT or an NMEA .nmea file")
    if skipped:
        log.warning("telemetry %s: skipped %d unreadable records", path, skipped)
    if not fixes:
        raise StreamError(f"telemetry {path}: no position found in the file; check that it is the right sidecar")
    key = (lambda f: f.media_s) if fixes[0].media_s is not None else (lambda f: f.utc.timestamp())
    return Track(tuple(sorted(fixes, key=key)))


# --- DJI .SRT ---------------------------------------------------------------------------------

_SRT_RANGE = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d{1,3})\s*-->")
_SRT_LATLON = re.compile(r"\[latitude\s*:\s*(-?[\d.]+)\]\s*\[long(?:t)?itude\s*:\s*(-?[\d.]+)\]", re.I)
_SRT_GPS = re.compile(r"GPS\s*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*(?:,\s*(-?[\d.]+)m?\s*)?\)")
_SRT_ALT = re.compile(r"\[(?:altitude|rel_alt)\s*:\s*(-?[\d.]+)", re.I)
_SRT_HEIGHT = re.compile(r"\bH\s+(-?[\d.]+)m")
_SRT_TIME = re.compile(r"(\d{4})[-.](\d{1,2})[-.](\d{1,2})\s+(\d{1,2}):(\d\d):(\d\d)(?:[,.](\d{1,3}))?")


def parse_dji_srt(text: str) -> tuple[list[PositionFix], int]:
    """Parse every DJI SRT dialect we know; returns (fixes, number of skipped blocks).

    Older firmware writes `GPS(lon,lat,alt)`, newer `[latitude: ] [longtitude: ]` (sic); the order in
    GPS() is decided by a range check. A 0,0 position means "no GPS lock" and is skipped. Where a
    block has no time range (Mavic 2 style), its offset is the time since the first block's clock.
    """
    fixes: list[PositionFix] = []
    skipped = 0
    first_clock: datetime | None = None
    for block in re.split(r"\r?\n\s*\r?\n", text):
        if not block.strip():
            continue
        clock = _srt_clock(block)
        first_clock = first_clock or clock
        latlon = _srt_position(block)
        media_s = _srt_offset(block)
        if media_s is None and clock is not None and first_clock is not None:
            media_s = (clock - first_clock).total_seconds()
        if latlon is None or media_s is None:
            skipped += 1 if _looks_like_data(block) else 0
            continue
        lat, lon, alt = latlon
        fixes.append(PositionFix(lat=lat, lon=lon, alt_m=alt, utc=None, media_s=media_s, source="dji-srt"))
    return fixes, skipped


def _looks_like_data(block: str) -> bool:
    return bool(re.search(r"GPS|latitude|-->", block, re.I))


def _srt_offset(block: str) -> float | None:
    m = _SRT_RANGE.search(block)
    if not m:
        return None
    h, mi, s, ms = m.groups()
    return int(h) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _srt_clock(block: str) -> datetime | None:
    m = _SRT_TIME.search(block)
    if not m:
        return None
    y, mo, d, h, mi, s, ms = m.groups()
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((ms or "0").ljust(3, "0")) * 1000)
    except ValueError:
        return None


def _srt_position(block: str) -> tuple[float, float, float | None] | None:
    alt: float | None = None
    m = _SRT_LATLON.search(block)
    if m:
        lat, lon = float(m.group(1)), float(m.group(2))
        a = _SRT_ALT.search(block)
        alt = float(a.group(1)) if a else None
    else:
        g = _SRT_GPS.search(block)
        if not g:
            return None
        first, second = float(g.group(1)), float(g.group(2))
        # DJI's GPS() is longitude first; trust that unless the ranges prove otherwise.
        lat, lon = (first, second) if abs(second) > 90 >= abs(first) else (second, first)
        if g.group(3) is not None:
            alt = float(g.group(3))
    height = _SRT_HEIGHT.search(block)
    if height:
        alt = float(height.group(1))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon, alt


# --- NMEA 0183 --------------------------------------------------------------------------------


def parse_nmea(lines: Iterable[str]) -> tuple[list[PositionFix], int]:
    """Parse GGA and RMC sentences with checksums; returns (fixes, skipped sentences).

    RMC carries the date; a GGA before the first RMC has no date and is skipped. A GGA and an RMC
    of the same second are merged (position from GGA, speed and course from RMC).
    """
    by_time: dict[datetime, PositionFix] = {}
    skipped = 0
    day: datetime | None = None
    pending_gga: list[list[str]] = []
    for raw in lines:
        line = raw.strip()
        if not line.startswith("$"):
            skipped += 1 if line else 0
            continue
        fields = _nmea_fields(line)
        if fields is None:
            skipped += 1
            continue
        kind = fields[0][-3:]
        try:
            if kind == "RMC":
                fix = _rmc(fields)
                if fix is None:
                    continue
                day = fix.utc.replace(hour=0, minute=0, second=0, microsecond=0)
                for gga in pending_gga:
                    _merge(by_time, _gga(gga, day))
                pending_gga.clear()
                _merge(by_time, fix)
            elif kind == "GGA":
                if day is None:
                    pending_gga.append(fields)
                else:
                    _merge(by_time, _gga(fields, day))
        except (ValueError, IndexError):
            skipped += 1
    skipped += len(pending_gga)
    return [by_time[t] for t in sorted(by_time)], skipped


def _nmea_fields(line: str) -> list[str] | None:
    body, _, checksum = line[1:].partition("*")
    if checksum:
        computed = 0
        for ch in body.encode("ascii", errors="replace"):
            computed ^= ch
        if checksum[:2].upper() != f"{computed:02X}":
            return None
    fields = body.split(",")
    return fields if len(fields) > 6 else None


def _coord(value: str, hemisphere: str, degree_digits: int) -> float:
    degrees = int(value[:degree_digits]) + float(value[degree_digits:]) / 60
    return -degrees if hemisphere in ("S", "W") else degrees


def _clock(hhmmss: str, day: datetime) -> datetime:
    h, m, s = int(hhmmss[0:2]), int(hhmmss[2:4]), float(hhmmss[4:])
    return day + timedelta(hours=h, minutes=m, seconds=s)


def _rmc(f: list[str]) -> PositionFix | None:
    if f[2] != "A" or not f[3] or not f[9]:
        return None  # void fix
    d = f[9]
    day = datetime(2000 + int(d[4:6]), int(d[2:4]), int(d[0:2]), tzinfo=UTC)
    return PositionFix(
        lat=_coord(f[3], f[4], 2),
        lon=_coord(f[5], f[6], 3),
        utc=_clock(f[1], day),
        speed_mps=float(f[7]) * 0.514444 if f[7] else None,
        heading_deg=float(f[8]) if f[8] else None,
        source="nmea",
    )


def _gga(f: list[str], day: datetime) -> PositionFix | None:
    if not f[2] or f[6] in ("", "0"):
        return None  # no fix
    hdop = float(f[8]) if len(f) > 8 and f[8] else None
    return PositionFix(
        lat=_coord(f[2], f[3], 2),
        lon=_coord(f[4], f[5], 3),
        alt_m=float(f[9]) if len(f) > 9 and f[9] else None,
        utc=_clock(f[1], day),
        accuracy_m=hdop * NMEA_HDOP_TO_METRES if hdop else None,
        source="nmea",
    )


def _merge(by_time: dict[datetime, PositionFix], fix: PositionFix | None) -> None:
    if fix is None or fix.utc is None:
        return
    old = by_time.get(fix.utc)
    if old is None:
        by_time[fix.utc] = fix
        return
    gga, rmc = (fix, old) if fix.alt_m is not None or fix.accuracy_m is not None else (old, fix)
    by_time[fix.utc] = PositionFix(
        lat=gga.lat,
        lon=gga.lon,
        alt_m=gga.alt_m,
        utc=fix.utc,
        accuracy_m=gga.accuracy_m,
        heading_deg=rmc.heading_deg,
        speed_mps=rmc.speed_mps,
        source="nmea",
    )

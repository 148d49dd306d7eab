"""NMEA 0183 logs: GGA, RMC and VTG from GPS, GLONASS, Galileo, BeiDou and multi-system receivers.

Sentences of one epoch (same time of day) are merged into one fix: position, altitude, HDOP and fix
quality from GGA; date, speed and course from RMC; speed and course from VTG when RMC is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from streams import PositionFix

log = logging.getLogger(__name__)

NMEA_HDOP_TO_METRES = 5.0  # a consumer GNSS receiver's user range error times HDOP, roughly
KNOT_MPS = 0.514444
# GP GPS, GL GLONASS, GA Galileo, GB/BD BeiDou, GQ QZSS, GI NavIC, GN several systems combined
TALKERS = frozenset({"GP", "GL", "GA", "GB", "BD", "GQ", "GI", "GN"})


def parse_nmea(lines: Iterable[str]) -> tuple[list[PositionFix], int]:
    """Parse GGA, RMC and VTG sentences with checksums; returns (fixes, skipped sentences).

    RMC carries the date; GGAs before the first RMC take its date, and are skipped when no RMC
    comes. VTG has no time of its own: it belongs to the epoch of the GGA or RMC before it.
    """
    epochs: dict[datetime, dict[str, float | int | None]] = {}
    skipped = 0
    day: datetime | None = None
    pending: list[tuple[str, list[str], str]] = []  # (kind, fields, time of day) waiting for a date
    last_tod: str | None = None
    for raw in lines:
        line = raw.strip()
        if not line.startswith("$"):
            skipped += 1 if line else 0
            continue
        fields = _nmea_fields(line)
        if fields is None:
            skipped += 1
            continue
        talker, kind = fields[0][:2], fields[0][2:]
        if len(fields[0]) != 5 or talker not in TALKERS or kind not in ("GGA", "RMC", "VTG"):
            continue  # other sentences (GSA, GSV, proprietary) say nothing we use
        try:
            if kind == "VTG":
                if last_tod is None:
                    continue
                tod = last_tod
            else:
                tod = fields[1]
                _clock(tod, datetime(2000, 1, 1, tzinfo=UTC))  # a bad time fails here, not later
                last_tod = tod
            if kind == "RMC" and fields[2] == "A" and fields[9]:
                d = fields[9]
                day = datetime(2000 + int(d[4:6]), int(d[2:4]), int(d[0:2]), tzinfo=UTC)
                for item in pending:
                    _apply(epochs, *item, day)
                pending.clear()
            if day is None:
                pending.append((kind, fields, tod))
            else:
                _apply(epochs, kind, fields, tod, day)
        except (ValueError, IndexError):
            skipped += 1
    skipped += sum(1 for kind, _, _ in pending if kind == "GGA")
    fixes = [_fix(utc, e) for utc, e in sorted(epochs.items()) if e.get("lat") is not None]
    return fixes, skipped


def checksum(body: str) -> str:
    """The two hex digits after '*': XOR of every byte between '$' and '*'."""
    computed = 0
    for ch in body.encode("ascii", errors="replace"):
        computed ^= ch
    return f"{computed:02X}"


def sentence(body: str) -> str:
    """`$body*CS` (for tools and tests that write NMEA)."""
    return f"${body}*{checksum(body)}"


def _nmea_fields(line: str) -> list[str] | None:
    body, _, given = line[1:].partition("*")
    if given and given[:2].upper() != checksum(body):
        return None
    fields = body.split(",")
    return fields if len(fields) > 6 else None


def _coord(value: str, hemisphere: str, degree_digits: int) -> float:
    if hemisphere not in ("N", "S", "E", "W") or "." not in value:
        raise ValueError(f"bad coordinate {value!r} {hemisphere!r}")
    degrees = int(value[:degree_digits]) + float(value[degree_digits:]) / 60
    if not 0 <= float(value[degree_digits:]) < 60:
        raise ValueError(f"bad minutes in {value!r}")
    return -degrees if hemisphere in ("S", "W") else degrees


def _latlon(f: list[str]) -> dict[str, float]:
    """ddmm.mmmm,N,dddmm.mmmm,E as signed degrees, range-checked."""
    lat, lon = _coord(f[0], f[1], 2), _coord(f[2], f[3], 3)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"position {lat}, {lon} out of range")
    return {"lat": lat, "lon": lon}


def _clock(hhmmss: str, day: datetime) -> datetime:
    h, m, s = int(hhmmss[0:2]), int(hhmmss[2:4]), float(hhmmss[4:])
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        raise ValueError(f"bad time {hhmmss!r}")
    return day + timedelta(hours=h, minutes=m, seconds=s)


def _number(value: str) -> float | None:
    return float(value) if value else None


def _apply(epochs: dict[datetime, dict], kind: str, f: list[str], tod: str, day: datetime) -> None:
    """Merge one sentence into its epoch; GGA's position wins over RMC's (it has the altitude)."""
    epoch = epochs.setdefault(_clock(tod, day), {})
    if kind == "GGA":
        if not f[2] or f[6] in ("", "0"):
            return  # no fix
        hdop = _number(f[8]) if len(f) > 8 else None
        epoch.update(
            **_latlon(f[2:6]),
            alt_m=_number(f[9]) if len(f) > 9 else None,
            accuracy_m=hdop * NMEA_HDOP_TO_METRES if hdop else None,
            fix_quality=int(f[6]),
            from_gga=True,
        )
    elif kind == "RMC":
        if f[2] != "A" or not f[3]:
            return  # void fix
        if not epoch.get("from_gga"):
            epoch.update(_latlon(f[3:7]))
        knots, course = _number(f[7]), _number(f[8])
        epoch.update(speed_mps=None if knots is None else knots * KNOT_MPS, heading_deg=course, from_rmc=True)
    elif kind == "VTG" and not epoch.get("from_rmc"):
        if len(f) > 9 and f[9][:1] == "N":
            return  # mode: data not valid
        if f[2] != "T":
            raise ValueError("VTG without its unit letters (NMEA 1.x) is not supported")
        kmh, knots = _number(f[7]), _number(f[5])
        speed = kmh / 3.6 if kmh is not None else None if knots is None else knots * KNOT_MPS
        epoch.update(speed_mps=speed, heading_deg=_number(f[1]))


def _fix(utc: datetime, e: dict) -> PositionFix:
    return PositionFix(
        lat=e["lat"],
        lon=e["lon"],
        alt_m=e.get("alt_m"),
        utc=utc,
        accuracy_m=e.get("accuracy_m"),
        heading_deg=e.get("heading_deg"),
        speed_mps=e.get("speed_mps"),
        source="nmea",
        fix_quality=e.get("fix_quality"),
    )

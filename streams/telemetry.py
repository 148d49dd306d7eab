"""Position tracks from telemetry: DJI .SRT, NMEA 0183, GPX, and MISB KLV (raw or inside MPEG-TS).

Bad lines, blocks and packets are skipped with one warning per file that counts them; a file that
yields no position at all raises NoPositionsError so that the operator learns the sidecar is useless.
A video whose own data stream carries KLV needs no sidecar (`embedded_track`), and telemetry with a
clock tells when a recording without creation_time began (`start_hint`).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from streams import PositionFix, StreamError
from streams.gpx import parse_gpx
from streams.klv_files import KlvStats, NoKlvStreamError, read_klv_file, read_ts_klv
from streams.nmea import parse_nmea
from streams.track import Track

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".srt": "srt", ".nmea": "nmea", ".log": "nmea", ".txt": "nmea", ".gpx": "gpx"}
KLV_SUFFIXES = {".klv", ".bin"}  # raw packet streams, timed by their UTC timestamps
VIDEO_SUFFIXES = {".ts", ".m2ts", ".mts", ".mpg", ".mpeg"}  # KLV beside the video, timed by PTS


class NoPositionsError(StreamError):
    """The telemetry file was read but holds no usable position (empty, all broken, no GPS lock)."""


def load_track(path: Path, max_gap_s: float = 2.0, interpolate: bool = True) -> Track:
    """Read telemetry by its suffix: .srt, .nmea/.log/.txt, .gpx, .klv/.bin, or a .ts video's KLV."""
    suffix = path.suffix.lower()
    if suffix in KLV_SUFFIXES or suffix in VIDEO_SUFFIXES:
        if not path.is_file():
            raise StreamError(f"telemetry {path}: file not found")
        fixes, stats = read_klv_file(path) if suffix in KLV_SUFFIXES else read_ts_klv(path)
        _warn_klv(path, stats)
    elif suffix in TEXT_SUFFIXES:
        try:
            text = path.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as exc:
            raise StreamError(f"telemetry {path}: cannot read ({exc.strerror})") from exc
        kind = TEXT_SUFFIXES[suffix]
        if kind == "srt":
            fixes, skipped = parse_dji_srt(text)
        elif kind == "gpx":
            fixes, skipped = parse_gpx(text)
        else:
            fixes, skipped = parse_nmea(text.splitlines())
        if skipped:
            log.warning("telemetry %s: skipped %d unreadable records", path, skipped)
    else:
        raise StreamError(
            f"telemetry {path}: unknown format {suffix!r}; use a DJI .SRT, NMEA .nmea, .gpx, "
            "KLV .klv/.bin file, or an MPEG-TS .ts video with KLV"
        )
    if not fixes:
        raise NoPositionsError(f"telemetry {path}: no position found in the file; check that it is the right sidecar")
    return Track(tuple(fixes), max_gap_s=max_gap_s, interpolate=interpolate)


def embedded_track(video: Path) -> Track | None:
    """Positions from the KLV in a video's own data streams (MPEG-TS from drones and gimbals), or None
    when the file carries none: then it is footage without positions, as without a sidecar."""
    try:
        fixes, stats = read_ts_klv(video)
    except NoKlvStreamError:
        return None
    if not fixes:
        log.info("%s: its data streams carry no KLV position", video.name)
        return None
    _warn_klv(video, stats)
    log.info("%s: %d positions from the KLV embedded in the video", video.name, len(fixes))
    return Track(tuple(fixes))


def start_hint(track: Track | None, sidecar: Path | None, tz: tzinfo) -> tuple[datetime, str] | None:
    """When recording began by the telemetry's clock, and which telemetry said so; None without a clock.

    KLV fixes timed by media offset carry their precision timestamp (tag 2): start = utc - offset. A raw
    KLV sidecar keyed by UTC starts with the video it was exported from. DJI .SRT clocks are the remote
    controller's local time, read in `tz` (the agent's time zone)."""
    fixes = track.fixes if track is not None else ()
    if fixes and fixes[0].source.startswith("klv"):
        timed = next((f for f in fixes if f.utc is not None), None)
        if timed is not None:
            return timed.utc - timedelta(seconds=timed.media_s or 0.0), "klv"
    if sidecar is not None and sidecar.suffix.lower() == ".srt":
        try:
            clock = srt_start(sidecar.read_text(encoding="utf-8-sig", errors="replace"))
        except OSError:
            return None
        if clock is not None:
            return clock.replace(tzinfo=tz), "srt"
    return None


def _warn_klv(path: Path, stats: KlvStats) -> None:
    if stats.skipped:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(stats.reasons.items()))
        log.warning("telemetry %s: skipped %d broken KLV records (%s)", path, stats.skipped, why)
    if stats.no_position:
        log.info("telemetry %s: %d KLV packets carry no sensor position or time", path, stats.no_position)


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
        try:
            latlon = _srt_position(block)
        except ValueError:  # a number like "31.45.2" that the patterns admit but float() refuses
            skipped += 1
            continue
        media_s = _srt_offset(block)
        if media_s is None and clock is not None and first_clock is not None:
            media_s = (clock - first_clock).total_seconds()
        if latlon is None or media_s is None:
            skipped += 1 if _looks_like_data(block) else 0
            continue
        lat, lon, alt = latlon
        gimbal = _srt_gimbal(block)
        fixes.append(
            PositionFix(
                lat=lat,
                lon=lon,
                alt_m=alt,
                utc=None,
                media_s=media_s,
                source="dji-srt",
                # DJI's gimbal angles are absolute (yaw from north, pitch from the horizon): they go in as
                # the sensor's angles on a level platform facing north, which composes to the same pointing
                sensor_elevation_deg=gimbal[0] if gimbal else None,
                sensor_roll_deg=gimbal[1] if gimbal else None,
                sensor_azimuth_deg=gimbal[2] % 360 if gimbal else None,
            )
        )
    return fixes, skipped


def srt_start(text: str) -> datetime | None:
    """The local clock time at media time 0: the first block's clock less its offset into the video."""
    for block in re.split(r"\r?\n\s*\r?\n", text):
        clock = _srt_clock(block)
        if clock is not None:
            return clock - timedelta(seconds=_srt_offset(block) or 0.0)
    return None


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


_SRT_GIMBAL = re.compile(r"G\.PRY\s*\(\s*(-?[\d.]+)°?\s*,\s*(-?[\d.]+)°?\s*,\s*(-?[\d.]+)°?\s*\)")


def _srt_gimbal(block: str) -> tuple[float, float, float] | None:
    """Gimbal (pitch, roll, yaw) in degrees from a `G.PRY (p°, r°, y°)` field (Phantom 4 RTK and kin)."""
    m = _SRT_GIMBAL.search(block)
    if not m:
        return None
    try:
        return float(m.group(1)), float(m.group(2)), float(m.group(3))
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


__all__ = ["NoPositionsError", "Track", "embedded_track", "load_track", "parse_dji_srt", "parse_nmea", "start_hint"]

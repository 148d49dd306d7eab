"""Telemetry sidecars parse into positions; broken files give a clear error, never a traceback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.config import resources
from streams import PositionFix, StreamError
from streams.nmea import sentence
from streams.telemetry import load_track, parse_nmea
from streams.track import Track
from tests.conftest import need_shared


@pytest.mark.parametrize(
    "name, count, first_lat, first_lon, last_media_s",
    [
        ("mavic_pro.SRT", 468, -20.2533, 149.0251, 468.0),  # GPS(lon,lat,alt), longitude first
        ("old_format.SRT", 468, -20.2533, 149.0251, 468.0),
        ("mavic_2_style.SRT", 468, -20.2533, 149.0251, 467.0),  # no time range: offsets from the clock lines
        ("m2zoom.SRT", 7113, 31.452012, 74.398751, 118.651),  # [latitude : ] [longtitude : ]
        ("p4_rtk.SRT", 55, -34.237922, -58.851745, 54.0),
        ("mavic_mini.SRT", 117, 48.0771, -121.7458, 116.0),
    ],
)
def test_dji_srt_dialects(name: str, count: int, first_lat: float, first_lon: float, last_media_s: float) -> None:
    track = load_track(need_shared(f"telemetry/dji-srt/{name}"))
    assert len(track.fixes) == count
    assert (track.fixes[0].lat, track.fixes[0].lon) == pytest.approx((first_lat, first_lon))
    assert track.fixes[-1].media_s == pytest.approx(last_media_s, abs=1.0)


@pytest.mark.parametrize("name", ["broken_empty.SRT", "broken_empty2.SRT", "mavic_air.SRT"])
def test_srt_without_positions_is_a_clear_error(name: str) -> None:
    with pytest.raises(StreamError, match="no position found"):
        load_track(need_shared(f"telemetry/dji-srt/{name}"))


def test_truncated_srt_keeps_what_it_can(caplog) -> None:
    track = load_track(need_shared("telemetry/dji-srt/broken_incomplete.SRT"))
    assert len(track.fixes) == 19
    assert "skipped 1 unreadable" in caplog.text


def test_sample_nmea_track_and_lookup() -> None:
    track = load_track(resources.builtin("sample-telemetry"))
    assert len(track.fixes) == 25
    first = track.fixes[0]
    assert first.utc == datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    assert (first.lat, first.lon) == pytest.approx((30.27415, 120.15515), abs=1e-5)
    assert first.speed_mps == pytest.approx(10.0, rel=0.01) and first.accuracy_m == pytest.approx(4.5)
    when = datetime(2026, 11, 20, 2, 30, 10, 400000, tzinfo=UTC)
    assert track.nearest(0.0, when) is track.fixes[10]
    at = track.at(0.0, when)  # 40% of the way from the 10 s fix to the 11 s fix
    a, b = track.fixes[10], track.fixes[11]
    assert at.utc == when
    assert (at.lat, at.lon) == pytest.approx((a.lat + 0.4 * (b.lat - a.lat), a.lon + 0.4 * (b.lon - a.lon)), abs=1e-9)
    assert track.at(0.0, datetime(2026, 11, 20, 3, 0, tzinfo=UTC)) is None  # too far from any fix


def with_checksum(body: str) -> str:
    return sentence(body)


def test_nmea_bad_checksums_and_garbage_are_skipped() -> None:
    lines = [
        with_checksum("GPRMC,120000.00,A,3016.4490,N,12009.3090,E,0.0,0.0,201126,,,A"),
        with_checksum("GPRMC,120001.00,A,3016.4490,N,12009.3090,E,0.0,0.0,201126,,,A")[:-2] + "00",  # wrong checksum
        "not nmea at all",
        "$GPGGA,120002.00,3016.44,N,,E,1,09,0.9,12.0,M,7.0,M,,",  # no longitude
        "$GPRMC,120003.00,V,,,,,,,201126,,,N",  # void fix
    ]
    fixes, skipped = parse_nmea(lines)
    assert len(fixes) == 1 and fixes[0].lat == pytest.approx(30.27415)
    assert skipped == 3


def test_unknown_sidecar_format(tmp_path: Path) -> None:
    path = tmp_path / "track.kml"
    path.write_text("<kml/>")
    with pytest.raises(StreamError, match="unknown format"):
        load_track(path)


def test_nmea_talkers_vtg_and_fix_quality() -> None:
    """BeiDou and multi-system talkers, RTK quality from GGA, speed and course from VTG without RMC."""
    lines = [
        with_checksum("GNRMC,080000.00,A,3016.4490,N,12009.3090,E,0.0,0.0,201126,,,D"),
        with_checksum("BDGGA,080001.00,3016.4500,N,12009.3100,E,4,20,0.6,15.2,M,7.0,M,1.0,0001"),
        with_checksum("GNVTG,90.0,T,,M,19.4,N,36.0,K,D"),  # belongs to 08:00:01
        with_checksum("GLGGA,080002.00,3016.4510,N,12009.3110,E,5,12,1.2,15.0,M,7.0,M,,"),
        with_checksum("GPGSV,3,1,12,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45"),  # not a position
        with_checksum("GNVTG,45.0,T,,M,1.0,N,1.9,K,N"),  # mode N: not valid
    ]
    fixes, skipped = parse_nmea(lines)
    assert skipped == 0 and len(fixes) == 3
    rmc, gga_rtk, gga_float = fixes
    assert rmc.fix_quality is None and rmc.speed_mps == 0.0
    assert gga_rtk.fix_quality == 4 and gga_rtk.alt_m == 15.2 and gga_rtk.accuracy_m == pytest.approx(3.0)
    assert (gga_rtk.lat, gga_rtk.lon) == pytest.approx((30 + 16.45 / 60, 120 + 9.31 / 60))
    assert gga_rtk.heading_deg == 90.0 and gga_rtk.speed_mps == pytest.approx(10.0)  # 36 km/h
    assert gga_float.fix_quality == 5 and gga_float.speed_mps is None


GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><trkseg>
  <trkpt lat="30.2741500" lon="120.1551500"><ele>12.5</ele><time>2026-11-20T02:30:00Z</time><hdop>0.8</hdop></trkpt>
  <trkpt lat="30.2742500" lon="120.1552500"><ele>13.5</ele><time>2026-11-20T10:30:02+08:00</time><fix>3d</fix></trkpt>
  <trkpt lat="30.2743" lon="120.1553"><ele>14</ele></trkpt>
  <trkpt lat="95" lon="120"><time>2026-11-20T02:30:03Z</time></trkpt>
  <trkpt lat="30.2744" lon="120.1554"><time>2026-11-20T02:30:04Z</time></trkpt>
 </trkseg></trk>
</gpx>
"""


def test_gpx_track(tmp_path: Path, caplog) -> None:
    path = tmp_path / "ride.gpx"
    path.write_text(GPX)
    track = load_track(path)
    assert len(track.fixes) == 3 and "skipped 2 unreadable" in caplog.text  # no time; latitude 95
    first, second, _ = track.fixes
    assert (first.lat, first.lon, first.alt_m, first.accuracy_m) == (30.27415, 120.15515, 12.5, pytest.approx(4.0))
    assert second.utc == datetime(2026, 11, 20, 2, 30, 2, tzinfo=UTC) and second.fix_quality == 1
    halfway = track.at(0.0, datetime(2026, 11, 20, 2, 30, 1, tzinfo=UTC))
    assert (halfway.lat, halfway.alt_m) == pytest.approx((30.2742, 13.0))


def test_truncated_gpx_keeps_the_points_before_the_cut(tmp_path: Path, caplog) -> None:
    path = tmp_path / "cut.gpx"
    path.write_text(GPX[: GPX.index('<trkpt lat="30.2743"') + 10])
    track = load_track(path)
    assert len(track.fixes) == 2 and "skipped 1 unreadable" in caplog.text
    empty = tmp_path / "empty.gpx"
    empty.write_text("<gpx><trk></trk></gpx>")
    with pytest.raises(StreamError, match="no position found"):
        load_track(empty)


def _fix_at(seconds: float, lat: float, lon: float, heading: float | None = None) -> PositionFix:
    return PositionFix(lat=lat, lon=lon, media_s=seconds, heading_deg=heading, alt_m=100 + seconds)


def test_track_interpolates_and_wraps_angles() -> None:
    track = Track((_fix_at(0, 10.0, 179.9, 350.0), _fix_at(1, 10.1, -179.9, 10.0)))
    mid = track.at(0.25, NOW)
    assert (mid.lat, mid.alt_m, mid.media_s) == pytest.approx((10.025, 100.25, 0.25))
    assert mid.lon == pytest.approx(179.95)  # across the antimeridian, not through 0
    assert mid.heading_deg == pytest.approx(355.0)  # 350 -> 10 turns through north
    assert track.at(0.75, NOW).heading_deg == pytest.approx(5.0)
    assert track.nearest(0.25, NOW) is track.fixes[0]
    assert Track(track.fixes, interpolate=False).at(0.75, NOW) is track.fixes[1]


def test_track_gives_no_position_when_stale() -> None:
    track = Track((_fix_at(0, 10.0, 20.0), _fix_at(1, 10.1, 20.0), _fix_at(10, 11.0, 20.0)), max_gap_s=2.0)
    assert track.at(-2.5, NOW) is None and track.at(12.5, NOW) is None  # before and after the track
    assert track.at(-1.5, NOW) is track.fixes[0]  # near enough: the first fix, not extrapolated
    assert track.at(3.5, NOW) is None and track.at(6.5, NOW) is None  # in a 9 s hole
    assert track.at(2.5, NOW) is track.fixes[1]  # hole too long to blend across; nearest is 1.5 s away
    assert Track(track.fixes, max_gap_s=5.0).at(5.5, NOW).lat == pytest.approx(10.55)  # 9 s <= 2 x 5 s
    assert Track(()).at(0.0, NOW) is None


NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_dji_gimbal_angles_are_read() -> None:
    fix = load_track(need_shared("telemetry/dji-srt/p4_rtk.SRT")).fixes[0]
    # G.PRY (-24.4°, 0.0°, 110.4°): pitch, roll, yaw, absolute
    assert (fix.sensor_elevation_deg, fix.sensor_roll_deg, fix.sensor_azimuth_deg) == (-24.4, 0.0, 110.4)

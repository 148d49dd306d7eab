"""Telemetry sidecars parse into positions; broken files give a clear error, never a traceback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import resources
from streams import StreamError
from streams.telemetry import load_track, parse_nmea
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
    checksum = 0
    for ch in body.encode():
        checksum ^= ch
    return f"${body}*{checksum:02X}"


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

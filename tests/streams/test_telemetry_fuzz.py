"""Random and mutated telemetry never crashes or hangs the parsers, and never yields an impossible fix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import PositionFix
from streams.gpx import parse_gpx
from streams.klv_files import KlvStats, parse_klv_bytes
from streams.nmea import parse_nmea
from streams.telemetry import parse_dji_srt
from streams.track import Track
from tests.conftest import need_shared

FUZZ = settings(max_examples=150, deadline=500, suppress_health_check=[HealthCheck.function_scoped_fixture])

NMEA_SAMPLES = [
    "$GPRMC,120000.00,A,3016.4490,N,12009.3090,E,10.5,45.0,201126,,,A*6B",
    "$GNGGA,120000.00,3016.4490,N,12009.3090,E,4,12,0.8,12.0,M,7.0,M,1.0,0001",
    "$BDVTG,45.0,T,,M,10.5,N,19.4,K,A",
    "$GPGGA,120001.00,3016.4500,S,12009.3100,W,1,08,1.1,13.0,M,7.0,M,,",
]
SRT_SAMPLE = (
    "12\n00:00:11,000 --> 00:00:12,000\n"
    "FrameCnt: 12, DiffTime: 33ms\n2023-05-01 10:00:11.000\n"
    "[iso: 100] [latitude: 31.452012] [longitude: 74.398751] [rel_alt: 50.1 abs_alt: 260.4]\n"
)


def _sane(fixes: list[PositionFix]) -> None:
    for fix in fixes:
        assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180


def _mutate(text: str, data: st.DataObject) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(chars)))
        op = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        ch = data.draw(st.sampled_from(list(",.*$-09AEWNS\n\x00é")))
        if op == "insert" or not chars:
            chars.insert(i, ch)
        elif op == "delete":
            del chars[min(i, len(chars) - 1)]
        else:
            chars[min(i, len(chars) - 1)] = ch
    return "".join(chars)


@FUZZ
@given(st.lists(st.text(max_size=120), max_size=20))
def test_nmea_random_lines(lines: list[str]) -> None:
    fixes, skipped = parse_nmea(lines)
    assert skipped >= 0
    _sane(fixes)


@FUZZ
@given(st.data())
def test_nmea_mutated_sentences(data: st.DataObject) -> None:
    lines = [_mutate(line, data) if data.draw(st.booleans()) else line for line in NMEA_SAMPLES]
    fixes, _ = parse_nmea(lines)
    _sane(fixes)


@FUZZ
@given(st.data())
def test_srt_mutated_and_random_blocks(data: st.DataObject) -> None:
    text = _mutate(SRT_SAMPLE * 3, data) + "\n\n" + data.draw(st.text(max_size=200))
    fixes, skipped = parse_dji_srt(text)
    assert skipped >= 0
    _sane(fixes)


@FUZZ
@given(st.text(max_size=400))
def test_gpx_random_text(text: str) -> None:
    _sane(parse_gpx("<gpx><trk><trkseg>" + text)[0])


@FUZZ
@given(st.binary(max_size=600))
def test_klv_random_bytes(buf: bytes) -> None:
    key = bytes.fromhex("060e2b34020b01010e01030101000000")
    stats = KlvStats()
    fixes = parse_klv_bytes(buf + key + buf, stats)  # with a real key in the middle of the noise
    assert stats.fixes == len(fixes) and stats.skipped >= 1
    _sane(fixes)


@pytest.fixture(scope="module")
def cheyenne_packet() -> bytes:
    data = need_shared("telemetry/klv/klvdata_Cheyenne.bin").read_bytes()
    return data[: data.find(b"\x06\x0e\x2b\x34", 1)]


@FUZZ
@given(index=st.integers(0, 10_000), value=st.integers(0, 255))
def test_klv_one_changed_byte_never_passes(cheyenne_packet: bytes, index: int, value: int) -> None:
    """Every byte of the packet is covered by the checksum or is the checksum: any change is caught."""
    index %= len(cheyenne_packet)
    if cheyenne_packet[index] == value:
        value ^= 0xFF
    mutated = bytearray(cheyenne_packet)
    mutated[index] = value
    stats = KlvStats()
    assert parse_klv_bytes(bytes(mutated), stats) == []
    assert stats.skipped + stats.other_keys >= 1


@FUZZ
@given(cut=st.integers(1, 10_000), junk=st.binary(max_size=40))
def test_klv_truncated_or_padded_packets(cheyenne_packet: bytes, cut: int, junk: bytes) -> None:
    cut = 1 + cut % (len(cheyenne_packet) - 1)  # always a fragment: 1 .. len - 1 bytes of the packet
    stats = KlvStats()
    fixes = parse_klv_bytes(cheyenne_packet[:cut] + junk + cheyenne_packet, stats)
    assert len(fixes) >= 1 and fixes[-1].lat == pytest.approx(41.143845660213316)  # the whole packet survives
    assert stats.skipped + stats.other_keys >= 1  # the fragment is noticed (a bare key reads as an unknown one)


@FUZZ
@given(
    st.lists(
        st.tuples(st.floats(-90, 90), st.floats(-180, 180), st.floats(0, 360, exclude_max=True)),
        min_size=1,
        max_size=30,
    ),
    st.floats(-5, 40),
)
def test_track_lookup_stays_between_neighbours(points: list, t: float) -> None:
    fixes = tuple(
        PositionFix(lat=lat, lon=lon, heading_deg=h, media_s=float(i)) for i, (lat, lon, h) in enumerate(points)
    )
    fix = Track(fixes, max_gap_s=1.0).at(t, datetime(2026, 1, 1, tzinfo=UTC))
    if fix is None:
        assert min(abs(f.media_s - t) for f in fixes) > 1.0
        return
    assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180 and 0 <= fix.heading_deg < 360
    near = [f.lat for f in fixes if abs(f.media_s - t) < 1]
    assert min(near) - 1e-9 <= fix.lat <= max(near) + 1e-9

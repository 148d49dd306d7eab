"""MISB KLV: ST 0601 and EG 0104 packets from raw files and MPEG-TS, and frames synced to them.

Expected values were checked independently: ST 0601 packets against the `klvdata` package (outside
this project, same numbers to the last digit), EG 0104 packets by unpacking their IEEE floats by hand.
"""

from __future__ import annotations

import itertools
import math
import struct
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from streams import StreamError
from streams.klv import KlvError, decode_st0601, read_packet, st0601_checksum
from streams.klv_files import KlvStats, parse_klv_bytes, read_ts_klv
from streams.telemetry import load_track
from streams.track import Track
from streams.video import VideoSource
from tests.conftest import make_clip, need_shared

CHEYENNE = "telemetry/klv/klvdata_Cheyenne.bin"


def _metres(a, b) -> float:
    return math.hypot((b.lat - a.lat) * 111_320, (b.lon - a.lon) * 111_320 * math.cos(math.radians(a.lat)))


@pytest.mark.parametrize(
    "name, count, first, last",
    [
        # (utc, lat, lon) of the first and last packets
        (
            "Day_Flight.klv",
            6,
            (datetime(2009, 6, 17, 16, 53, 5, 99653, tzinfo=UTC), 54.68132328460055, -110.1685597701783),
            (datetime(2009, 6, 17, 16, 56, 35, 443649, tzinfo=UTC), 54.65235567868331, -110.10849413001374),
        ),
        (
            "Night_Flight_IR.klv",
            18,
            (datetime(2009, 6, 19, 7, 26, 22, 351567, tzinfo=UTC), 54.7016311691616, -109.94985043534537),
            (datetime(2009, 6, 19, 7, 30, 40, 108812, tzinfo=UTC), 54.787218908214584, -110.07351871117648),
        ),
        (
            "klvdata_Cheyenne.bin",
            407,
            (datetime(2012, 9, 19, 20, 40, 44, 105300, tzinfo=UTC), 41.143845660213316, -104.80559675246738),
            (datetime(2012, 9, 19, 20, 42, 8, 999262, tzinfo=UTC), 41.12379225023267, -104.77170293441587),
        ),
        (
            "klvdata_DynamicOnlyMISMMSPacketData.bin",
            1,
            (datetime(2009, 1, 12, 22, 8, 22, tzinfo=UTC), 60.176822966978335, 128.42675904204452),
            (datetime(2009, 1, 12, 22, 8, 22, tzinfo=UTC), 60.176822966978335, 128.42675904204452),
        ),
    ],
)
def test_raw_st0601_files(name: str, count: int, first: tuple, last: tuple, caplog) -> None:
    track = load_track(need_shared(f"telemetry/klv/{name}"))
    assert len(track.fixes) == count and not track.by_media_time
    for fix, (utc, lat, lon) in ((track.fixes[0], first), (track.fixes[-1], last)):
        assert fix.utc == utc
        assert (fix.lat, fix.lon) == pytest.approx((lat, lon), abs=1e-9)
        assert fix.source == "klv-st0601"
    assert "skipped" not in caplog.text  # every checksum verified


def test_st0601_packet_fields_and_checksum() -> None:
    """One packet decoded in full; the checksum is ST 0601's 16-bit word sum (stored 0xC850)."""
    buf = need_shared("telemetry/klv/klvdata_DynamicOnlyMISMMSPacketData.bin").read_bytes()
    assert int.from_bytes(buf[-2:], "big") == 0xC850 == st0601_checksum(buf[:-2])
    items = decode_st0601(read_packet(buf))
    # tag 13 by hand: 55 95 b6 6d as int32, scaled by 180 / (2**32 - 2)
    assert items["lat"] == pytest.approx(0x5595B66D * 180 / 0xFFFFFFFE)
    assert items["heading"] == pytest.approx(159.97436484321355)  # tag 5: 0x71c2 * 360 / 65535
    assert items["alt"] == pytest.approx(0xC221 * 19900 / 65535 - 900)  # tag 15
    assert items["pitch"] == pytest.approx(-0.4315317239906003)  # tag 6: int16 0xfd3d over +-20
    assert items["slant"] == pytest.approx(68590.98329874477)
    assert (items["fc_lat"], items["fc_lon"]) == pytest.approx((-10.542388633146132, 29.157890122923018))


def test_cheyenne_flight_is_continuous_with_attitude_and_footprint() -> None:
    track = load_track(need_shared(CHEYENNE))
    fixes = track.fixes
    steps = [(b.utc - a.utc).total_seconds() for a, b in itertools.pairwise(fixes)]
    assert all(0.19 < s < 0.23 for s in steps)  # about 5 Hz, in order, no hole
    assert max(_metres(a, b) for a, b in itertools.pairwise(fixes)) < 20  # < 100 m/s for a Cessna 208B
    assert all(41.12 < f.lat < 41.15 and -104.81 < f.lon < -104.77 for f in fixes)
    assert all(2900 < f.alt_m < 3000 for f in fixes)
    first = fixes[0]
    assert first.heading_deg == pytest.approx(201.2726024261845)
    assert (first.pitch_deg, first.roll_deg) == pytest.approx((4.179815057832574, -4.263435773796807))
    assert (first.sensor_azimuth_deg, first.sensor_elevation_deg) == pytest.approx((266.40625010859367, -26.6015625))
    assert (first.hfov_deg, first.vfov_deg) == pytest.approx((18.652323186083773, 10.49210345616846))
    assert first.slant_range_m == pytest.approx(2096.389653649272)
    center = first.frame_center
    assert (center.lat, center.lon, center.alt_m) == pytest.approx((41.13830836542803, -104.7855039056323, 1855.36126))
    # corner 1 = frame centre + offsets (tags 26/27: +0.0021034882656, +0.0065095980712)
    assert (first.corners[0].lat, first.corners[0].lon) == pytest.approx(
        (41.13830836542803 + 0.0021034882656331133, -104.7855039056323 + 0.006509598071230208)
    )


def test_eg0104_universal_set_in_mpegts() -> None:
    """The aphill files carry the older EG 0104 set: full keys, IEEE floats, no checksum."""
    path = need_shared("telemetry/mpegts-klv/aphill_short.ts")
    track = load_track(path)
    assert len(track.fixes) == 48 and track.by_media_time
    first = track.fixes[0]
    assert first.source == "klv-eg0104"
    assert first.utc == datetime(2008, 9, 15, 21, 46, 59, 356000, tzinfo=UTC)  # key ..07 02 01 01 01 05, uint64 µs
    # by hand: 40 43 20 4c 8b c9 cd 3e and c0 53 57 7a 9e 2b cf 92 as big-endian doubles
    assert (first.lat, first.lon) == (struct.unpack(">d", bytes.fromhex("4043204c8bc9cd3e"))[0], -77.366859)
    assert first.alt_m == pytest.approx(1054.4, abs=1e-3)
    assert first.heading_deg == pytest.approx(360 - 102.7880859375)  # stored as -102.79
    assert first.slant_range_m == pytest.approx(1729.92175)
    assert (first.frame_center.lat, first.frame_center.lon) == pytest.approx((38.245587237812856, -77.3537376710918))
    assert len(first.corners) == 4
    long = load_track(need_shared("telemetry/mpegts-klv/aphill_klv_10s.ts"))
    assert len(long.fixes) == 300 and long.fixes[-1].media_s == pytest.approx(9.977, abs=0.01)
    assert all(38.1 < f.lat < 38.3 and -77.4 < f.lon < -77.3 for f in long.fixes)


@pytest.mark.parametrize(
    "name, no_position",
    [
        ("h264_klv.ts", 0),  # asynchronous KLV: no PTS, timed by the precision timestamps
        ("h265_klv.ts", 0),
        ("mpeg2_klv.ts", 0),
        ("h265_tricky_klv.ts", 60),  # three KLV streams: one synchronous, one with no position, one empty
    ],
)
def test_st0601_in_mpegts(name: str, no_position: int) -> None:
    fixes, stats = read_ts_klv(need_shared(f"telemetry/mpegts-klv/{name}"))
    assert (len(fixes), stats.skipped, stats.no_position) == (30, 0, no_position)
    assert fixes[0].utc == datetime(2008, 10, 24, 0, 13, 29, 913000, tzinfo=UTC)
    assert (fixes[0].lat, fixes[0].lon) == pytest.approx((60.176822966978335, 128.42675904204452))
    for i, fix in enumerate(fixes):  # one packet a frame at 30 fps, from the first frame on
        assert fix.media_s == pytest.approx(i / 30, abs=2e-3)
        assert (fix.utc - fixes[0].utc).total_seconds() == pytest.approx(i / 30, abs=2e-3)


def _klv_by_pts(path: Path) -> tuple[list[tuple[float, float]], float]:
    """(PTS seconds, sensor latitude) of each KLV packet, and the first video PTS, read with PyAV alone."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        start = float(video.start_time * video.time_base)
        out = []
        for packet in container.demux(container.streams.data[0]):
            if packet.size and packet.pts is not None:
                (fix,) = parse_klv_bytes(bytes(packet))
                out.append((float(packet.pts * packet.stream.time_base), fix.lat))
    return out, start


@pytest.mark.parametrize("name", ["aphill_short.ts", "h265_tricky_klv.ts"])
def test_frames_take_the_klv_packet_nearest_in_pts(name: str) -> None:
    path = need_shared(f"telemetry/mpegts-klv/{name}")
    packets, start = _klv_by_pts(path)
    track = load_track(path, interpolate=False)
    frames = list(VideoSource("drone", str(path), sample_fps=1000, track=track).frames())
    assert len(frames) >= 30
    for frame in frames:
        pts = start + frame.media_s
        _, lat = min(packets, key=lambda p: abs(p[0] - pts))
        assert frame.fix is not None and frame.fix.lat == lat, f"frame at {frame.media_s:.3f} s"


def test_frames_between_packets_are_interpolated() -> None:
    """aphill_short: one KLV packet per frame, so frames get the recorded fix; between two packets the
    interpolating track blends them (heading the short way round)."""
    path = need_shared("telemetry/mpegts-klv/aphill_short.ts")
    track = load_track(path)
    frames = list(VideoSource("drone", str(path), sample_fps=1000, track=track).frames())
    for frame in frames:  # the last frame is 33 ms past the last packet: that packet, not extrapolated
        recorded = min(track.fixes, key=lambda f: abs(f.media_s - frame.media_s))
        assert abs(recorded.media_s - frame.media_s) < 0.04
        assert (frame.fix.lat, frame.fix.lon) == pytest.approx((recorded.lat, recorded.lon), abs=1e-9)
    for a, b in itertools.pairwise(track.fixes):
        mid = track.at((a.media_s + b.media_s) / 2, a.utc)
        assert (mid.lat, mid.lon, mid.alt_m) == pytest.approx(
            ((a.lat + b.lat) / 2, (a.lon + b.lon) / 2, (a.alt_m + b.alt_m) / 2)
        )
        turn = (b.heading_deg - a.heading_deg + 180) % 360 - 180
        assert mid.heading_deg == pytest.approx((a.heading_deg + turn / 2) % 360)
        assert mid.utc == a.utc + (b.utc - a.utc) / 2


# --- broken input --------------------------------------------------------------------------------


def test_truncated_klv_keeps_the_packets_before_the_cut(tmp_path: Path, caplog) -> None:
    data = need_shared(CHEYENNE).read_bytes()
    cut = tmp_path / "cut.klv"
    cut.write_bytes(data[: len(data) // 2])
    track = load_track(cut)
    assert 0 < len(track.fixes) < 407
    assert "skipped 1 broken KLV records (1 truncated" in caplog.text


def test_bad_checksum_and_garbage_are_skipped(tmp_path: Path, caplog) -> None:
    data = bytearray(need_shared(CHEYENNE).read_bytes())
    second = data.find(b"\x06\x0e\x2b\x34", 1)
    data[second + 40] ^= 0x01  # one bit in the second packet's payload
    path = tmp_path / "bad.klv"
    path.write_bytes(b"junk!" + bytes(data[:second]) + b"\x00\xff" + bytes(data[second:]))
    track = load_track(path)
    assert len(track.fixes) == 406
    assert "skipped 3 broken KLV records (2 bytes that are not KLV, 1 checksum mismatch)" in caplog.text


def test_a_file_whose_only_packet_fails_its_checksum_is_a_clear_error(caplog) -> None:
    """This published sample's stored checksum (0xAA43) does not match its bytes (0x3E1E), nor any CRC-16."""
    with pytest.raises(StreamError, match="no position found"):
        load_track(need_shared("telemetry/klv/klvdata_DynamicConstantMISMMSPacketData.bin"))
    assert "1 checksum mismatch" in caplog.text


def test_video_without_klv_and_not_a_video(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "plain.ts", seconds=1, size="160x120")
    with pytest.raises(StreamError, match="no data stream"):
        load_track(clip)
    fake = tmp_path / "fake.ts"
    fake.write_text("not a transport stream")
    with pytest.raises(StreamError, match=r"fake\.ts: cannot open"):
        load_track(fake)


def test_bad_lengths_raise_klv_errors() -> None:
    key = bytes.fromhex("060e2b34020b01010e01030101000000")
    for buf in (key, key + b"\x80", key + b"\x89" + b"\x00" * 9, key + b"\x05abc"):
        with pytest.raises(KlvError):
            read_packet(buf)
        stats = KlvStats()
        assert parse_klv_bytes(buf, stats) == [] and stats.skipped == 1


def test_track_of_klv_is_keyed_by_utc_when_raw() -> None:
    track = load_track(need_shared(CHEYENNE))
    assert isinstance(track, Track)
    mid = track.fixes[200]
    assert track.at(0.0, mid.utc) is mid


def test_frames_of_asynchronous_klv_follow_the_precision_timestamps() -> None:
    """h264_klv.ts muxes its KLV (no PTS) three frames early; frame i still gets packet i."""
    path = need_shared("telemetry/mpegts-klv/h264_klv.ts")
    track = load_track(path, interpolate=False)
    frames = list(VideoSource("drone", str(path), sample_fps=1000, track=track).frames())
    assert len(frames) == 30
    assert [f.fix.utc for f in frames] == [f.utc for f in track.fixes]

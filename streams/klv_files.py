"""KLV position tracks from raw packet files (.klv/.bin) and from MPEG-TS data streams.

A broken packet is counted and skipped: the reader resynchronises on the next SMPTE universal label,
so one bad length or checksum costs one packet, not the rest of the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import av

from streams import PositionFix, StreamError
from streams.klv import UL_PREFIX, KlvError, decode_packet, known_set, read_packet

log = logging.getLogger(__name__)


class NoKlvStreamError(StreamError):
    """The video has no data stream at all: it carries no KLV (most MP4s), which is not a fault."""


@dataclass
class KlvStats:
    """What a read found: packets of the sets we decode, fixes made, and what was skipped and why."""

    packets: int = 0
    fixes: int = 0
    skipped: int = 0  # broken packets (truncated, bad length, checksum) and garbage between them
    no_position: int = 0  # sound packets without a sensor position or time
    other_keys: int = 0  # KLV keys of sets we do not decode (their nested keys count too)
    reasons: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def parse_klv_bytes(buf: bytes, stats: KlvStats | None = None) -> list[PositionFix]:
    """Every fix in a buffer of concatenated KLV packets, in file order."""
    stats = stats if stats is not None else KlvStats()
    fixes: list[PositionFix] = []
    i = 0
    resyncing = False  # bytes after a broken packet are its remains, not a new count
    while i < len(buf):
        j = buf.find(UL_PREFIX, i)
        if j != i and not resyncing:
            stats.skip("bytes that are not KLV")
        if j < 0:
            break
        resyncing = False
        try:
            packet = read_packet(buf, j)
            kind = known_set(packet.key)
            fix = decode_packet(packet) if kind else None
        except KlvError as exc:
            stats.skip(_reason(exc))
            i, resyncing = j + 1, True  # the length may be what is wrong: look for the next key inside
            continue
        if kind is None:
            # Not ours; it may also be the head of a cut packet whose "value" swallows the next
            # packet, so step one byte and look for the next key rather than trust its length.
            stats.other_keys += 1
            i, resyncing = j + 1, True
            continue
        i = j + len(packet.raw)
        stats.packets += 1
        if fix is None:
            stats.no_position += 1
            continue
        stats.fixes += 1
        fixes.append(fix)
    return fixes


def _reason(exc: KlvError) -> str:
    """The kind of fault without the numbers, so that counts group."""
    text = str(exc)
    return "checksum mismatch" if text.startswith("checksum") else text.split(":")[0]


def read_klv_file(path: Path) -> tuple[list[PositionFix], KlvStats]:
    """Fixes from a raw KLV file, timed by their precision timestamps (UTC)."""
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise StreamError(f"telemetry {path}: cannot read ({exc.strerror})") from exc
    stats = KlvStats()
    fixes = []
    for fix in parse_klv_bytes(buf, stats):
        if fix.utc is None:
            stats.no_position += 1
            stats.fixes -= 1
        else:
            fixes.append(fix)
    return fixes, stats


def read_ts_klv(path: Path) -> tuple[list[PositionFix], KlvStats]:
    """Fixes from the KLV data streams of an MPEG-TS (or any container PyAV reads), timed by media offset.

    `media_s` is measured from the first video frame, as `VideoSource` measures frames, so the two
    line up. Synchronous KLV carries a PTS; asynchronous KLV has none (see `_async_time`).
    """
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise StreamError(f"telemetry {path}: cannot open ({getattr(exc, 'strerror', None) or exc})") from exc
    stats = KlvStats()
    fixes: list[PositionFix] = []
    try:
        data = list(container.streams.data)  # any data stream: only SMPTE-keyed packets are decoded
        if not data:
            raise NoKlvStreamError(f"telemetry {path}: no data stream in the file; it carries no KLV metadata")
        video = container.streams.video[0] if container.streams.video else None
        wanted = [*data, video] if video is not None else data
        start = _start_s(video) or 0.0
        mux_s = start  # time of the last video packet demuxed, for KLV without a PTS
        anchors: dict[int, tuple[datetime, float]] = {}
        try:
            for packet in container.demux(wanted):
                if packet.size == 0:
                    continue
                if packet.stream.type == "video":
                    if packet.pts is not None:
                        mux_s = float(packet.pts * packet.stream.time_base)
                    continue
                pts_s = None if packet.pts is None else float(packet.pts * packet.stream.time_base)
                for fix in parse_klv_bytes(bytes(packet), stats):
                    at_s = pts_s if pts_s is not None else _async_time(fix, anchors, packet.stream.index, mux_s)
                    fixes.append(replace(fix, media_s=at_s - start))
        except av.FFmpegError as exc:
            stats.skip("demux error")
            log.warning("telemetry %s: demuxing stopped early: %s", path, exc)
    finally:
        container.close()
    return fixes, stats


def _async_time(fix: PositionFix, anchors: dict[int, tuple[datetime, float]], stream: int, mux_s: float) -> float:
    """Media time of a KLV packet without PTS: the first one of a stream is placed where it was muxed,
    the later ones by their precision timestamps from there (muxers run KLV a few frames ahead)."""
    if fix.utc is None:
        return mux_s
    first_utc, first_s = anchors.setdefault(stream, (fix.utc, mux_s))
    return first_s + (fix.utc - first_utc).total_seconds()


def _start_s(video) -> float | None:
    if video is None or video.start_time is None:
        return None
    return float(video.start_time * video.time_base)

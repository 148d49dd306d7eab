"""Evidence clips cut without re-encoding: encoded packets remuxed into an MP4.

Like DeepStream's smart record, a clip runs from the keyframe at or before `t - pre_s` to `t + post_s`
and copies the camera's own packets: no decoder or encoder runs, so cutting costs milliseconds and the
inspector sees exactly what the camera sent. A clip must start on a keyframe, so its pre-roll is as
long as the keyframe interval allows; the log says when it differs from what was asked.

Live cameras are cut from the source's PacketRing; recorded files from the file itself (seek to the
keyframe, remux to the end), which needs no memory while the file is read.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from streams.packets import EncodedPacket, PacketRing, StreamParams

log = logging.getLogger(__name__)

PREROLL_TOLERANCE_S = 1.0  # a pre-roll this much longer or shorter than asked is worth a log line


@dataclass(frozen=True)
class Clip:
    """An MP4 and the media times it covers (the times the source's Frames carry)."""

    data: bytes
    start_s: float  # media time of its first (key)frame
    end_s: float  # media time of its last frame
    packets: int


class ClipError(Exception):
    """No clip can be cut: nothing buffered around the time, or the file cannot be read."""


def cut_from_ring(
    ring: PacketRing, t_s: float, pre_s: float, post_s: float, max_bytes: int, label: str = "clip"
) -> Clip:
    """The clip around media time `t_s` from what the ring holds now."""
    return cut_packets(ring.snapshot(), t_s, pre_s, post_s, max_bytes, label)


def cut_from_file(path: Path, t_s: float, pre_s: float, post_s: float, max_bytes: int, label: str = "clip") -> Clip:
    """The clip around media time `t_s` (seconds from the first frame, as the file's Frames carry)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise ClipError(f"{label}: cannot open {path}: {exc}") from exc
    try:
        if not container.streams.video:
            raise ClipError(f"{label}: {path} has no video stream")
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        origin_s = (stream.start_time or 0) * tb
        start_s = max(0.0, t_s - pre_s)
        container.seek(int((start_s + origin_s) / tb), stream=stream, backward=True, any_frame=False)
        params = StreamParams(stream)
        packets: list[EncodedPacket] = []
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if not packets and not packet.is_keyframe:
                continue  # a seek lands on a keyframe; skip anything a demuxer hands before it
            stamp = packet.pts if packet.pts is not None else packet.dts
            media_s = (stamp or 0) * tb - origin_s
            packets.append(
                EncodedPacket(
                    bytes(packet), packet.pts, packet.dts, packet.duration or 0, packet.is_keyframe, media_s, params
                )
            )
            if _decode_s(packets[-1]) > t_s + post_s:
                break
    except av.FFmpegError as exc:
        raise ClipError(f"{label}: cannot read {path}: {exc}") from exc
    finally:
        container.close()
    return cut_packets(packets, t_s, pre_s, post_s, max_bytes, label)


def cut_packets(
    packets: Sequence[EncodedPacket], t_s: float, pre_s: float, post_s: float, max_bytes: int, label: str = "clip"
) -> Clip:
    """Pick the packets from the keyframe at or before `t_s - pre_s` to `t_s + post_s` and remux them."""
    if not packets:
        raise ClipError(f"{label}: no packets buffered")
    first, last = _select(packets, t_s, pre_s, post_s, label)
    first, last = _fit(packets, first, last, t_s, max_bytes, label)
    chosen = packets[first : last + 1]
    start_s = chosen[0].media_s
    end_s = max(p.media_s for p in chosen)
    preroll = t_s - start_s
    if preroll < pre_s - PREROLL_TOLERANCE_S:
        log.info("%s: pre-roll %.1f s, not %.1f s: no earlier keyframe buffered", label, preroll, pre_s)
    elif preroll > pre_s + PREROLL_TOLERANCE_S:
        log.info(
            "%s: pre-roll %.1f s, not %.1f s: the keyframe interval is long (clips start on a keyframe)",
            label,
            preroll,
            pre_s,
        )
    if end_s < t_s + post_s - PREROLL_TOLERANCE_S:
        log.info("%s: clip ends %.1f s after the event, not %.1f s: the video ended", label, end_s - t_s, post_s)
    return Clip(remux(chosen), start_s, end_s, len(chosen))


def _decode_s(packet: EncodedPacket) -> float:
    """Media time at which the packet is decoded (its dts), from its presentation time."""
    if packet.pts is None or packet.dts is None:
        return packet.media_s
    return packet.media_s - (packet.pts - packet.dts) * float(packet.params.time_base)


def _select(packets: Sequence[EncodedPacket], t_s: float, pre_s: float, post_s: float, label: str) -> tuple[int, int]:
    """(first, last) indices: one connection's packets, a keyframe first, decode order up to the end."""
    nearest = min(range(len(packets)), key=lambda i: abs(packets[i].media_s - t_s))
    params = packets[nearest].params  # a reconnect starts a new timeline: never mix two
    same = [i for i, p in enumerate(packets) if p.params is params]
    keyframes = [i for i in same if packets[i].keyframe]
    if not keyframes:
        raise ClipError(f"{label}: no keyframe buffered around {t_s:.1f} s")
    before = [i for i in keyframes if packets[i].media_s <= t_s - pre_s + 1e-6]
    first = before[-1] if before else keyframes[0]
    if packets[first].media_s > t_s + post_s:
        raise ClipError(f"{label}: the buffer holds nothing between {t_s - pre_s:.1f} s and {t_s + post_s:.1f} s")
    last = first
    for i in same:
        if i > first and _decode_s(packets[i]) <= t_s + post_s:
            last = i  # decode order: every frame shown before the end, and the frames they refer to
    return first, last


def _fit(
    packets: Sequence[EncodedPacket], first: int, last: int, t_s: float, max_bytes: int, label: str
) -> tuple[int, int]:
    """Shrink [first, last] under `max_bytes`: a later keyframe (up to the event) first, then the tail."""
    size = sum(len(packets[i].data) for i in range(first, last + 1))
    if size <= max_bytes:
        return first, last
    asked = size
    params = packets[first].params
    later = [i for i in range(first + 1, last + 1) if packets[i].keyframe and packets[i].params is params]
    for i in later:
        if size <= max_bytes or packets[i].media_s > t_s:
            break
        size -= sum(len(packets[j].data) for j in range(first, i))
        first = i
    while last > first and size > max_bytes:
        size -= len(packets[last].data)
        last -= 1
    log.warning(
        "%s: clip cut to %d bytes (it would be %d; evidence.clip_max_bytes is %d)", label, size, asked, max_bytes
    )
    return first, last


def remux(packets: Sequence[EncodedPacket]) -> bytes:
    """The packets as an MP4, timestamps rebased to the first packet's; their payloads are not touched."""
    params: StreamParams = packets[0].params
    base = packets[0].dts if packets[0].dts is not None else (packets[0].pts or 0)
    out_file = io.BytesIO()
    with av.open(out_file, "w", format="mp4") as output:  # no faststart: it reopens the output by name
        stream = output.add_stream_from_template(params.template)
        for item in packets:
            packet = av.Packet(item.data)
            dts = item.dts if item.dts is not None else item.pts
            pts = item.pts if item.pts is not None else dts
            packet.pts = None if pts is None else pts - base
            packet.dts = None if dts is None else dts - base
            packet.duration = item.duration
            packet.time_base = params.time_base
            packet.is_keyframe = item.keyframe
            packet.stream = stream
            output.mux(packet)
    return out_file.getvalue()

"""One frame decoded from a ring of encoded packets: the record input's frame nearest an instant.

A two-input camera's main stream is kept encoded (`streams.record`); a case needs one full-resolution
frame of it for its snapshot, so only then is it decoded, up to the frame shown nearest the instant from
the last keyframe at or before that frame: at most one keyframe interval of decoding, once per case.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

import av
import numpy as np

from streams.packets import EncodedPacket

log = logging.getLogger(__name__)

# A 1080p decoder holds about 25 MB of frames while it runs: cameras raising cases at the same moment would
# hold one each. Decodes beyond the cores only share them, so at most one a core runs at once.
_DECODES = threading.BoundedSemaphore(len(os.sched_getaffinity(0)))


def frame_near(packets: Sequence[EncodedPacket], t_s: float) -> tuple[np.ndarray, float] | None:
    """(BGR image, its media time) of the frame shown nearest media time `t_s`, or None when the
    packets hold no keyframe of the connection around `t_s` (or cannot be decoded)."""
    if not packets:
        return None
    closest = min(packets, key=lambda p: abs(p.media_s - t_s))
    params = closest.params  # one connection: a reconnect starts another timeline
    same = [p for p in packets if p.params is params]
    # an instant just before a keyframe is shown by that keyframe: decoding the interval before it is waste
    nearest = next(i for i, p in enumerate(same) if p is closest)
    start = next((i for i in range(nearest, -1, -1) if same[i].keyframe), None)
    if start is None:
        start = next((i for i, p in enumerate(same) if p.keyframe), None)
        if start is None:
            return None
    tb = float(params.time_base)
    offset = next((p.media_s - p.pts * tb for p in same[start:] if p.pts is not None), None)
    if offset is None:
        return None
    with _DECODES:
        return _decode_nearest(same[start:], t_s, offset)


def _decode_nearest(packets: Sequence[EncodedPacket], t_s: float, offset: float) -> tuple[np.ndarray, float] | None:
    """Decode from `packets[0]` (a keyframe) until the frame shown nearest `t_s` has come out."""
    params = packets[0].params
    tb = float(params.time_base)
    codec = av.CodecContext.create(params.codec, "r")
    codec.extradata = params.extradata
    codec.thread_count = 1
    best: tuple[float, av.VideoFrame] | None = None
    passed = False  # a frame shown at or after `t_s` came out: frames come in display order, none later is nearer
    try:
        for item in [*packets, None]:
            frames = codec.decode(None if item is None else _packet(item))
            for vframe in frames:
                if vframe.pts is None:
                    continue
                shown_s = offset + vframe.pts * tb
                if best is None or abs(shown_s - t_s) < abs(best[0] - t_s):
                    best = (shown_s, vframe)
                passed = passed or shown_s >= t_s
            if passed:
                break
    except av.FFmpegError as exc:
        log.warning("cannot decode the record input around %.1f s: %s", t_s, exc)
        if best is None:
            return None
    if best is None:
        return None
    return best[1].to_ndarray(format="bgr24"), best[0]


def _packet(item: EncodedPacket) -> av.Packet:
    packet = av.Packet(item.data)
    packet.pts, packet.dts = item.pts, item.dts
    packet.time_base = item.params.time_base
    return packet

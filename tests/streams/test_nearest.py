"""The record input's frame nearest an instant, decoded from a ring of real H.264 packets (ffmpeg's test
pattern, a keyframe a second): the right frame, and cameras raising cases at once decoding a few at a time."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest

from streams import nearest
from streams.nearest import frame_near
from streams.packets import EncodedPacket, StreamParams
from tests.conftest import make_clip

RATE = 15


@pytest.fixture(scope="module")
def packets(tmp_path_factory: pytest.TempPathFactory) -> list[EncodedPacket]:
    """Every packet of a 3-s 1280x720 clip as the ring holds them, timed by their media time."""
    clip = make_clip(tmp_path_factory.mktemp("near") / "main.mp4", seconds=3, size="1280x720", rate=RATE)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        params, tb = StreamParams(stream), float(stream.time_base)
        return [
            EncodedPacket(bytes(p), p.pts, p.dts, p.duration or 0, p.is_keyframe, p.pts * tb, params)
            for p in container.demux(stream)
            if p.size
        ]


def decoded_frames(clip_packets: list[EncodedPacket]) -> list[np.ndarray]:
    """Every frame of the clip, decoded straight through: what the nearest frame must equal."""
    codec = av.CodecContext.create(clip_packets[0].params.codec, "r")
    codec.extradata = clip_packets[0].params.extradata
    images = []
    for item in [*clip_packets, None]:
        packet = None if item is None else av.Packet(item.data)
        if packet is not None:
            packet.pts, packet.dts = item.pts, item.dts
        images += [f.to_ndarray(format="bgr24") for f in codec.decode(packet)]
    return images


def test_the_frame_nearest_the_instant_comes_from_its_last_keyframe(packets: list[EncodedPacket]) -> None:
    frames = decoded_frames(packets)
    for t_s in (0.0, 0.52, 1.47, 2.87):  # none halfway between two frames
        found = frame_near(packets, t_s)
        assert found is not None
        image, shown_s = found
        index = round(t_s * RATE)
        assert shown_s == pytest.approx(index / RATE, abs=1e-3)
        assert np.array_equal(image, frames[index])


def test_an_instant_just_before_a_keyframe_decodes_that_keyframe_only(
    packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a detection 20 ms before the record input's keyframe is shown by the keyframe: decoding the second of
    # frames before it (a whole keyframe interval, the largest part of a case's cost) found the same frame
    decode, handed = nearest._decode_nearest, []
    monkeypatch.setattr(nearest, "_decode_nearest", lambda p, *rest: handed.append(p) or decode(p, *rest))
    keyframe_s = next(p.media_s for p in packets if p.keyframe and p.media_s > 0.5)
    found = frame_near(packets, keyframe_s - 0.02)
    assert found is not None
    assert found[1] == pytest.approx(keyframe_s, abs=1e-3)
    assert np.array_equal(found[0], decoded_frames(packets)[round(keyframe_s * RATE)])
    assert handed[0][0].media_s == pytest.approx(keyframe_s), "decoding began a keyframe interval earlier"


def test_cases_at_the_same_moment_decode_at_most_one_a_core_and_each_gets_its_frame(
    packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    # each decode at once holds a decoder's frames (about 25 MB at 1080p): 32 cameras with a case at the
    # same moment held 32 of them
    decode, lock, running, most = nearest._decode_nearest, threading.Lock(), [0], [0]

    def counted(*args):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return decode(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(nearest, "_decode_nearest", counted)
    cases = 3 * len(os.sched_getaffinity(0))
    start = threading.Barrier(cases)

    def one(t_s: float):
        start.wait()
        return frame_near(packets, t_s)

    times = [(14 + n % 20) / RATE + 0.01 for n in range(cases)]  # near a frame, not halfway
    with ThreadPoolExecutor(cases) as pool:
        found = list(pool.map(one, times))
    assert most[0] <= len(os.sched_getaffinity(0))
    frames = decoded_frames(packets)
    assert all(np.array_equal(image, frames[round(t * RATE)]) for (image, _), t in zip(found, times, strict=True))


def test_packets_without_a_keyframe_give_nothing(packets: list[EncodedPacket]) -> None:
    assert frame_near([p for p in packets if not p.keyframe], 1.0) is None
    assert frame_near([], 1.0) is None

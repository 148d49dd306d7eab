"""Sampling per kind of camera: motion gate for fixed cameras, distance for moving ones."""

from __future__ import annotations

import itertools

import av
import numpy as np

from streams import PositionFix
from streams.sampling import DistanceSampler, MotionGate, TimeSampler, luma


def yuv_frame(image: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


def still_and_moving(
    fps: int, seconds: int, moving_from_s: float, moving_to_s: float
) -> list[tuple[float, av.VideoFrame]]:
    """A grey scene at `fps`; a bright square crosses it between the two times."""
    frames = []
    for i in range(fps * seconds):
        t = i / fps
        image = np.full((180, 320, 3), 90, np.uint8)
        if moving_from_s <= t < moving_to_s:
            x = int(10 + 40 * (t - moving_from_s)) % 280
            image[60:100, x : x + 40] = 230
        frames.append((t, yuv_frame(image)))
    return frames


def test_luma_is_the_y_plane() -> None:
    frame = yuv_frame(np.full((36, 64, 3), 200, np.uint8))
    y = luma(frame)
    assert y.shape == (36, 64) and abs(y.mean() - (16 + 219 * 200 / 255)) <= 2  # limited-range BT.601 luma


def test_time_sampler_keeps_the_rate() -> None:
    sampler = TimeSampler(2)
    picked = [t for t in np.arange(0, 5, 0.04) if sampler.wants(None, float(t), None)]
    assert len(picked) == 10 and picked[1] - picked[0] >= 0.5 - 1e-6


def test_motion_gate_detects_while_things_move_and_idles_otherwise() -> None:
    gate = MotionGate(fps=2, idle_every_s=5, hold_s=2)
    picked = [t for t, frame in still_and_moving(10, 30, 10, 14) if gate.wants(frame, t, None)]
    assert picked[0] == 0.0  # the first look at the scene
    quiet = [t for t in picked if t >= 17.5]  # the square has gone and the background has settled
    assert len(quiet) >= 2 and all(b - a >= 4.9 for a, b in itertools.pairwise(quiet))
    assert len([t for t in picked if 10 <= t < 14]) >= 7  # 2 a second while the square moves
    assert len([t for t in picked if 3 <= t < 10]) <= 2  # nothing moves: only the idle check
    assert len(picked) <= 25 and gate.motion_checks <= 5 * 30 + 1  # the luma check runs 5 times a second


def fix(east_m: float) -> PositionFix:
    return PositionFix(lat=30.0, lon=120.0 + east_m / (111320 * np.cos(np.radians(30.0))))


def test_distance_sampler_every_n_metres_and_idle_when_stopped() -> None:
    sampler = DistanceSampler(every_m=5, fps=10, idle_every_s=5)
    picked = []
    for i in range(200):  # 10 frames a second for 20 s: 10 m/s for 10 s, then stopped
        t = i / 10
        east = min(t, 10.0) * 10
        if sampler.wants(None, t, fix(east)):
            picked.append(t)
    moving, stopped = [t for t in picked if t < 10], [t for t in picked if t >= 10.05]
    assert 19 <= len(moving) <= 21  # 100 m at one frame per 5 m
    assert stopped == [15.0] or len(stopped) == 2  # standing: one frame every 5 s


def test_distance_sampler_falls_back_to_time_without_position() -> None:
    sampler = DistanceSampler(every_m=5, fps=1, idle_every_s=5)
    assert sum(sampler.wants(None, i / 10, None) for i in range(100)) == 10

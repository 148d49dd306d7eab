"""Recorded files: timestamps from the container, keyframes-only decoding for sparse batch work."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from streams.video import VideoSource
from tests.conftest import make_clip


def test_frames_carry_the_recording_time(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "stamped.mp4", seconds=3, size="320x180", rate=10, creation_time="2026-11-20T02:30:00Z")
    frames = list(VideoSource("cam", str(clip), sample_fps=2).frames())
    assert [round(f.media_s, 2) for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert frames[2].utc == datetime(2026, 11, 20, 2, 30, 1, tzinfo=UTC)
    assert frames[0].image.shape == (180, 320, 3)


def test_keyframes_only_decodes_one_frame_per_gop(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "gop15.mp4", seconds=4, rate=15)  # a keyframe every 15 frames
    full = VideoSource("cam", str(clip), sample_fps=1)
    assert len(list(full.frames())) == 4 and full.stats.decoded == 60
    sparse = VideoSource("cam", str(clip), sample_fps=1, keyframes_only=True)
    frames = list(sparse.frames())
    assert sparse.stats.decoded == 4  # the other 56 frames were never decoded
    assert [round(f.media_s) for f in frames] == [0, 1, 2, 3]


def test_a_given_start_time_overrides_the_container(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2)
    start = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    frames = list(VideoSource("cam", str(clip), sample_fps=1, start_utc=start).frames())
    assert [f.utc for f in frames] == [start, datetime(2026, 11, 20, 2, 30, 1, tzinfo=UTC)]

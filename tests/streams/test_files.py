"""Recorded files: timestamps from the container, keyframes-only decoding for sparse batch work."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.health import SourceStats, State
from streams.live import LiveOptions
from streams.packets import PacketRing
from streams.record import RecordReader
from streams.video import VideoSource, truncation
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


def test_a_file_at_real_time_plays_as_a_camera(tmp_path: Path) -> None:
    """Frames are released no sooner than their timestamps, and a slow consumer gets the newest sampled
    frame, never a backlog: each sampled frame is either taken or counted as dropped."""
    clip = make_clip(tmp_path / "cam.mp4", seconds=3, size="320x180", rate=10)
    video = VideoSource("cam", str(clip), sample_fps=5, realtime=True)
    frames = []
    for frame in video.frames():
        frames.append(frame)
        assert frame.mono_s >= video.started_mono_s + frame.media_s  # not before its time
        time.sleep(0.5)  # a consumer slower than the 5 frames a second it is offered
    assert video.stats.decoded == 30 and video.stats.sampled == 15
    assert video.stats.dropped > 0 and len(frames) + video.stats.dropped == video.stats.sampled
    media = [f.media_s for f in frames]
    assert media == sorted(media) and round(media[-1], 2) == 2.8  # the last sampled frame is never lost


def test_a_file_at_real_time_stops_when_asked(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "cam.mp4", seconds=10, size="320x180", rate=10)
    video = VideoSource("cam", str(clip), sample_fps=2, realtime=True)
    stop = threading.Event()
    taken = []
    for frame in video.frames(stop):
        taken.append(frame.media_s)
        if frame.media_s >= 1:
            stop.set()
    assert taken == [0.0, 0.5, 1.0] and video.stats.decoded < 30  # the decoder thread ended with the consumer


def test_a_file_read_ahead_stops_cleanly_when_the_consumer_stops(tmp_path: Path) -> None:
    """Batch files decode a few frames ahead in a thread; a consumer that stops early (Ctrl-C, an error
    downstream) must not leave that thread blocked on a full queue."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=4, rate=10)
    video = VideoSource("cam", str(clip), sample_fps=10)
    frames = video.frames()
    assert [next(frames).index for _ in range(2)] == [1, 2]
    frames.close()  # the generator's finally joins the decoder thread
    assert not [t for t in threading.enumerate() if t.name == "decode:cam"]
    assert [f.index for f in VideoSource("cam", str(clip), sample_fps=10).frames()] == list(range(1, 41))


def cut_upload(tmp_path: Path, fraction: float) -> tuple[Path, Path]:
    """A whole MP4 with its index first (as cameras and drones write them) and a copy cut at `fraction`
    of its bytes, as an upload that broke off leaves it."""
    plain = make_clip(tmp_path / "plain.mp4", seconds=8, size="320x180", rate=15)
    whole = tmp_path / "whole.mp4"
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(plain), "-c", "copy", "-movflags", "+faststart", str(whole)],
        check=True,
    )
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    return whole, cut


def test_a_truncated_file_says_how_much_of_it_was_decoded(tmp_path: Path, caplog) -> None:
    whole, cut = cut_upload(tmp_path, 0.4)
    video = VideoSource("cam", str(cut), sample_fps=2)
    frames = list(video.frames())
    assert 0 < video.stats.decoded < 120 and frames
    assert video.incomplete.startswith(f"truncated: decoded {video.stats.decoded} of 120 frames, ")
    assert f"{video.last_media_s + 1 / 15:.1f} of 8.0 s" in video.incomplete
    assert "cut.mp4: truncated" in caplog.text
    assert truncation(cut).startswith("truncated: holds ") and "of 120 frames" in truncation(cut)
    complete = VideoSource("cam", str(whole), sample_fps=2)
    assert list(complete.frames()) and complete.stats.decoded == 120
    assert complete.incomplete == "" and truncation(whole) == ""


def test_keyframes_only_tells_a_whole_file_from_a_cut_one(tmp_path: Path) -> None:
    """The frames after a file's last keyframe are never decoded, yet they are there: the file is whole."""
    clip = make_clip(tmp_path / "gop15.mp4", seconds=4, rate=15)  # its last keyframe 1 s before its end
    whole = VideoSource("cam", str(clip), sample_fps=1, keyframes_only=True)
    assert list(whole.frames()) and whole.last_media_s == 3.0
    assert whole.incomplete == ""
    _, cut = cut_upload(tmp_path, 0.4)
    sparse = VideoSource("cam", str(cut), sample_fps=1, keyframes_only=True)
    assert list(sparse.frames()) and sparse.incomplete.startswith("truncated: decoded ")


def test_a_file_stopped_early_is_not_called_truncated(tmp_path: Path) -> None:
    whole, _ = cut_upload(tmp_path, 1.0)
    video = VideoSource("cam", str(whole), sample_fps=2)
    stop = threading.Event()
    for frame in video.frames(stop):
        if frame.media_s >= 2:
            stop.set()
    assert video.incomplete == ""


def _extra_threads_while_decoding(source: VideoSource) -> int:
    """The most OS threads (Python's and FFmpeg's) the process had beyond its own while `source` was read."""
    before = len(os.listdir("/proc/self/task"))
    return max(len(os.listdir("/proc/self/task")) for _ in source.frames()) - before


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_a_file_of_a_parallel_batch_is_decoded_without_frame_threads(tmp_path: Path) -> None:
    """Batch workers run files side by side, so each decodes on one thread (as cameras do): FFmpeg's frame
    threads would only add CPU. A file read alone keeps them; the frames are the same either way."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=3, size="640x360", rate=15)
    alone = VideoSource("cam", str(clip), sample_fps=5)
    beside = VideoSource("cam", str(clip), sample_fps=5, one_decoder_thread=True)
    assert _extra_threads_while_decoding(beside) < _extra_threads_while_decoding(alone)
    frames = [list(VideoSource("cam", str(clip), 5, one_decoder_thread=one).frames()) for one in (False, True)]
    assert [f.media_s for f in frames[0]] == [f.media_s for f in frames[1]] and len(frames[0]) == 15
    assert all((a.image == b.image).all() for a, b in zip(*frames, strict=True))


def test_a_record_file_that_fails_to_open_says_so_without_its_password(tmp_path: Path, caplog) -> None:
    """FFmpeg's error text carries the name it was given; a password in it stays out of the log and the state."""
    stats = SourceStats()
    missing = tmp_path / "user:s3cret@cam-main.mp4"
    reader = RecordReader("cam", str(missing), LiveOptions(), PacketRing(), stats)
    reader.start()
    reader.stop(join_s=10)
    assert stats.state == State.STOPPED and "No such file" in stats.reason
    assert "s3cret" not in stats.reason and "s3cret" not in caplog.text

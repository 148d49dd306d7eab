"""The cameras that `bench --streams N` plays: the 1080p clip made from the bundled sample, its 640x360
substream, and, for `--stagger K`, cuts of one longer encode that let K cameras show K different moments.

Staggering is a cut, not another encode: one clip of the run's length plus the sample's is encoded once,
each moment is cut from it without re-encoding at the first keyframe at or after that moment, and the
camera waits the difference before it plays, so that it shows exactly its moment. 32 moments cost one
1080p encode and 32 stream copies instead of 32 encodes.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import av

from agent.config import resources
from agent.tools.bench_common import make_clip, require_ffmpeg


def _cache() -> Path:
    cache = Path(tempfile.gettempdir()) / "edge-agent-bench"
    cache.mkdir(exist_ok=True)
    return cache


def default_clip(seconds: float) -> Path:
    """The bench's own camera: 1920x1080, 25 fps, 4 Mb/s H.264, a keyframe every 2 s, made from the
    bundled sample (looped) with ffmpeg."""
    out = _cache() / f"sample-1920x1080p25-4M-{int(seconds)}s.mp4"
    return make_clip(resources.builtin("sample"), out, 1080, 25, 4000, int(seconds + 1))


def substream_clip(clip: Path, seconds: float) -> Path:
    """The camera's substream: `clip` at 640x360, 25 fps, 768 kb/s, a keyframe a second (a common substream
    setting; with keyframes only, one detection a second)."""
    out = _cache() / f"{clip.stem}-640x360p25-768k-g25-{int(seconds)}s.mp4"
    return make_clip(clip, out, 360, 25, 768, int(seconds + 1), gop_s=1.0)


def staggered_clips(seconds: float, moments: int) -> tuple[list[Path], list[float]]:
    """`moments` cameras showing the sample from moments 1/`moments` of its length apart: (each camera's clip,
    how long it waits before it plays). One moment is the plain default clip."""
    if moments == 1:
        return [default_clip(seconds)], [0.0]
    length_s = duration_s(resources.builtin("sample"))
    return cut_at_moments(default_clip(seconds + length_s), [k * length_s / moments for k in range(moments)], seconds)


def cut_at_moments(whole: Path, moments_s: list[float], seconds: float) -> tuple[list[Path], list[float]]:
    """For each moment of `whole`: a `seconds`-long copy of it from the first keyframe at or after the moment
    (no re-encoding) and the wait that makes a camera playing the copy show the moment (keyframe - moment)."""
    keyframes = keyframe_times(whole)
    clips, waits = [], []
    for moment in moments_s:
        later = [t for t in keyframes if t >= moment - 1e-6]
        if not later:
            raise ValueError(f"{whole} has no keyframe at or after {moment:.2f} s")
        clips.append(cut(whole, later[0], seconds))
        waits.append(max(0.0, later[0] - moment))
    return clips, waits


def keyframe_times(video: Path) -> list[float]:
    """Media times (s, from the first packet) of the video's keyframes, read from the packets alone."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        return sorted(
            float((p.pts - origin) * stream.time_base)
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None
        )


def cut(whole: Path, at_s: float, seconds: float) -> Path:
    """`seconds` (+1) of `whole` from its keyframe at `at_s`, stream-copied: the same packets, timestamps
    from zero. Kept beside `whole`, whose name is its cache key."""
    out = whole.with_name(f"{whole.stem}-at{at_s:.2f}s-{int(seconds)}s.mp4")
    if not out.exists():
        require_ffmpeg()
        partial = out.with_suffix(".part.mp4")
        seek = ["-ss", f"{at_s + 0.001:.3f}", "-i", str(whole), "-t", str(int(seconds + 1))]
        copy = ["-c", "copy", "-avoid_negative_ts", "make_zero", str(partial)]
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *seek, *copy], check=True)
        partial.rename(out)
    return out


def duration_s(video: Path) -> float:
    """The video's length in seconds, from its header."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base) if stream.duration else float(container.duration) / 1e6

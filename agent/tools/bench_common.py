"""What both benches share (`bench` side by side, `bench --streams`), in a module of its own so that
neither imports the other: the clip they play and how a process's CPU time and peak memory are read."""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
from pathlib import Path

# `bench --settings`: how the cameras are decoded (agent.tools.bench_settings runs them side by side)
SETTINGS = {
    "full": {"keyframes_only": False, "substreams": False},
    "keyframes": {"keyframes_only": True, "substreams": False},
    "substream": {"keyframes_only": False, "substreams": True},
    "substream-keyframes": {"keyframes_only": True, "substreams": True},  # the substream's keyframes only
}


def parse_settings(text: str) -> list[str]:
    """`full,keyframes,substream` (any of them, in the order given) for argparse."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SETTINGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown setting {', '.join(unknown) or repr(text)}; accepted: {', '.join(SETTINGS)}"
        )
    return names


def require_ffmpeg() -> None:
    """The bench's clips are made and cut with ffmpeg: say how to get it when it is missing."""
    if shutil.which("ffmpeg") is None:
        raise SystemExit(
            "bench: the benchmark clips are made with ffmpeg, which is not on PATH; install it "
            "(Debian: apt-get install ffmpeg) and run the bench again"
        )


def make_clip(source: Path, out: Path, height: int, fps: int, kbit: int, seconds: int, gop_s: float = 2.0) -> Path:
    """A 16:9 H.264 clip at the given height, rate and bitrate, a keyframe every `gop_s`, made from `source`
    looped with ffmpeg (scaled to fill the frame and cropped: 1080 gives 1920x1080)."""
    width = round(height * 16 / 9 / 2) * 2
    if not out.exists():
        require_ffmpeg()
        subprocess.run(
            [
                "ffmpeg",
                "-y",
                "-loglevel",
                "error",
                "-stream_loop",
                "-1",
                "-i",
                str(source),
                "-t",
                str(seconds),
                "-vf",
                f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},fps={fps}",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-b:v",
                f"{kbit}k",
                "-maxrate",
                f"{kbit}k",
                "-bufsize",
                f"{2 * kbit}k",
                "-g",
                str(round(gop_s * fps)),
                "-pix_fmt",
                "yuv420p",
                str(out),
            ],
            check=True,
        )
    return out


def process_usage() -> tuple[float, float]:
    """(CPU seconds so far, peak RSS in MB) of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024

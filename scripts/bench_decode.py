"""Decode speed of our path (PyAV, streams.VideoSource) against cv2.VideoCapture, in frames/s.

Makes 1080p (4 Mb/s) and 720p (2 Mb/s) 25 fps H.264 clips with ffmpeg in a temporary folder and
decodes each with every method, printing the best of `--repeats` runs. The agent decodes every
frame but converts to BGR only the frames it samples, so "VideoSource, 5 fps sampled" is the
number that bounds how many cameras one box can keep up with.

    .venv/bin/python scripts/bench_decode.py [--seconds 10] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2

from streams.video import VideoSource

CLIPS = {"1080p": ("1920x1080", "4M"), "720p": ("1280x720", "2M")}


def make_clip(folder: Path, name: str, size: str, bitrate: str, seconds: int) -> Path:
    path = folder / f"{name}.mp4"
    source = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-t", str(seconds)]
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-g", "50", "-pix_fmt", "yuv420p"]
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *source, *encode, str(path)], check=True)
    return path


def cv2_read(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def cv2_grab(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def pyav(path: Path, bgr: bool) -> int:
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if bgr:
                frame.to_ndarray(format="bgr24")
            n += 1
    return n


def video_source(path: Path, sample_fps: float) -> int:
    """Frames decoded by our VideoSource (every frame is decoded; BGR only for sampled ones)."""
    source = VideoSource("bench", str(path), sample_fps)
    for _ in source.frames():
        pass
    return source.stats.decoded


METHODS: dict[str, Callable[[Path], int]] = {
    "cv2.VideoCapture read() (BGR every frame)": cv2_read,
    "cv2.VideoCapture grab() only": cv2_grab,
    "PyAV decode only, thread_type AUTO": lambda p: pyav(p, bgr=False),
    "PyAV decode + bgr24 every frame": lambda p: pyav(p, bgr=True),
    "VideoSource, BGR every frame": lambda p: video_source(p, 1000),
    "VideoSource, 5 fps sampled (agent path)": lambda p: video_source(p, 5),
}


def best_fps(method: Callable[[Path], int], path: Path, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        frames = method(path)
        best = max(best, frames / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="clip length (25 fps)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load {load:.2f}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), "
        f"OpenCV {cv2.__version__}; {args.seconds} s clips, best of {args.repeats}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        clips = {name: make_clip(Path(tmp), name, size, rate, args.seconds) for name, (size, rate) in CLIPS.items()}
        header = f"{'method':<44}" + "".join(f"{name + ' fps':>12}" for name in clips)
        print(header)
        print("-" * len(header))
        for label, method in METHODS.items():
            row = "".join(f"{best_fps(method, path, args.repeats):>12.0f}" for path in clips.values())
            print(f"{label:<44}{row}", flush=True)


if __name__ == "__main__":
    main()

"""Tracking cost per analysed frame: camera-motion compensation plus association, single thread.

Makes (once, cached like `edge-agent bench`) a 1080p H.264 copy of the bundled sample clip (a patrol
car passing garbage piles), decodes one frame every `--every-s` seconds (what a vehicle source
analyses), runs the bundled model on each to get real boxes, then times `Tracker.update` alone on
those frames, with and without compensation. OpenCV is held to one thread. Reports wall time and the
thread's CPU time: on a shared, busy machine the wall time also counts waiting for a core.

    .venv/bin/python scripts/bench_tracking.py [--height 1080] [--every-s 1.0] [--seconds 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from agent.cases.tracking import Tracker
from agent.config import resources
from agent.tools.bench_common import make_clip
from detectors.onnx_yolo import OnnxYoloDetector


def frames_every(clip: Path, every_s: float) -> list[np.ndarray]:
    frames, next_s = [], 0.0
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= next_s:
                frames.append(frame.to_ndarray(format="bgr24"))
                next_s += every_s
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--every-s", type=float, default=1.0)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cache = Path(tempfile.gettempdir()) / "edge-agent-bench"
    cache.mkdir(exist_ok=True)
    name = f"sample-{args.height}p25-4M-{args.seconds}s.mp4"
    clip = make_clip(resources.builtin("sample"), cache / name, args.height, 25, 4000, args.seconds)
    frames = frames_every(clip, args.every_s)
    detector = OnnxYoloDetector(resources.builtin("garbage"), 0.1)  # low-score boxes too, for both passes
    found = [detector.detect(image) for image in frames]
    height, width = frames[0].shape[:2]
    boxes = sum(len(d) for d in found) / len(found)
    print(f"{clip.name}: {len(frames)} analysed frames {width}x{height}, {boxes:.1f} boxes each, OpenCV 1 thread")
    for compensate in (True, False):
        tracker, wall, cpu = Tracker(compensate=compensate), [], []
        for i, (image, detections) in enumerate(zip(frames, found, strict=True)):
            started, started_cpu = time.perf_counter(), time.thread_time()
            tracker.update(image, detections, i * args.every_s)
            wall.append(1000 * (time.perf_counter() - started))
            cpu.append(1000 * (time.thread_time() - started_cpu))
        label = "tracking + motion compensation" if compensate else "tracking alone (no compensation)"
        for clock, spent in (("wall", wall), ("CPU", cpu)):
            ms = np.array(spent[1:])  # the first frame has nothing to compare with
            print(
                f"{label:<34} {clock:>4} ms per analysed frame: mean {ms.mean():.2f}, "
                f"median {np.median(ms):.2f}, p95 {np.percentile(ms, 95):.2f}"
            )


if __name__ == "__main__":
    main()

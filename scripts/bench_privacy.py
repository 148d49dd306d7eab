"""Cost of privacy masking on this CPU: the face model per search (one thread) at the sizes frames are
searched at, the mask itself, and a masked clip per frame (decode + faces every N frames + mask + x264).

Uses a real photo with two faces from ../shared, scaled up to each frame size.

    .venv/bin/python scripts/bench_privacy.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2

from agent.config import resources
from agent.config.privacy import PrivacyConfig
from agent.evidence.clip_masking import masked_clip
from agent.evidence.masking import Masker
from detectors.faces import FaceDetector

PHOTO = Path("../shared/datasets/smoke-fire/train/images/img_708_jpg.rf.2f9d22a170fd8798a5bb9cfa0d5d0173.jpg")
SIZES = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}


def median_cpu_ms(call: Callable[[], object], repeats: int) -> float:
    """CPU time of the calling process (the machine is shared: wall time measures the neighbours)."""
    call()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.process_time()
        call()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    photo = cv2.imread(str(PHOTO))
    for side in (640, 1280):
        faces = FaceDetector(resources.builtin("face"), 0.5, threads=1, max_side_px=side)
        for name, size in SIZES.items():
            ms = median_cpu_ms(partial(faces.detect, cv2.resize(photo, size)), args.repeats)
            print(f"faces, 1 thread, frame {name} searched at <= {side} px: {ms:.1f} ms CPU")
    masker = Masker(PrivacyConfig())
    image = cv2.resize(photo, SIZES["1920x1080"])
    masks = masker.find(image)
    ms = median_cpu_ms(partial(masker.apply, image, masks), args.repeats)
    print(f"blur of {len(masks.boxes)} face boxes on 1920x1080: {ms:.2f} ms CPU")
    with tempfile.TemporaryDirectory() as folder:
        still, clip = Path(folder) / "still.png", Path(folder) / "clip.mp4"
        cv2.imwrite(str(still), cv2.resize(photo, SIZES["1280x720"]))
        encode = ["-t", "5", "-r", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10", str(clip)]
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-i", str(still), *encode], check=True)
        data = clip.read_bytes()
        for every in (1, 3):
            wall, cpu = time.perf_counter(), time.process_time()
            _, frames, _ = masked_clip(data, masker, every)
            wall, cpu = (time.perf_counter() - wall) * 1000 / frames, (time.process_time() - cpu) * 1000 / frames
            print(f"masked clip 1280x720, faces every {every}: {cpu:.1f} ms CPU, {wall:.1f} ms wall a frame ({frames})")


if __name__ == "__main__":
    main()

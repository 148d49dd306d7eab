"""Footage for verification by the next pass: a fixed camera's view of a held-out pile photo of
../shared (never trained on), then the same view with the pile removed (inpainted over its labelled
box), encoded as real H.264 files with ffmpeg; and the fixed-camera configuration that processes them."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from agent.config import AgentConfig, PrivacyConfig, RuleConfig, default_config
from agent.config.sources import CameraPosition
from tests.conftest import need_shared

HELD_OUT_PILE = "000393_jpg.rf.957a04ba1a22bbbe739b3ffffaec6e81"  # a pile of the by-source held-out split
FPS = 2


def pile_photos(folder: Path) -> tuple[Path, Path]:
    """(the photo with its pile, the photo with the pile's labelled box inpainted away) as PNG files."""
    shared = need_shared("datasets/garbage-street-cn/train")
    image = cv2.imread(str(shared / "images" / f"{HELD_OUT_PILE}.jpg"))
    height, width = image.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    for line in (shared / "labels" / f"{HELD_OUT_PILE}.txt").read_text().splitlines():
        cls, cx, cy, w, h = (float(v) for v in line.split())
        if int(cls) == 0:  # garbage
            x1, y1 = int((cx - w / 2) * width) - 8, int((cy - h / 2) * height) - 8
            x2, y2 = int((cx + w / 2) * width) + 8, int((cy + h / 2) * height) + 8
            mask[max(0, y1) : y2, max(0, x1) : x2] = 255
    folder.mkdir(parents=True, exist_ok=True)
    with_pile, removed = folder / "pile.png", folder / "removed.png"
    cv2.imwrite(str(with_pile), image)
    cv2.imwrite(str(removed), cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA))
    return with_pile, removed


def footage(path: Path, scenes: list[tuple[Path, float]]) -> Path:
    """An H.264 MP4 of still scenes, each (photo, seconds), at FPS frames per second."""
    inputs: list[str] = []
    for photo, seconds in scenes:
        inputs += ["-loop", "1", "-t", str(seconds), "-r", str(FPS), "-i", str(photo)]
    chain = "".join(f"[{i}:v]" for i in range(len(scenes))) + f"concat=n={len(scenes)}:v=1[v]"
    command = ["ffmpeg", "-y", "-loglevel", "error", *inputs, "-filter_complex", chain, "-map", "[v]"]
    command += ["-r", str(FPS), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(FPS), str(path)]
    subprocess.run(command, check=True)
    return path


def fixed_camera(
    state_dir: Path,
    video: Path,
    start: datetime,
    agent_id: str = "market-box",
    at: tuple[float, float] = (30.2742, 120.155),
) -> AgentConfig:
    """The built-in detector on one fixed camera reading `video` as recorded from `start`: a pile seen 3
    times in 10 s is a case; its box clear for 30 s (3 frames at least) is a `cleared` observation."""
    base = default_config()
    source = base.sources[0].model_copy(
        update={
            "id": "market-north",
            "kind": "fixed",
            "url": str(video),
            "telemetry": None,
            "position": CameraPosition(lat=at[0], lon=at[1], accuracy_m=30),  # by default in grid cell EX-0101
            "sample_fps": FPS,
            "idle_every_s": 1.0,
            "start_time": start,
        }
    )
    rule = RuleConfig(min_detections=3, window_s=10, close_after_s=20, clear_after_s=30, clear_min_frames=3)
    cases = base.cases.model_copy(update={"rules": {"garbage_pile": rule}})
    return AgentConfig.model_validate(
        base.model_dump()
        | {
            "state_dir": state_dir,
            "agent_id": agent_id,
            "sources": [source.model_dump()],
            "cases": cases.model_dump(),
            "privacy": PrivacyConfig(faces=False).model_dump(),
        }
    )

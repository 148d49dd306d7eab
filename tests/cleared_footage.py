"""Footage for verification by the next pass: a fixed camera's view of a held-out pile photo of
../shared (never trained on), then the same view with the pile removed (inpainted over its labelled
box), encoded as real H.264 files with ffmpeg; and the fixed-camera configuration that processes them.
For a patrol car: the bundled sample edited, one case's problem removed from every frame it is seen
on, its track moved to the next day, and the demo's patrol car with a camera mount."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from agent.config import AgentConfig, PrivacyConfig, RuleConfig, default_config
from agent.config.resources import builtin
from agent.config.sources import CameraMount, CameraPosition
from agent.detector_setup import build_detector
from streams.nmea import sentence
from tests.conftest import need_shared

HELD_OUT_PILE = "000393_jpg.rf.957a04ba1a22bbbe739b3ffffaec6e81"  # a pile of the by-source held-out split
FPS = 2
CUT_GREY = 60  # mean grey change between frames at the sample's photo changes (88 there; at most 32 within a photo)


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


SAMPLE_FPS = 10  # samples/street-garbage.mp4
WINDSCREEN = CameraMount(hfov_deg=60, height_m=2.0, pitch_deg=-10)  # forward, as on a patrol car's windscreen


def patrol_car(state_dir: Path, video: Path | None = None, track: Path | None = None) -> AgentConfig:
    """The demo's patrol car (the bundled sample, or `video` and `track`) with a windscreen camera, so
    that its cases are located objects (ray_cast), which a moving camera can verify; nothing masked."""
    base = default_config()
    source = base.sources[0].model_dump() | {"camera": WINDSCREEN.model_dump()}
    if video is not None:
        source |= {"url": str(video), "telemetry": str(track)}
    return AgentConfig.model_validate(
        base.model_dump()
        | {
            "state_dir": state_dir,
            "agent_id": "car-a",
            "sources": [source],
            "privacy": PrivacyConfig(faces=False).model_dump(),
        }
    )


def without_case(case: dict, start: datetime, dest: Path, later: timedelta) -> Path:
    """The bundled sample (recorded from `start`) with `case`'s problem removed: from its first_seen, every
    box of its class the bundled detector finds is filled from around it (inpainted at 1/32 scale: no
    texture left that the detector could take for the problem), until 1 s passes without one or the pan
    cuts to the next photo (another place: its pile is another problem); encoded with ffmpeg as recorded
    `later` (the next day)."""
    config = default_config()
    detector = build_detector(config.detector)
    wanted = next(name for name, kind in config.detector_entries[0].class_map.items() if kind == case["type"])
    capture = cv2.VideoCapture(str(builtin("sample")))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    seen = datetime.fromisoformat(case["first_seen"].replace("Z", "+00:00"))
    index, unseen = round((seen - start).total_seconds() * SAMPLE_FPS), 0
    while index < len(frames) and unseen < SAMPLE_FPS and not (index and _cut(frames[index - 1], frames[index])):
        found = detector.detect(frames[index])
        boxes = [b for b, c in zip(found.xyxy, found.class_id, strict=True) if found.class_names[c] == wanted]
        frames[index] = _filled(frames[index], boxes) if boxes else frames[index]
        unseen = 0 if boxes else unseen + 1
        index += 1
    height, width = frames[0].shape[:2]
    command = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}"]
    command += ["-r", str(SAMPLE_FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * SAMPLE_FPS)]
    recorded = (start + later).isoformat().replace("+00:00", "Z")
    command += ["-pix_fmt", "yuv420p", "-metadata", f"creation_time={recorded}", str(dest)]
    subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True)
    return dest


def _cut(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether the sample's pan jumps to its next photo here (another place, so another problem)."""
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.int16) for f in (before, after)]
    return float(np.abs(grey[1] - grey[0]).mean()) > CUT_GREY


def _filled(image: np.ndarray, boxes: list[np.ndarray], margin: int = 16, scale: int = 32) -> np.ndarray:
    height, width = image.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    for x1, y1, x2, y2 in boxes:
        mask[max(0, int(y1) - margin) : int(y2) + margin, max(0, int(x1) - margin) : int(x2) + margin] = 255
    small = cv2.resize(image, (width // scale, height // scale), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (width // scale, height // scale), interpolation=cv2.INTER_NEAREST)
    fill = cv2.resize(cv2.inpaint(small, small_mask, 3, cv2.INPAINT_TELEA), (width, height))
    edited = image.copy()
    edited[mask > 0] = fill[mask > 0]
    return edited


def track_later(dest: Path, later: timedelta) -> Path:
    """The sample's NMEA track with its RMC dates moved by `later` (whole days: the same times of day)."""
    lines = []
    for line in builtin("sample-telemetry").read_text().splitlines():
        fields = line[1:].partition("*")[0].split(",")
        if fields[0].endswith("RMC"):
            fields[9] = (datetime.strptime(fields[9], "%d%m%y") + later).strftime("%d%m%y")
        lines.append(sentence(",".join(fields)))
    dest.write_text("\n".join(lines) + "\n")
    return dest

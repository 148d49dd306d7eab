"""A camera with two inputs against two real gst-rtsp-server mounts showing one scene: the detector reads
the 640x360 substream, the case's clip and snapshot come from the 1280x720 main stream.

The scene is a photo of a garbage pile with its labelled box (../shared's garbage-street-cn), so the
snapshot's box can be checked against where the pile really is at full resolution; the crop (a clean
cut around the box) is found in the main stream's picture to check that it was cut where the record says.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config import AgentConfig, resources
from agent.detector_setup import build_detectors
from agent.pipeline import Pipeline, SourceSummary, state_paths
from protocol.signing import Signer
from streams.health import State
from tests.agent.evidence.test_clips import clip_payloads, nal_units
from tests.conftest import need_shared
from tests.streams.conftest import RtspServer, rtsp_factory  # noqa: F401 (fixture)
from uploader import Outbox

PILE = "000393_jpg.rf.957a04ba1a22bbbe739b3ffffaec6e81"  # one garbage pile, labelled
DETECT, RECORD = (640, 360), (1280, 720)


def labelled_box(size: tuple[int, int]) -> np.ndarray:
    """The pile's labelled box (YOLO: centre and size, relative) in pixels of a picture of `size`."""
    labels = need_shared("datasets/garbage-street-cn/train/labels") / f"{PILE}.txt"
    _, cx, cy, w, h = (float(v) for v in labels.read_text().split())
    width, height = size
    return np.array([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def where_cut(crop: np.ndarray, scene: np.ndarray) -> tuple[int, int]:
    """Where the crop was cut from the scene (template matching): its top-left corner."""
    found = cv2.matchTemplate(scene, crop, cv2.TM_CCOEFF_NORMED)
    _, score, _, corner = cv2.minMaxLoc(found)
    assert score > 0.9, f"the crop is not a cut of the main stream's picture (match {score:.2f})"
    return corner


def ffprobe(path: Path) -> dict:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-count_packets", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["streams"][0]


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class Camera:
    """The two mounts, a pipeline reading them as one source in a thread, and its outbox."""

    def __init__(self, make: Callable[..., RtspServer], tmp_path: Path) -> None:
        photo = need_shared("datasets/garbage-street-cn/train/images") / f"{PILE}.jpg"
        self.record = make(size="x".join(map(str, RECORD)), path="/main", image=photo)
        self.detect = make(size="x".join(map(str, DETECT)), path="/sub", image=photo)
        self.record.start()
        self.detect.start()
        self.scene = cv2.resize(cv2.imread(str(photo)), RECORD, interpolation=cv2.INTER_LINEAR)
        source = {
            "id": "cam",
            "kind": "fixed",
            "inputs": {"detect": self.detect.url, "record": self.record.url},
            "sample_fps": 2,
            "idle_every_s": 0.5,
            "stall_s": 2,
            "reconnect_cap_s": 2,
        }
        evidence = {"clip_pre_s": 1, "clip_post_s": 2}
        model = {"model": resources.builtin("garbage")}
        self.state = tmp_path / "state"
        config = AgentConfig.model_validate(
            {"agent_id": "t", "state_dir": self.state, "detector": model, "sources": [source], "evidence": evidence}
            | {"privacy": {"faces": False}}  # clips as the camera sent them
        )
        outbox_dir, keys_dir = state_paths(config)
        self.outbox = Outbox(outbox_dir)
        self.pipeline = Pipeline(config, build_detectors(config), self.outbox, Signer.load_or_create(keys_dir))
        self.stop = threading.Event()
        self.summary: list[SourceSummary] = []
        self.thread = threading.Thread(
            target=lambda: self.summary.append(self.pipeline.run_source(config.sources[0], self.stop))
        )
        self.thread.start()

    def video(self):
        running = self.pipeline.running.get("cam")
        return running.video if running else None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.outbox.close()

    def revision(self, n: int) -> Path | None:
        return next((self.state / "outbox" / "cases").glob(f"*/r{n}"), None)


@pytest.fixture
def camera(rtsp_factory, tmp_path: Path) -> Iterator[Camera]:  # noqa: F811
    cam = Camera(rtsp_factory, tmp_path)
    yield cam
    cam.close()


def test_a_case_has_the_main_streams_clip_and_a_full_resolution_snapshot_with_the_box_in_place(
    camera: Camera, tmp_path: Path
) -> None:
    assert wait_until(lambda: camera.revision(2) is not None, 25), f"no clip revision; {camera.video().stats}"
    r1, r2 = camera.revision(1), camera.revision(2)
    snapshot = cv2.imdecode(np.frombuffer((r1 / "snapshot.jpg").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape[:2] == RECORD[::-1]  # the main stream's resolution, not the substream's
    crop = cv2.imdecode(np.frombuffer((r1 / "crop.jpg").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    # the record lists the boxes and the crop in the snapshot's pixels, as the platform's training set reads them
    boxes = json.loads((r1 / "case.json").read_text())["explanation"]["boxes"]
    assert boxes["frame_px"] == list(RECORD)
    left, top, right, bottom = boxes["crop_px"]
    assert crop.shape[:2] == (bottom - top, right - left)
    assert np.abs(np.array(where_cut(crop, camera.scene)) - (left, top)).max() <= 2  # cut where it says
    # the best box is where the pile is at full resolution: a box left in the substream's pixels would stand
    # in the top-left quarter (the model's box is its own, so only where it stands is checked closely)
    truth = labelled_box(RECORD)
    best = next(np.array(b) for b in boxes["xyxy"] if b[0] >= left and b[1] >= top and b[2] <= right and b[3] <= bottom)
    centre = (best[:2] + best[2:]) / 2
    assert (truth[:2] < centre).all() and (centre < truth[2:]).all(), f"box {best} vs the pile at {truth.round()}"
    assert iou(best, truth) > 0.3, f"box {best} vs the pile at {truth.round()}"
    clip = ffprobe(r2 / "clip.mp4")  # the camera's own H.264 packets from the main stream, not re-encoded
    assert (clip["codec_name"], clip["width"], clip["height"]) == ("h264", *RECORD)
    assert int(clip["nb_read_packets"]) >= 2 * 15  # pre-roll + post-roll at 15 fps, at least
    # byte for byte the NAL units the record input's reader demuxed (Annex B there, MP4's lengths here)
    kept = {unit for p in camera.video().packets.snapshot() for unit in nal_units(p.data)}
    units = [unit for data in clip_payloads((r2 / "clip.mp4").read_bytes()) for unit in nal_units(data)]
    assert units and all(unit in kept for unit in units)  # remuxed, never re-encoded
    # the detector decoded the substream only: the main stream's reader kept packets
    video = camera.video()
    assert video.stats.decoded > 0 and video.record_stats.decoded > 0


@pytest.mark.parametrize("which", ["detect", "record"])
def test_killing_either_input_is_reported_and_recovered(camera: Camera, which: str) -> None:
    assert wait_until(lambda: camera.video() is not None and camera.video().record_stats is not None, 20)
    video = camera.video()
    inputs = {"detect": (camera.detect, video.stats), "record": (camera.record, video.record_stats)}
    server, stats = inputs[which]
    _, other = inputs["record" if which == "detect" else "detect"]
    assert wait_until(lambda: stats.state == State.LIVE and other.state == State.LIVE, 20), (stats, other)
    server.kill()
    assert wait_until(lambda: stats.state in (State.BACKING_OFF, State.CONNECTING), 10), stats
    assert other.state == State.LIVE  # the other input runs on
    moving = other.decoded
    assert wait_until(lambda: other.decoded > moving, 5)
    server.start()
    assert wait_until(lambda: stats.state == State.LIVE, 15), stats
    assert stats.reconnects >= 1 and stats.connects >= 2

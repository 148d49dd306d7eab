"""Tracking: one id per object across a camera pan (real images, encoded and decoded), and the
association rules on hand-made boxes (pure logic)."""

from __future__ import annotations

import functools
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from agent.cases.rules import PersistenceRule
from agent.cases.tracking import CameraMotion, Tracker, track_shift, warp_boxes
from agent.config import CasesConfig
from detectors import Detections
from detectors.metrics import box_iou
from streams import Frame
from tests.conftest import need_shared

# three street photos of the garbage set with rows of bins side by side (ids a pan easily swaps)
PHOTOS = ("000086_jpg", "000099_jpg", "000503_jpg")
WINDOW_W, WINDOW_H = 640, 480
BLANK = np.zeros((WINDOW_H, WINDOW_W, 3), np.uint8)


@functools.cache
def _street() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photos side by side (640 x 1920) and their labelled boxes (xyxy in that image, class)."""
    folder = need_shared("datasets/garbage-street-cn/train")
    images, boxes, classes = [], [], []
    for i, stem in enumerate(PHOTOS):
        image_path = next((folder / "images").glob(f"{stem}.rf.*.jpg"))
        images.append(cv2.imread(str(image_path)))
        for line in (folder / "labels" / f"{image_path.stem}.txt").read_text().split("\n"):
            if line.strip():
                c, x, y, w, h = (float(v) for v in line.split())
                boxes.append(
                    [(x - w / 2) * 640 + 640 * i, (y - h / 2) * 640, (x + w / 2) * 640 + 640 * i, (y + h / 2) * 640]
                )
                classes.append(int(c))
    return np.hstack(images), np.array(boxes), np.array(classes, np.int32)


def _pan(tmp_path: Path, step_px: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """A camera panning right by `step_px` per analysed frame with a vertical wobble: an H.264 file made
    with ffmpeg from windows of the street, decoded again. Returns the frames and each window's offset."""
    street, _, _ = _street()
    offsets = [(x, 80 + round(20 * np.sin(i))) for i, x in enumerate(range(0, street.shape[1] - WINDOW_W + 1, step_px))]
    path = tmp_path / f"pan-{step_px}.mp4"
    raw = b"".join(street[y : y + WINDOW_H, x : x + WINDOW_W].tobytes() for x, y in offsets)
    size = f"{WINDOW_W}x{WINDOW_H}"
    encode = ["-r", "1", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", size, *encode, str(path)],
        input=raw,
        check=True,
    )
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == len(offsets)
    return frames, offsets


def _detections_in(offset: tuple[int, int], rng: np.random.Generator) -> tuple[Detections, np.ndarray]:
    """The labelled boxes wholly inside the window, as a detector would give them (a few pixels off),
    and the index of the labelled object behind each."""
    _, boxes, classes = _street()
    x, y = offset
    moved = boxes - [x, y, x, y]
    inside = np.flatnonzero((moved[:, :2] >= 0).all(1) & (moved[:, 2] <= WINDOW_W) & (moved[:, 3] <= WINDOW_H))
    xyxy = (moved[inside] + rng.normal(0, 2, (len(inside), 4))).astype(np.float32)
    scores = rng.uniform(0.6, 0.9, len(inside)).astype(np.float32)
    return Detections(xyxy, scores, classes[inside]), inside


def _track_pan(tmp_path: Path, step_px: int, compensate: bool) -> tuple[dict[int, set[int]], Tracker]:
    """Object index -> the track ids it was given over the pan."""
    frames, offsets = _pan(tmp_path, step_px)
    tracker, rng = Tracker(compensate=compensate), np.random.default_rng(6)
    given: dict[int, set[int]] = {}
    for i, (image, offset) in enumerate(zip(frames, offsets, strict=True)):
        detections, objects = _detections_in(offset, rng)
        for obj, track_id in zip(objects, tracker.update(image, detections, float(i)), strict=True):
            given.setdefault(int(obj), set()).add(int(track_id))
    return given, tracker


def test_camera_motion_recovers_the_pan(tmp_path: Path) -> None:
    frames, offsets = _pan(tmp_path, 120)
    motion = CameraMotion()
    assert motion.estimate(frames[0]) is None  # nothing to compare the first frame with
    for image, before, after in zip(frames[1:], offsets, offsets[1:], strict=False):
        affine = motion.estimate(image)
        assert affine is not None
        # the scene moves opposite to the camera: by -120 px across, and by the wobble's change down
        assert affine[:, 2] == pytest.approx([before[0] - after[0], before[1] - after[1]], abs=1.5)
        assert affine[:, :2] == pytest.approx(np.eye(2), abs=0.01)


def test_one_track_per_object_across_a_fast_pan(tmp_path: Path) -> None:
    given, tracker = _track_pan(tmp_path, 120, compensate=True)
    assert len(given) >= 8  # the bins and piles that were wholly in view at some point
    assert all(len(ids) == 1 for ids in given.values()), given
    assert len({next(iter(ids)) for ids in given.values()}) == len(given)  # and no two objects share one
    # parked objects stay put in the compensated frame however far the camera panned
    assert all(track_shift(t) < 0.1 for t in tracker.tracks.values() if t.hits >= 2)


def test_without_compensation_the_fast_pan_breaks_tracks(tmp_path: Path) -> None:
    given, _ = _track_pan(tmp_path, 120, compensate=False)
    split = [obj for obj, ids in given.items() if len(ids) > 1]
    owners: dict[int, int] = {}
    for ids in given.values():
        for track_id in ids:
            owners[track_id] = owners.get(track_id, 0) + 1
    shared = [t for t, n in owners.items() if n > 1]
    assert split or shared  # an object got several ids, or an id jumped from one object to another
    assert len(split) >= len(given) / 2


@pytest.mark.parametrize("compensate, same_id", [(True, False), (False, True)])
def test_a_cut_to_another_view_ends_the_tracks(compensate: bool, same_id: bool) -> None:
    street, _, _ = _street()
    one, other = street[:WINDOW_H, :WINDOW_W].copy(), street[:WINDOW_H, -WINDOW_W:].copy()  # two street photos
    tracker, box = Tracker(compensate=compensate), boxes((200, 200, 300, 400, 0.9))
    before = tracker.update(one, box)[0]
    assert tracker.update(one, box)[0] == before
    # a box at the same place after a cut is another object: with compensation the cut is seen
    assert bool(tracker.update(other, box)[0] == before) is same_id


def _links_kept(frames: list[np.ndarray], offsets: list[tuple[int, int]], found: list[Detections], tracker: Tracker):
    """Of the pairs of boxes in consecutive frames that are one object (same class, IoU > 0.5 once put
    back where the window was on the street) and whose first box has a track, how many kept its id. A box
    the tracker did not start a track for (a score under its `high_score`, 0.4) has nothing to keep."""
    ids = [tracker.update(image, dets, float(i)) for i, (image, dets) in enumerate(zip(frames, found, strict=True))]
    street = [d.xyxy + np.tile(offset, 2) for d, offset in zip(found, offsets, strict=True)]
    kept = links = 0
    for i in range(1, len(frames)):
        same = box_iou(street[i - 1], street[i]) * (found[i - 1].class_id[:, None] == found[i].class_id[None, :])
        for before, after in zip(*np.nonzero(same > 0.5), strict=True):
            if ids[i - 1][before] < 0:
                continue
            links += 1
            kept += int(ids[i - 1][before] == ids[i][after] >= 0)
    return kept, links


def test_bundled_model_detections_keep_their_tracks_across_the_pan(tmp_path: Path, model_path: Path) -> None:
    from detectors.onnx_yolo import OnnxYoloDetector

    frames, offsets = _pan(tmp_path, 120)
    detector = OnnxYoloDetector(model_path, min_score=0.25)
    found = [detector.detect(image) for image in frames]
    kept, links = _links_kept(frames, offsets, found, Tracker())
    assert links >= 10  # the model sees the bins and piles in several frames each
    assert kept == links
    kept, _ = _links_kept(frames, offsets, found, Tracker(compensate=False))
    assert kept < links / 2


def boxes(*rows: tuple[float, float, float, float, float], class_id: int = 0) -> Detections:
    """Detections from (x1, y1, x2, y2, score) rows."""
    array = np.array(rows, np.float32).reshape(-1, 5)
    return Detections(array[:, :4], array[:, 4], np.full(len(array), class_id, np.int32))


def test_two_objects_crossing_keep_their_ids() -> None:
    tracker = Tracker(compensate=False)
    first: np.ndarray | None = None
    for step in range(12):  # A walks right, B left, 20 px a frame; they overlap in the middle frames
        a, b = 100 + 20 * step, 320 - 20 * step
        ids = tracker.update(BLANK, boxes((a, 100, a + 80, 200, 0.9), (b, 120, b + 80, 220, 0.8)), float(step))
        first = ids if first is None else first
        assert ids.tolist() == first.tolist()
    assert len(set(first.tolist())) == 2


@pytest.mark.parametrize(
    "missed, same_id",
    [
        (3, True),  # unseen 3 frames, within max_lost=5: the same object
        (5, True),  # exactly max_lost
        (6, False),  # longer: retired, a new id
    ],
)
def test_lost_then_found(missed: int, same_id: bool) -> None:
    tracker = Tracker(compensate=False, max_lost=5)
    seen = boxes((100, 100, 180, 200, 0.9))
    before = tracker.update(BLANK, seen)[0]
    tracker.update(BLANK, seen)
    for _ in range(missed):
        assert len(tracker.update(BLANK, boxes())) == 0
    after = tracker.update(BLANK, seen)[0]
    assert bool(after == before) is same_id


def test_a_low_score_box_extends_a_track_but_never_starts_one() -> None:
    tracker = Tracker(compensate=False, high_score=0.5, low_score=0.1)
    assert tracker.update(BLANK, boxes((100, 100, 180, 200, 0.3))).tolist() == [-1]  # alone: no track
    assert not tracker.tracks
    track_id = tracker.update(BLANK, boxes((100, 100, 180, 200, 0.9)))[0]
    assert tracker.update(BLANK, boxes((104, 102, 184, 202, 0.3))).tolist() == [track_id]  # continues it
    assert tracker.tracks[track_id].hits == 2
    assert tracker.tracks[track_id].score_mean == pytest.approx(0.6)
    assert tracker.update(BLANK, boxes((400, 100, 480, 200, 0.05))).tolist() == [-1]  # below low_score: ignored


def test_tracks_are_per_class() -> None:
    tracker = Tracker(compensate=False)
    pile = tracker.update(BLANK, boxes((100, 100, 180, 200, 0.9), class_id=0))[0]
    bin_ = tracker.update(BLANK, boxes((100, 100, 180, 200, 0.9), class_id=1))[0]
    assert bin_ != pile


def test_warp_and_iou() -> None:
    box = np.array([[10.0, 20.0, 30.0, 60.0]])
    shift_and_double = np.array([[2.0, 0.0, 5.0], [0.0, 2.0, -5.0]])
    assert warp_boxes(box, shift_and_double).tolist() == [[25.0, 35.0, 65.0, 115.0]]
    assert box_iou(box, np.array([[10.0, 20.0, 30.0, 60.0], [20.0, 20.0, 40.0, 60.0], [50, 50, 60, 60]])).tolist() == [
        [1.0, pytest.approx(1 / 3), 0.0]
    ]


def test_track_shift_of_a_walker_and_of_a_parked_object() -> None:
    tracker = Tracker(compensate=False)
    for step in range(5):
        tracker.update(BLANK, boxes((100 + 15 * step, 100, 180 + 15 * step, 200, 0.9), (400, 100, 480, 200, 0.9)))
    walker, parked = sorted(tracker.tracks.values(), key=lambda t: t.boxes[0][0])
    assert track_shift(walker) == pytest.approx(60 / np.sqrt(80 * 100))
    assert track_shift(parked) == 0.0
    assert walker.summary() == {"id": walker.track_id, "frames": 5, "seconds": 0.0, "score_mean": pytest.approx(0.9)}


def _confirmations(rules: dict, tracks: list[int], scores: list[float]) -> list[tuple[int, ...]]:
    """The track ids of the sightings a persistence rule confirms from one box a second with these ids."""
    config = CasesConfig.model_validate({"rules": {"garbage_pile": rules}})
    rule, start = PersistenceRule(config.rule), datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    confirmed = []
    for i, (track_id, score) in enumerate(zip(tracks, scores, strict=True)):
        dets = boxes((100, 100, 180, 200, score))
        dets = Detections(dets.xyxy, dets.confidence, dets.class_id, tracker_id=np.array([track_id]))
        confirmed += rule.update(Frame("cam", i, start + timedelta(seconds=i), 0.0, 0.0, BLANK), {"garbage_pile": dets})
    return [s.track_ids for s in confirmed]


@pytest.mark.parametrize(
    "rules, tracks, scores, expected",
    [
        # off by default: three frames count whatever tracks their boxes belong to
        ({}, [1, 2, 3], [0.9, 0.9, 0.9], [(1, 2, 3)]),
        ({}, [4, 4, 4], [0.9, 0.9, 0.9], [(4,)]),
        # on: three different objects (a false alarm in each frame) are not three frames of one
        ({"min_track_score": 0.5}, [1, 2, 3], [0.9, 0.9, 0.9], []),
        # one track in three frames with a good average: a case, naming the track
        ({"min_track_score": 0.5}, [4, 4, 4], [0.9, 0.5, 0.9], [(4,)]),
        # one track, each frame above min_score 0.35, but its average 0.4 is below 0.5
        ({"min_track_score": 0.5}, [4, 4, 4], [0.4, 0.4, 0.4], []),
        # two frames of track 1 and one of 2 do not make three of one; a fourth frame of 1 does
        ({"min_track_score": 0.5}, [1, 2, 1, 1], [0.9, 0.9, 0.9, 0.9], [(1,)]),
    ],
)
def test_persistence_rule_with_tracks(rules: dict, tracks: list[int], scores: list[float], expected: list) -> None:
    assert _confirmations(rules, tracks, scores) == expected


def test_min_track_score_out_of_range_names_the_key() -> None:
    with pytest.raises(ValueError, match="min_track_score"):
        CasesConfig.model_validate({"rules": {"garbage_pile": {"min_track_score": 1.5}}})

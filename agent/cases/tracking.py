"""Tracking of detections across analysed frames, robust to a moving camera.

A detector fires per frame; a case is about one object seen over time. The tracker gives each box a
track id in the style of ByteTrack: high-score boxes are matched first to the existing tracks of their
class by IoU, then low-score boxes to the tracks still unmatched (a low score may extend a track but
never starts one); unmatched high-score boxes start tracks; a track unseen for more than `max_lost`
analysed frames ends.

A patrol car or a drone moves between analysed frames (one a second), so a parked object's box moves
in the image by more than its size and plain IoU loses it. `CameraMotion` estimates the global motion
between consecutive analysed frames (sparse optical flow on a ~320 px grey copy, a partial affine by
RANSAC, the peers' method) and every track's boxes are moved by it before matching. Track box
histories therefore stay in the current frame's coordinates: a parked object's boxes coincide even
while the camera pans, which is what `track_shift` (stationarity) measures.

Matching is greedy on IoU in numpy, not the Hungarian solver ByteTrack uses (scipy or `lap`): with
tens of boxes per frame and per class the two rarely differ, and the box needs no extra dependency.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from detectors import Detections
from detectors.metrics import box_iou

_FLOW_WIDTH_PX = 320  # optical flow runs on a grey copy this wide: ~1 ms, and enough for a global motion
_MIN_POINTS = 8  # fewer tracked corners than this: no estimate (identity)
_MIN_INLIERS = 0.1  # fewer of the corners moving as one: another view (cuts: ~3%; a fast pan: 25% or more)
_LK_STOP = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 10, 0.03)  # OpenCV's samples; 30 iterations cost 1/4 more
_RETIRED_KEPT = 64  # ended tracks remembered for `summaries` (a case may be confirmed after its track ended)


@dataclass
class Track:
    """One object over time. `boxes` are its matched boxes moved into the latest frame's coordinates."""

    track_id: int
    class_id: int
    first_t: float
    last_t: float
    boxes: deque[np.ndarray]
    hits: int = 1
    score_sum: float = 0.0
    lost: int = 0  # analysed frames since it was last matched
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # xyxy per frame, compensated

    @property
    def score_mean(self) -> float:
        """The track-average score: one confident frame among weak ones does not make a sure object."""
        return self.score_sum / self.hits

    @property
    def seconds(self) -> float:
        return self.last_t - self.first_t

    def summary(self) -> dict[str, float | int]:
        """What a case's explanation records of the track."""
        return {
            "id": self.track_id,
            "frames": self.hits,
            "seconds": round(self.seconds, 2),
            "score_mean": round(self.score_mean, 4),
        }


def track_shift(track: Track) -> float:
    """How far the track's box wandered in the compensated frame, as a fraction of its size.

    The spread of the box centres over the history divided by the square root of the mean box area;
    0 for a parked object however the camera moved, about 1 for one that moved by its own size.
    """
    if len(track.boxes) < 2:
        return 0.0
    xyxy = np.stack(track.boxes)
    wh = np.clip(xyxy[:, 2:] - xyxy[:, :2], 1.0, None)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    spread = float(np.linalg.norm(centres.max(axis=0) - centres.min(axis=0)))
    return spread / float(np.sqrt((wh[:, 0] * wh[:, 1]).mean()))


def warp_boxes(xyxy: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) moved by a 2x3 partial affine: centres transformed, sides scaled."""
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) / 2 * np.sqrt(abs(np.linalg.det(affine[:, :2])))
    moved = centres @ affine[:, :2].T + affine[:, 2]
    return np.concatenate([moved - half, moved + half], axis=1)


class CameraMotion:
    """The camera's global motion between consecutive calls, as a 2x3 affine in full-size pixels."""

    def __init__(self, width_px: int = _FLOW_WIDTH_PX) -> None:
        self._width_px = width_px
        self._previous: np.ndarray | None = None
        self._shape: tuple[int, ...] = ()
        self.view_changed = False  # the last image shows another view: the previous one's corners are not in it

    def estimate(self, image: np.ndarray) -> np.ndarray | None:
        """The affine taking the previous image's pixels to this one's; None on the first image, after a
        change of size, or where too few corners could be followed (a blank or blurred frame, or another
        view: then `view_changed` is set too)."""
        self.view_changed = False
        grey = _small_grey(image, self._width_px)
        scale = np.array([grey.shape[1] / image.shape[1], grey.shape[0] / image.shape[0]])
        previous, self._previous = self._previous, grey
        same_size, self._shape = self._shape == image.shape, image.shape
        if previous is None or not same_size:
            return None
        corners = cv2.goodFeaturesToTrack(previous, maxCorners=200, qualityLevel=0.01, minDistance=8, blockSize=3)
        if corners is None or len(corners) < _MIN_POINTS:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            previous, grey, corners, None, winSize=(21, 21), maxLevel=3, criteria=_LK_STOP
        )
        ok = status.ravel() == 1
        affine, inliers = None, None
        if ok.sum() >= _MIN_POINTS:
            affine, inliers = cv2.estimateAffinePartial2D(
                corners[ok], moved[ok], method=cv2.RANSAC, ransacReprojThreshold=2.0
            )
        followed = 0 if inliers is None else int(inliers.sum())
        if affine is None or followed < max(_MIN_POINTS, _MIN_INLIERS * len(corners)):
            self.view_changed = True  # the corners were there, but they do not move as one scene
            return None
        affine[:, 2] /= scale  # translation back to full-size pixels; rotation and scale are unchanged
        return affine


class Tracker:
    """ByteTrack-style association per class, with camera-motion compensation. One per source."""

    def __init__(
        self,
        high_score: float = 0.4,
        low_score: float = 0.1,
        match_iou: float = 0.2,
        low_match_iou: float = 0.4,
        max_lost: int = 5,
        history: int = 64,
        compensate: bool = True,
    ) -> None:
        """`high_score`: boxes at least this sure are matched first and may start tracks; lower it for a
        model that is rarely sure, at the cost of tracks for passing false alarms. `low_score`: boxes
        below it are ignored. `match_iou` / `low_match_iou`: the least IoU with a track's predicted box
        for a high / low box to continue it. `max_lost`: analysed frames a track survives unseen
        (occlusion by a passing bus) before its id is retired. `history`: boxes kept per track.
        `compensate`: camera-motion compensation (off only to show what it buys)."""
        self.high_score, self.low_score = high_score, low_score
        self.match_iou, self.low_match_iou = match_iou, low_match_iou
        self.max_lost, self.history = max_lost, history
        self.motion = CameraMotion() if compensate else None
        self.tracks: dict[int, Track] = {}
        self._retired: deque[Track] = deque(maxlen=_RETIRED_KEPT)
        self._next_id = 1

    def update(self, image: np.ndarray, detections: Detections, t: float = 0.0) -> np.ndarray:
        """Feed one analysed frame (at `t` seconds); returns the track id of each box, -1 for a low-score
        box that continued no track."""
        affine = self.motion.estimate(image) if self.motion is not None else None
        if self.motion is not None and self.motion.view_changed:  # the old boxes mean nothing in this view
            self._retired.extend(self.tracks.values())
            self.tracks.clear()
        tracks = list(self.tracks.values())
        if affine is not None:
            for track in tracks:
                track.boxes = deque(warp_boxes(np.stack(track.boxes), affine), maxlen=self.history)
                track.velocity = (track.velocity.reshape(2, 2) @ affine[:, :2].T).ravel()
        ids = np.full(len(detections), -1, np.int64)
        xyxy = detections.xyxy.astype(np.float64)
        predicted = np.array([track.boxes[-1] + track.velocity * (track.lost + 1) for track in tracks]).reshape(-1, 4)
        same_class = np.array([track.class_id for track in tracks])[:, None] == detections.class_id[None, :]
        iou = box_iou(predicted, xyxy) * same_class
        high = detections.confidence >= self.high_score
        low = ~high & (detections.confidence >= self.low_score)
        free = np.ones(len(tracks), bool)
        recent = np.array([track.lost == 0 for track in tracks], bool)  # low boxes continue only these
        for boxes, min_iou, only_recent in ((high, self.match_iou, False), (low, self.low_match_iou, True)):
            for row, col in _greedy(iou, free & recent if only_recent else free, boxes, min_iou):
                free[row] = False
                ids[col] = tracks[row].track_id
                self._extend(tracks[row], xyxy[col], float(detections.confidence[col]), t)
        for row in np.flatnonzero(free):
            tracks[row].lost += 1
            if tracks[row].lost > self.max_lost:
                self._retired.append(self.tracks.pop(tracks[row].track_id))
        for col in np.flatnonzero(high & (ids < 0)):
            ids[col] = self._start(xyxy[col], int(detections.class_id[col]), float(detections.confidence[col]), t)
        return ids

    def update_with_detections(self, image: np.ndarray, detections: Detections, t: float = 0.0) -> Detections:
        """`update`, returning the detections with their `tracker_id` set."""
        return replace(detections, tracker_id=self.update(image, detections, t))

    def summaries(self, track_ids: tuple[int, ...]) -> list[dict[str, float | int]]:
        """`Track.summary` of each id, live or recently ended, in the order given; unknown ids are left out."""
        known = {t.track_id: t for t in self._retired} | self.tracks
        return [known[i].summary() for i in track_ids if i in known]

    def _extend(self, track: Track, box: np.ndarray, score: float, t: float) -> None:
        step = (box - track.boxes[-1]) / (track.lost + 1)
        track.velocity = 0.5 * track.velocity + 0.5 * step
        track.boxes.append(box)
        track.hits += 1
        track.score_sum += score
        track.last_t = t
        track.lost = 0

    def _start(self, box: np.ndarray, class_id: int, score: float, t: float) -> int:
        track_id, self._next_id = self._next_id, self._next_id + 1
        self.tracks[track_id] = Track(track_id, class_id, t, t, deque([box], maxlen=self.history), 1, score)
        return track_id


def _small_grey(image: np.ndarray, width_px: int) -> np.ndarray:
    """A grey copy about `width_px` wide: halved by Gaussian pyramid steps (cheap, and low-passed so that
    the corners are not aliasing), then resized; ~1.5 ms from 1080p where one INTER_AREA resize costs 6."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    while grey.shape[1] >= 2 * width_px:
        grey = cv2.pyrDown(grey)
    if grey.shape[1] > width_px:
        height_px = round(grey.shape[0] * width_px / grey.shape[1])
        grey = cv2.resize(grey, (width_px, height_px), interpolation=cv2.INTER_AREA)
    return grey


def _greedy(iou: np.ndarray, rows: np.ndarray, cols: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (track row, box column), best IoU first, each row and column used once, IoU >= min_iou."""
    masked = np.where(rows[:, None] & cols[None, :], iou, 0.0)
    order = np.argsort(-masked, axis=None, kind="stable")
    used_rows, used_cols, pairs = set(), set(), []
    for flat in order:
        row, col = divmod(int(flat), masked.shape[1])
        if masked[row, col] < min_iou:
            break
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
            pairs.append((row, col))
    return pairs

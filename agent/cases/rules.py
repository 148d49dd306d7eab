"""The persistence rule: a type seen in enough frames within a time window becomes a case, once.

One rule object per source. While a case is open, further sightings extend it instead of raising
another; it closes after `close_after_s` unseen, or (moving cameras) when the camera has moved
more than `max_distance_m` from where the case was raised and none of the tracks it was confirmed
on is still in view (a tracked object is one problem, however far it is followed).

The rule for a type is asked per frame with the frame's time, so a seasonal profile applies by
date. Before a case is confirmed the rule also checks, where configured: active hours (frames
outside them do not count), minimum presence on fixed cameras (a bag carried past is not a
pile), that the boxes change (smoke flickers, a grey patch does not), on fixed cameras that
the box stays put (a stall stands, a cart pushed past moves; a move starts the count again), and
(`min_track_score`) that the frames show one tracked object with a good track-average score, not a
different false alarm in each frame. A confirmed sighting's `explanation` holds the numbers those
checks saw.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import NamedTuple

import numpy as np

from agent.cases.rule_checks import best_box, box_shift, boxes_change, pixel_change
from agent.config.rules import RuleConfig
from agent.geo.earth import distance_m
from detectors import Detections
from streams import Frame


@dataclass
class Sighting:
    """The frames that made (or extend) one case of one type."""

    case_type: str
    first_seen: datetime
    last_seen: datetime
    best_frame: Frame
    best_detections: Detections
    score_max: float
    score_sum: float
    frames: int
    explanation: dict[str, object] = field(default_factory=dict)  # the checks' numbers, for the case record
    track_ids: tuple[int, ...] = ()  # the tracks in the confirming frames, most frames first

    @property
    def score_mean(self) -> float:
        return self.score_sum / self.frames


_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)

RuleFor = Callable[[str, datetime], RuleConfig]  # (case type, frame time) -> the rule in force then


class _Hit(NamedTuple):
    """A frame that counted for a type."""

    utc: datetime
    score: float
    frame: Frame
    detections: Detections
    box: np.ndarray  # the best box, for the motion check
    change: float  # grey-level change inside the box since the previous hit (motion check only)
    tracks: dict[int, float]  # track id -> its box's score in this frame (boxes with a tracker id only)


@dataclass
class _Presence:
    """An unbroken run of counting frames (gaps no longer than the rule's window)."""

    since: datetime
    last: datetime
    frames: int = 0
    score_sum: float = 0.0
    score_max: float = 0.0
    box: np.ndarray | None = None  # the best box of the run's first hit: where it stands (stationary check)
    shift: float = 0.0  # the largest `box_shift` from there so far


@dataclass
class _TypeState:
    hits: deque[_Hit] = field(default_factory=deque)
    open_case: Sighting | None = None
    presence: _Presence | None = None


class PersistenceRule:
    """Turns per-frame detections, already mapped to case types, into confirmed sightings."""

    def __init__(
        self,
        rule_for: RuleFor,
        source_kind: str = "vehicle",
        tz: tzinfo = UTC,
    ) -> None:
        """`rule_for(case_type, utc)` gives the rule in force at that time (`CasesConfig.rule`); `tz`
        is the zone of its `hours`; `min_present_s` applies only when `source_kind` is "fixed"."""
        self._rule_for = rule_for
        self._fixed = source_kind == "fixed"
        self._tz = tz
        self._states: dict[str, _TypeState] = {}

    def update(self, frame: Frame, by_type: dict[str, Detections]) -> list[Sighting]:
        """Feed one analysed frame; returns the sightings confirmed by it (usually none)."""
        confirmed: list[Sighting] = []
        local = frame.utc.astimezone(self._tz)
        for case_type in set(by_type) | set(self._states):
            rule = self._rule_for(case_type, frame.utc)
            state = self._states.setdefault(case_type, _TypeState())
            detections = by_type.get(case_type)
            self._expire(state, rule, frame, detections)
            if detections is None or not len(detections) or not rule.active_at(local):
                continue
            score = float(detections.confidence.max())
            if score < rule.min_score:
                continue
            if state.open_case is not None:
                _extend(state.open_case, frame, detections, score)
                continue
            stationary = self._fixed and rule.max_shift is not None
            shift = _shift(state, rule, detections) if stationary else 0.0
            state.hits.append(_hit(state.hits, rule, frame, detections, score))
            _release_images(state.hits)
            presence = _present(state, frame.utc, score, state.hits[-1].box)
            presence.shift = max(presence.shift, shift)
            if len(state.hits) < rule.min_detections:
                continue
            if self._fixed and (frame.utc - presence.since).total_seconds() < rule.min_present_s:
                continue
            if rule.require_motion and not _moved(state.hits, rule):
                continue
            track_ids = _tracks(state.hits, rule)
            if rule.min_track_score is not None and not track_ids:
                continue
            state.open_case = _confirm(case_type, state.hits, track_ids)
            if self._fixed and rule.min_present_s > 0:
                _since_presence(state.open_case, presence)
            if self._fixed and (rule.min_present_s > 0 or stationary):
                state.open_case.explanation |= _presence_numbers(presence, rule, frame.utc, stationary)
            state.hits.clear()
            state.presence = None
            confirmed.append(state.open_case)
        return confirmed

    def _expire(self, state: _TypeState, rule: RuleConfig, frame: Frame, detections: Detections | None) -> None:
        while state.hits and (frame.utc - state.hits[0].utc).total_seconds() > rule.window_s:
            state.hits.popleft()
        if state.presence is not None and (frame.utc - state.presence.last).total_seconds() > rule.window_s:
            state.presence = None  # unseen longer than the window: whatever comes next is new
        case = state.open_case
        if case is None:
            return
        unseen_s = (frame.utc - case.last_seen).total_seconds()
        where, here = case.best_frame.fix, frame.fix
        moved_m = distance_m(where.lat, where.lon, here.lat, here.lon) if where and here else 0.0
        if unseen_s > rule.close_after_s or (moved_m > rule.max_distance_m and not _in_view(case, detections)):
            state.open_case = None


def _in_view(case: Sighting, detections: Detections | None) -> bool:
    """Whether one of the tracks the case was confirmed on is still in this frame: the same object, however
    far the camera has driven meanwhile (a long straight view, a poor GPS fix)."""
    if detections is None or detections.tracker_id is None or not case.track_ids:
        return False
    return bool(set(case.track_ids) & set(detections.tracker_id.tolist()))


def _confirm(case_type: str, hits: deque[_Hit], track_ids: tuple[int, ...]) -> Sighting:
    best = max((h for h in hits if h.frame.image.size), key=lambda h: h.score)
    scores = [h.score for h in hits]
    return Sighting(
        case_type=case_type,
        first_seen=hits[0].utc,
        last_seen=hits[-1].utc,
        best_frame=best.frame,
        best_detections=best.detections,
        score_max=max(scores),
        score_sum=sum(scores),
        frames=len(scores),
        track_ids=track_ids,
    )


def _extend(case: Sighting, frame: Frame, detections: Detections, score: float) -> None:
    case.last_seen = frame.utc
    case.frames += 1
    case.score_sum += score
    case.score_max = max(case.score_max, score)


def _hit(hits: deque[_Hit], rule: RuleConfig, frame: Frame, detections: Detections, score: float) -> _Hit:
    box = best_box(detections)
    change = pixel_change(hits[-1].frame, hits[-1].box, frame, box) if rule.require_motion and hits else 0.0
    tracks: dict[int, float] = {}
    if detections.tracker_id is not None:
        for track_id, box_score in zip(detections.tracker_id.tolist(), detections.confidence.tolist(), strict=True):
            if track_id >= 0:
                tracks[track_id] = max(box_score, tracks.get(track_id, 0.0))
    return _Hit(frame.utc, score, frame, detections, box, change, tracks)


def _release_images(hits: deque[_Hit]) -> None:
    """Keep the pixels of the best hit (the evidence) and the latest (the next motion check) only: a
    30 s window of full 1080p frames would hold over 100 MB per camera. (When the best leaves the
    window, the evidence is the best of those still holding pixels.)"""
    best = max((i for i in range(len(hits)) if hits[i].frame.image.size), key=lambda i: hits[i].score)
    for i in range(len(hits) - 1):
        if i != best and hits[i].frame.image.size:
            hits[i] = hits[i]._replace(frame=dataclasses.replace(hits[i].frame, image=_NO_IMAGE))


def _tracks(hits: deque[_Hit], rule: RuleConfig) -> tuple[int, ...]:
    """The tracks seen in the hits, most frames first; with `min_track_score` set, only those seen in
    `min_detections` of them with a mean score of at least `min_track_score` (empty: not confirmed)."""
    frames: dict[int, int] = {}
    score_sum: dict[int, float] = {}
    for hit in hits:
        for track_id, score in hit.tracks.items():
            frames[track_id] = frames.get(track_id, 0) + 1
            score_sum[track_id] = score_sum.get(track_id, 0.0) + score
    if rule.min_track_score is not None:
        frames = {
            t: n for t, n in frames.items() if n >= rule.min_detections and score_sum[t] / n >= rule.min_track_score
        }
    return tuple(sorted(frames, key=lambda t: (-frames[t], t)))


def _moved(hits: deque[_Hit], rule: RuleConfig) -> bool:
    """The motion check over the hits in the window; the oldest hit's change was against an expired one."""
    return boxes_change([h.box for h in hits], [h.change for h in list(hits)[1:]], rule)


def _shift(state: _TypeState, rule: RuleConfig, detections: Detections) -> float:
    """How far the type's boxes lie from where its run began; past `max_shift` it has moved, so the
    frames before no longer count and the run starts again here (returns 0 then)."""
    if state.presence is None or state.presence.box is None:
        return 0.0
    shift = box_shift(state.presence.box, detections.xyxy)
    if rule.max_shift is not None and shift <= rule.max_shift:
        return shift
    state.hits.clear()
    state.presence = None
    return 0.0


def _presence_numbers(presence: _Presence, rule: RuleConfig, utc: datetime, stationary: bool) -> dict[str, object]:
    """What the presence checks saw when they confirmed: how long it was there and how far it moved."""
    numbers: dict[str, object] = {"present_s": round((utc - presence.since).total_seconds(), 1)}
    if rule.min_present_s > 0:
        numbers["min_present_s"] = rule.min_present_s
    if stationary:
        numbers["shift"] = round(presence.shift, 3)
        numbers["max_shift"] = rule.max_shift
    return numbers


def _present(state: _TypeState, utc: datetime, score: float, box: np.ndarray) -> _Presence:
    """Count a hit in the type's current run of presence, starting a run (where `box` stands) if there is none."""
    if state.presence is None:
        state.presence = _Presence(since=utc, last=utc, box=box)
    presence = state.presence
    presence.last = utc
    presence.frames += 1
    presence.score_sum += score
    presence.score_max = max(presence.score_max, score)
    return presence


def _since_presence(case: Sighting, presence: _Presence) -> None:
    """A case that had to be present a while was seen from the start of that run, in all its frames."""
    case.first_seen = presence.since
    case.frames = presence.frames
    case.score_sum = presence.score_sum
    case.score_max = presence.score_max

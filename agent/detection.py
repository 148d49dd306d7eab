"""Several detectors on one decode: which of them watch a source, when each is due, and how their boxes
become case types.

A source is decoded once; each sampled frame goes to the detectors that apply to the source
(`detectors[].sources`, `.kinds`) and are due (`every_s`: smoke twice a second, garbage once every 2 s,
on the same frames). Each detector keeps its own tracker, because its boxes arrive at its own pace, and
its own class map, co-located groups and overflow evidence (`cases.overflow`: garbage at a bin of the
same model), because class names belong to a model. A detector's
`vetoes` drop its boxes that another detector sees as something else (detectors/vetoes.py) on the same
frame, before tracking. Every box is tagged with the detector that found it (`Detections.model`),
which is how a case records its model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from agent.cases.colocated import Colocator, concat
from agent.cases.overflow import OverflowEvidence
from agent.cases.rules import Sighting
from agent.cases.tracking import Tracker
from agent.config import ColocatedConfig, DetectorEntry, SourceConfig
from agent.config.rules import OverflowConfig
from agent.detector_setup import LoadedDetector
from detectors import Detections
from detectors.vetoes import apply_vetoes
from streams import Frame

log = logging.getLogger(__name__)

EARLY_S = 0.05  # a frame this much before a detector's due time counts as on time (frame-time jitter)


class DetectorTypes:
    """One detector's classes as case types: its class map, then its co-located groups (`cases.colocated`)
    and the overflow evidence `cases.overflow` asks for, by this detector's class names."""

    def __init__(
        self, loaded: LoadedDetector, colocated: Sequence[ColocatedConfig], overflow: OverflowConfig | None = None
    ) -> None:
        names = loaded.detector.class_names
        self.loaded = loaded
        self._class_to_type = np.array([loaded.entry.class_map.get(n, "") for n in names], dtype=object)
        self._colocator = Colocator(colocated, names)
        self._overflow = OverflowEvidence(overflow or OverflowConfig(), names)

    def by_type(self, detections: Detections) -> dict[str, Detections]:
        """The detector's boxes grouped by case type, with co-located groups and composed overflow boxes as
        boxes of their type, all tagged with the detector; classes without a case type are dropped."""
        if not len(detections):
            return {}
        types = self._class_to_type[detections.class_id]
        by_type = self._colocator.add_groups({t: detections[types == t] for t in set(types) if t}, detections)
        by_type = self._overflow.apply(by_type, detections)
        return {t: d if d.model == detections.model else replace(d, model=detections.model) for t, d in by_type.items()}


@dataclass
class _Slot:
    """A detector as one source runs it: its tracker and when it is next due (media seconds)."""

    types: DetectorTypes
    tracker: Tracker
    next_due: float | None = None
    last_media_s: float = float("-inf")

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def entry(self) -> DetectorEntry:
        return self.types.loaded.entry

    def due(self, media_s: float) -> bool:
        """Whether this frame goes to the detector; advances its schedule when it does."""
        every_s = self.entry.every_s
        if media_s < self.last_media_s:  # the stream started again (a camera reconnected): start afresh
            self.next_due = None
        self.last_media_s = media_s
        if every_s is None:
            return True
        if self.next_due is not None and media_s < self.next_due - EARLY_S:
            return False
        behind = self.next_due is None or media_s >= self.next_due + every_s  # after a gap: from now on
        self.next_due = media_s + every_s if behind else self.next_due + every_s
        return True


@dataclass
class Found:
    """What the due detectors found in one frame, by detector id: as they found it (`raw`, before vetoes),
    as tracked (`by_model`), and what each cost (`model_s`)."""

    by_model: dict[str, Detections] = field(default_factory=dict)
    raw: dict[str, Detections] = field(default_factory=dict)
    model_s: dict[str, float] = field(default_factory=dict)
    detect_s: float = 0.0
    track_s: float = 0.0


class SourceDetectors:
    """The detectors that watch one source."""

    def __init__(self, types: Sequence[DetectorTypes], source: SourceConfig) -> None:
        # fed analysed frames only, so the motion compensated is that between them; fixed cameras do not
        # move, and compensation would only add cost and read a truck filling the view as a cut
        compensate = source.kind != "fixed"
        self._slots = [_Slot(t, Tracker(compensate=compensate)) for t in types if t.loaded.entry.applies_to(source)]
        watching = {slot.id for slot in self._slots}
        for slot in self._slots:
            for veto in slot.entry.vetoes:
                if veto.veto_with not in watching:
                    log.warning(
                        "%s: %s is not vetoed here: %s does not watch this source", source.id, slot.id, veto.veto_with
                    )
        self.model_s = {slot.id: 0.0 for slot in self._slots}  # seconds each detector spent, summed
        self.runs = dict.fromkeys(self.model_s, 0)  # frames each detector saw

    def __len__(self) -> int:
        return len(self._slots)

    def detect(self, frame: Frame) -> Found:
        """Run the detectors due for this frame (and those that veto them, due or not), drop the vetoed
        boxes, then track each detector's boxes; each result is tagged with its detector."""
        found = Found()
        due = {slot.id for slot in self._slots if slot.due(frame.media_s)}
        due |= {v.veto_with for slot in self._slots if slot.id in due for v in slot.entry.vetoes}
        raw = found.raw
        for slot in self._slots:
            if slot.id not in due:
                continue
            started = time.perf_counter()
            raw[slot.id] = replace(slot.types.loaded.detector.detect(frame.image), model=slot.id)
            spent = found.model_s[slot.id] = time.perf_counter() - started
            found.detect_s += spent
            self.model_s[slot.id] += spent
            self.runs[slot.id] += 1
        started = time.perf_counter()
        for slot in self._slots:
            if slot.id not in raw:
                continue
            detections = raw[slot.id]
            for veto in slot.entry.vetoes:
                if veto.veto_with in raw:  # a vetoing detector that does not watch this source: no veto
                    by = raw[veto.veto_with]
                    detections = apply_vetoes(detections, by, veto.classes, veto.min_coverage, veto.min_iou)
            found.by_model[slot.id] = slot.tracker.update_with_detections(
                frame.image, detections, frame.utc.timestamp()
            )
        found.track_s = time.perf_counter() - started
        return found

    def by_type(self, found: Found) -> dict[str, Detections]:
        """Every detector's boxes as case types; a type two detectors give holds the boxes of both."""
        by_type: dict[str, Detections] = {}
        slots = {slot.id: slot for slot in self._slots}
        for model, detections in found.by_model.items():
            for case_type, boxes in slots[model].types.by_type(detections).items():
                by_type[case_type] = concat(by_type[case_type], boxes) if case_type in by_type else boxes
        return by_type

    def tracks(self, sighting: Sighting) -> list[dict[str, float | int]]:
        """The summaries of the sighting's tracks, from the tracker of the detector that saw it."""
        slot = next((s for s in self._slots if s.id == sighting.best_detections.model), None)
        return slot.tracker.summaries(sighting.track_ids) if slot else []


__all__ = ["DetectorTypes", "Found", "SourceDetectors"]

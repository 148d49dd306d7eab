"""The evidence and the outbox entry of a `cleared` observation (agent.cases.verification): a snapshot of
the clear place, masked like a case's, signed and kept in the outbox like a case, so that it goes
out with the same acknowledgements and is stored exactly once."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import numpy as np

from agent.cases.registry import CaseRegistry
from agent.cases.verification import Clearance, Verifier
from agent.config import AgentConfig, DetectorEntry, SourceConfig
from agent.evidence.privacy import FrameBoxes, Privacy
from agent.evidence.snapshots import snapshot_jpeg
from detectors import Detections, Detector
from protocol.signing import Signer
from streams import Frame
from uploader import Outbox

log = logging.getLogger(__name__)


class LoadedModel(Protocol):
    """A loaded `detectors:` entry (agent.detector_setup.LoadedDetector, a room above this one)."""

    entry: DetectorEntry
    detector: Detector


class ClearedWriter:
    """Turns each Clearance into a signed `cleared` observation with its snapshot in the outbox."""

    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        signer: Signer,
        privacy: Privacy,
        detectors: Sequence[LoadedModel],
    ) -> None:
        """`detectors`: the loaded detectors, to name the one whose classes give a case's type."""
        self.config = config
        self.outbox = outbox
        self.signer = signer
        self.privacy = privacy
        self.detectors = detectors

    def watch(self, source: SourceConfig, registry: CaseRegistry) -> SourceVerification:
        return SourceVerification(self, Verifier(registry, source, self.config.cases))

    def types_of(self, ran: Collection[str]) -> Callable[[str], bool]:
        """Whether a case type was looked for by the detectors that ran: one whose class map gives it, or, for
        a type no class map gives (co-located groups, composed overflow), any detector at all."""
        mapped = {t for d in self.detectors for t in d.entry.class_map.values()}
        given = {t for d in self.detectors if d.entry.id in ran for t in d.entry.class_map.values()}
        return lambda case_type: case_type in given or (case_type not in mapped and bool(ran))

    def model_for(self, case_type: str) -> tuple[str, str]:
        """(name, version) of the detector whose classes give the type; the first detector otherwise."""
        loaded = next((d for d in self.detectors if case_type in d.entry.class_map.values()), self.detectors[0])
        return loaded.detector.name, loaded.detector.version

    def store(self, clearance: Clearance, frame_boxes: FrameBoxes | None) -> bool:
        """Sign and keep the observation with its snapshot; False when it was kept before or the disk refused
        it (logged: the next pass observes again)."""
        files = {"snapshot.jpg": self._snapshot(clearance, frame_boxes)}
        evidence = [
            {"name": name, "media_type": "image/jpeg", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in files.items()
        ]
        record = self.signer.sign(
            clearance.to_record(self.config.agent_id, self.model_for(clearance.case.type), evidence)
        )
        payload = json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8")
        try:
            kept = self.outbox.accept(clearance.id, 1, payload, files, kind="cleared")
        except OSError as exc:
            log.error(
                "%s: cleared observation of case %s not stored: %s", clearance.source.id, clearance.case.case_id, exc
            )
            return False
        if kept:
            log.info(
                "%s: case %s %s not seen for %d frames with its place in view; cleared %s accepted",
                clearance.source.id,
                clearance.case.case_id,
                clearance.case.type,
                clearance.frames,
                clearance.id,
            )
        return kept

    def _snapshot(self, clearance: Clearance, frame_boxes: FrameBoxes | None) -> bytes:
        """The clear frame, masked as a case's snapshot is; a fixed camera's case box drawn on it."""
        frame: Frame = clearance.frame
        frame, _masked = self.privacy.evidence_frame(frame, frame_boxes.get(frame) if frame_boxes else ())
        case = clearance.case
        drawn = Detections.empty()
        if case.box is not None and clearance.source.kind == "fixed":
            drawn = Detections(
                np.array([case.box], dtype=np.float32),
                np.zeros(1, dtype=np.float32),
                np.zeros(1, dtype=np.int64),
                (f"{case.type} cleared",),
            )
        evidence = self.config.evidence
        return snapshot_jpeg(frame, drawn, evidence.jpeg_quality, evidence.max_width_px)


class SourceVerification:
    """One source's verifier and the writer of what it finds: one call per analysed frame."""

    def __init__(self, writer: ClearedWriter, verifier: Verifier) -> None:
        self.writer = writer
        self.verifier = verifier

    def check(
        self, frame: Frame, by_type: dict[str, Detections], ran: Collection[str], frame_boxes: FrameBoxes | None = None
    ) -> int:
        """Store a `cleared` observation for each case this frame shows clear long enough; how many. `ran`: the
        ids of the detectors that looked at this frame (one not due says nothing about its types)."""
        looked_for = self.writer.types_of(ran)
        return sum(self.writer.store(c, frame_boxes) for c in self.verifier.update(frame, by_type, looked_for))

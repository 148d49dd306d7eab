"""What the privacy configuration does to a case's evidence: the masked frame it is drawn from, what the
case record says was masked, and the files that stay on the box (`state_dir/private/`, never uploaded).

The unmasked original never goes into the outbox. It is written to the private folder only where
`privacy.originals_days` asks (for a court or an appeal), and clips kept on the box (`clips: local`)
go there too; both are deleted once older than their days.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import cv2

from agent.config.privacy import PrivacyConfig
from agent.evidence.masking import Masker
from detectors import Detections
from streams import Frame

log = logging.getLogger(__name__)

_REMEMBERED_FRAMES = 4096  # analysed frames per source whose boxes are kept; far beyond any rule window
_DAY_S = 86400.0


class FrameBoxes:
    """The detections of a source's recent analysed frames, by frame index: the persons and vehicles in
    the frame a case picks as its evidence, which may be several frames back. A frame may hold the boxes
    of several detectors (each with its own class names)."""

    def __init__(self) -> None:
        self._by_index: OrderedDict[int, tuple[Detections, ...]] = OrderedDict()

    def remember(self, frame: Frame, *detections: Detections) -> None:
        self._by_index[frame.index] = detections
        while len(self._by_index) > _REMEMBERED_FRAMES:
            self._by_index.popitem(last=False)

    def get(self, frame: Frame) -> tuple[Detections, ...]:
        return self._by_index.get(frame.index, ())


class Privacy:
    """Masks evidence frames and keeps what must not leave the box; shared by all sources."""

    def __init__(self, config: PrivacyConfig, private_dir: Path) -> None:
        self.config = config
        self.private_dir = private_dir
        self.masker = Masker(config) if config.masks_anything else None
        self.needs_boxes = config.persons or config.plates  # whether FrameBoxes must be kept at all
        self.purge()

    def evidence_frame(self, frame: Frame, frame_detections: Sequence[Detections] = ()) -> tuple[Frame, dict | None]:
        """(the frame with its masks, the case's `privacy` record); unchanged and None when nothing is masked."""
        if self.masker is None:
            return frame, None
        masks = self.masker.find(frame.image, frame_detections)
        record = masks.record(self.config.method)
        if not len(masks.boxes):
            return frame, record
        return dataclasses.replace(frame, image=self.masker.apply(frame.image, masks)), record

    @property
    def clip_policy(self) -> str:
        """`original` where nothing is masked, else the configured `masked` or `local`."""
        return self.config.clips if self.masker is not None else "original"

    def keep_original(self, case_id: str, revision: int, frame: Frame, quality: int) -> None:
        """The unmasked evidence frame, on the box only, where `originals_days` asks for it."""
        if self.config.originals_days <= 0:
            return
        ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        try:
            if ok:
                self._write(case_id, revision, "original.jpg", jpeg.tobytes())
        except OSError as exc:  # a full disk costs the local original, never the case
            log.warning("case %s: unmasked original not kept on the box (%s)", case_id, exc)

    def keep_clip(self, case_id: str, revision: int, data: bytes) -> Path:
        """A clip that is not uploaded (`clips: local`), kept `local_clips_days`."""
        return self._write(case_id, revision, "clip.mp4", data)

    def _write(self, case_id: str, revision: int, name: str, data: bytes) -> Path:
        folder = self.private_dir / case_id / f"r{revision}"  # case ids are our own UUIDs: safe as names
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        self.purge()
        return path

    def purge(self) -> None:
        """Delete private files older than their retention (originals_days, local_clips_days)."""
        if not self.private_dir.is_dir():
            return
        now = time.time()
        days = {"original.jpg": self.config.originals_days, "clip.mp4": self.config.local_clips_days}
        for path in self.private_dir.glob("*/r*/*"):
            if now - path.stat().st_mtime > days.get(path.name, 0.0) * _DAY_S:
                path.unlink()
                log.info("private %s deleted: older than its retention", path.relative_to(self.private_dir))
        for folder in self.private_dir.glob("*/r*"):
            if not any(folder.iterdir()):
                shutil.rmtree(folder)

"""Revision 2 of a case: the same case with its clip, stored once the clip's post-roll has been read.

A case is accepted at once with its snapshot (revision 1), so that it goes out without waiting; the
clip needs `clip_post_s` more seconds of video. The pipeline tells `ClipJobs` the media time of every
frame it reads; once that passes the event time plus the post-roll (or the source ends), the clip is
cut (from the file for recorded footage, from the source's PacketRing for cameras) and revision 2 is
handed back with the snapshot and `clip.mp4` for the pipeline to store (the stage does not call up
into the pipeline). The outbox lets revision 2 supersede an unsent revision 1.

A case seen again while its clip is still owed (a second sighting within the post-roll) is one job:
its newest revision gets one clip from the first event's pre-roll to the last one's post-roll. Two
jobs would both take "the next revision" and the second would find it taken, losing a clip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import av

from agent.cases.case import Case, EvidenceFile
from agent.config import EvidenceConfig, SourceConfig
from agent.evidence.clip_masking import masked_clip
from agent.evidence.clips import Clip, ClipError, cut_from_file, cut_from_ring
from agent.evidence.privacy import Privacy
from streams.packets import PacketRing
from streams.video import VideoSource, is_live

log = logging.getLogger(__name__)

CLIP_NAME = "clip.mp4"
CLIP_MEDIA_TYPE = "video/mp4"


def ring_for(config: EvidenceConfig, source: SourceConfig) -> PacketRing | None:
    """Cameras buffer their encoded packets for clips; files are cut from the file, so need none. A
    two-input camera's record input always fills one: its snapshot is decoded from there too."""
    if source.record_url:
        return PacketRing(config.ring_max_s, int(config.ring_max_mb * 1e6))
    if not config.clips or not is_live(source.url):
        return None
    return PacketRing(config.ring_max_s, int(config.ring_max_mb * 1e6))


@dataclass
class _Pending:
    case: Case  # the newest revision of the case: the clip's revision follows it
    files: dict[str, bytes]
    t_s: float  # media time of the latest event: the post-roll runs from here
    first_t_s: float  # media time of the earliest event still owed a clip: the pre-roll runs to here


class ClipJobs:
    """The clips one source still owes its cases; used by that source's thread only."""

    def __init__(
        self, config: EvidenceConfig, source: SourceConfig, video: VideoSource, privacy: Privacy | None = None
    ) -> None:
        self.config = config
        self.source = source
        self.video = video
        self.privacy = privacy  # None: clips go out as the camera sent them
        self._pending: list[_Pending] = []

    def add(self, case: Case, files: dict[str, bytes], t_s: float) -> None:
        """Owe `case` a clip around media time `t_s` (the frame that confirmed it); a case already owed
        one gets a single clip covering both events, as its newest revision."""
        if not self.config.clips:
            return
        earlier = next((p for p in self._pending if p.case.id == case.id), None)
        if earlier is None:
            self._pending.append(_Pending(case, files, t_s, t_s))
            return
        log.info("%s: case %s seen again before its clip was cut; one clip covers both", self.source.id, case.id)
        earlier.case, earlier.files, earlier.t_s = case, files, max(t_s, earlier.t_s)
        earlier.first_t_s = min(t_s, earlier.first_t_s)

    def due(self, media_s: float) -> list[tuple[Case, dict[str, bytes]]]:
        """Revision 2 (case, files) of every case whose post-roll has been read by media time `media_s`."""
        ready = [p for p in self._pending if media_s >= p.t_s + self.config.clip_post_s]
        for pending in ready:
            self._pending.remove(pending)
        return [done for pending in ready if (done := self._finish(pending))]

    def flush(self) -> list[tuple[Case, dict[str, bytes]]]:
        """The source ended or stops: clip what there is for every case still waiting."""
        pending, self._pending = self._pending, []
        return [done for item in pending if (done := self._finish(item))]

    def _finish(self, pending: _Pending) -> tuple[Case, dict[str, bytes]] | None:
        label = f"{self.source.id}: case {pending.case.id}"
        started = time.perf_counter()
        try:
            clip = self._cut(pending.first_t_s, pending.t_s - pending.first_t_s, label)
        except (ClipError, av.FFmpegError, OSError, ValueError) as exc:
            # ValueError: PyAV's answer to a codec MP4 cannot hold without re-encoding (msmpeg4 in old AVIs)
            log.warning("%s: no clip (%s); the case keeps its revision without one", label, exc)
            return None
        cut_ms = (time.perf_counter() - started) * 1000
        policy = self.privacy.clip_policy if self.privacy is not None else "original"
        if policy == "local":
            try:
                path = self.privacy.keep_clip(pending.case.id, pending.case.revision, clip.data)
            except OSError as exc:  # a full disk costs the local clip, never the source
                log.warning("%s: clip not kept on the box (%s); the case keeps its revision without one", label, exc)
            else:
                log.info("%s: clip kept on the box only (privacy.clips: local): %s", label, path)
            return None
        if policy == "masked":
            clip = self._mask(clip, label)
        entry = EvidenceFile(CLIP_NAME, CLIP_MEDIA_TYPE, hashlib.sha256(clip.data).hexdigest(), len(clip.data))
        case = dataclasses.replace(
            pending.case,
            revision=pending.case.revision + 1,
            evidence=(*(e for e in pending.case.evidence if e.name != CLIP_NAME), entry),
        )
        log.info(
            "%s: clip %.1f-%.1f s (%d packets, %d bytes) cut in %.0f ms",
            label,
            clip.start_s,
            clip.end_s,
            clip.packets,
            len(clip.data),
            cut_ms,
        )
        return case, pending.files | {CLIP_NAME: clip.data}

    def _mask(self, clip: Clip, label: str) -> Clip:
        """The clip re-encoded with faces masked in every frame; the original stays out of the outbox."""
        started = time.perf_counter()
        data, frames, faces = masked_clip(clip.data, self.privacy.masker, self.privacy.config.clip_face_every)
        took_ms = (time.perf_counter() - started) * 1000
        log.info(
            "%s: clip re-encoded with %d face mask(s) over %d frames in %.0f ms (%.1f ms a frame)",
            label,
            faces,
            frames,
            took_ms,
            took_ms / max(frames, 1),
        )
        return dataclasses.replace(clip, data=data)

    def _cut(self, t_s: float, span_s: float, label: str) -> Clip:
        """The clip from `t_s` - pre-roll to `t_s` + `span_s` + post-roll (`span_s`: later events' offset)."""
        cfg = self.config
        post_s = span_s + cfg.clip_post_s
        if self.video.packets is not None:
            return cut_from_ring(self.video.packets, t_s, cfg.clip_pre_s, post_s, cfg.clip_max_bytes, label)
        if is_live(self.video.url):
            raise ClipError("the source keeps no packet buffer")
        return cut_from_file(Path(self.video.url), t_s, cfg.clip_pre_s, post_s, cfg.clip_max_bytes, label)

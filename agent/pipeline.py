"""The agent's main path: frames from streams -> detectors -> persistence rule -> evidence -> outbox.

`Pipeline.run_source` handles one source; the CLI runs one thread per source for `run` and the
calling thread for `process`. The detectors are shared (onnxruntime sessions are thread-safe); a
source is decoded once whatever the number of detectors (`agent.detection`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from agent.backlog import DiskBacklog, Waiting
from agent.cases.case import Case, EvidenceFile, case_id, evidence_boxes
from agent.cases.colocated import Colocator
from agent.cases.locate import locate
from agent.cases.overflow import OverflowEvidence
from agent.cases.places import SourcePlaces
from agent.cases.registry import CaseRegistry
from agent.cases.rules import PersistenceRule, Sighting
from agent.config import AgentConfig, SourceConfig
from agent.detection import DetectorTypes, SourceDetectors
from agent.detector_setup import LoadedDetector
from agent.evidence.cleared import ClearedWriter
from agent.evidence.clip_jobs import ClipJobs, ring_for
from agent.evidence.privacy import FrameBoxes, Privacy
from agent.evidence.record_frame import record_view
from agent.evidence.snapshots import crop_jpeg, snapshot_jpeg
from agent.geo.earth import Location
from agent.source_run import RunningSource, SourceSummary
from detectors import Detections, Detector
from protocol.signing import Signer
from streams import Frame, StreamError
from streams.gnss import LiveTrack
from streams.sampling import DistanceSampler, MotionGate, Sampler
from streams.telemetry import NoPositionsError, embedded_track, load_track, start_hint
from streams.track import Positions, Track
from streams.video import LiveOptions, VideoSource, is_live, mask_url
from uploader import Outbox

log = logging.getLogger(__name__)


class Pipeline:
    """Everything a source needs to turn its frames into accepted cases."""

    def __init__(
        self,
        config: AgentConfig,
        detectors: Detector | Sequence[LoadedDetector],
        outbox: Outbox,
        signer: Signer,
        on_case: Callable[[], None] = lambda: None,
    ) -> None:
        """`detectors`: from `build_detectors`; one Detector stands for the configuration's first entry."""
        self.config = config
        if not isinstance(detectors, Sequence):
            detectors = [LoadedDetector(config.detector_entries[0], detectors)]
        self.detectors = list(detectors)  # what a reload compares and /readyz reports
        self.types = [DetectorTypes(loaded, config.cases.colocated, config.cases.overflow) for loaded in detectors]
        self._by_id = {t.loaded.entry.id: t.loaded for t in self.types}
        self.colocator = Colocator(config.cases.colocated, ())  # its case types only: for the explanation
        self.overflow = OverflowEvidence(config.cases.overflow, ())  # likewise
        self.outbox = outbox
        self.signer = signer
        self.on_case = on_case
        self.registry = CaseRegistry(config.state_dir / "cases.sqlite3", config.cases.remember_days)
        self.grid = config.grid.index() if config.grid else None
        self._backlogs: dict[str, DiskBacklog] = {}
        self.running: dict[str, RunningSource] = {}
        self.on_detect: Callable[[str, float], None] = lambda model, seconds: None  # (model name, inference s)
        self.one_decoder_thread = False  # files: set by batch workers, whose files run side by side
        self.privacy = Privacy(config.privacy, config.state_dir / "private")
        self._frame_boxes: dict[str, FrameBoxes] = {}  # per source, where persons or plates are masked
        self.cleared = ClearedWriter(config, outbox, signer, self.privacy, self.detectors)  # `cleared` observations

    def open_source(self, source: SourceConfig, summary: SourceSummary | None = None) -> VideoSource:
        """The source's video with its positions: live GNSS, the sidecar, else KLV inside the file."""
        track: Positions | None = None
        if source.gnss:
            track = LiveTrack(source.gnss).start()
        elif source.telemetry:
            try:
                track = load_track(source.telemetry)
            except NoPositionsError as exc:  # as good as no sidecar: the footage is still worth analysing
                log.warning("%s: %s; processing it without positions", source.id, exc)
                if summary is not None:
                    summary.warnings.append(f"{exc}; processed without positions")
        local = not is_live(source.url)
        if track is None and local and not source.gnss:
            track = embedded_track(Path(source.url))
        recorded = track if isinstance(track, Track) else None
        hint = start_hint(recorded, source.telemetry, self.config.cases.tz) if local else None
        return VideoSource(
            source.id,
            source.url,
            source.sample_fps,
            track=track,
            realtime=source.realtime,
            live_options=LiveOptions(
                transport=source.rtsp_transport,
                stall_s=source.stall_s,
                backoff_cap_s=source.reconnect_cap_s,
                keyframes_only=source.keyframes_only,
            ),
            sampler=sampler_for(source),
            keyframes_only=source.keyframes_only,
            start_utc=source.start_time,
            start_hint=hint,
            packets=ring_for(self.config.evidence, source),
            record_url=source.record_url,
            one_decoder_thread=self.one_decoder_thread,
        )

    def run_source(
        self,
        source: SourceConfig,
        stop: threading.Event,
        on_frame: Callable[[VideoSource, Frame], None] = lambda video, frame: None,
    ) -> SourceSummary:
        """Process one source until it ends or `stop` is set. Errors are logged, never raised."""
        summary = SourceSummary(source.id)
        rule = PersistenceRule(self.config.cases.rule, source.kind, self.config.cases.tz)
        detectors = SourceDetectors(self.types, source)
        if not len(detectors):
            log.warning("%s: no detector applies to this source (detectors[].sources and .kinds)", source.id)
            summary.warnings.append("no detector applies to this source: check detectors[].sources and .kinds")
        video: VideoSource | None = None
        clips: ClipJobs | None = None
        backlog = self._backlogs[source.id] = DiskBacklog(source.id)
        accepted: list[tuple[str, int]] = []
        running = self.running[source.id] = RunningSource(source, summary)
        try:
            places = SourcePlaces.from_config(source)
            video = running.video = self.open_source(source, summary)
            clips = ClipJobs(self.config.evidence, source, video, self.privacy)
            frame_boxes = self._frame_boxes[source.id] = FrameBoxes()
            verification = self.cleared.watch(source, self.registry)  # 问题核查: open cases seen clear
            log.info("%s: reading %s", source.id, mask_url(source.url))
            stage, clock = summary.stage_s, time.perf_counter()
            at = _clip_clock(source)
            for frame in video.frames(stop):
                t_frame = time.perf_counter()
                found = detectors.detect(frame)
                t_detect = t_frame + found.detect_s
                for detector_id, seconds in found.model_s.items():
                    self.on_detect(self._by_id[detector_id].detector.name, seconds)
                for detections in found.raw.values():
                    running.by_class.update(detections.names())
                running.last_fix, running.last_seen = frame.fix, (frame, found.raw)
                if self.privacy.needs_boxes:  # every box any detector found on the frame, vetoed or not
                    frame_boxes.remember(frame, *found.raw.values())
                t_track = time.perf_counter()
                by_type = places.filter(frame, detectors.by_type(found))
                summary.frames_analysed += 1
                summary.detections += sum(len(d) for d in by_type.values())
                sightings = rule.update(frame, by_type)
                t_rules = time.perf_counter()
                for sighting in sightings:
                    if tracks := detectors.tracks(sighting):
                        sighting.explanation["tracks"] = tracks
                    case, files = self.accept(source, sighting)
                    clips.add(case, files, at(frame))
                    accepted.append((case.id, case.revision))
                    summary.case_ids.append(case.id)
                verification.check(frame, by_type, found.raw.keys(), frame_boxes)
                for case, files in clips.due(at(frame)):
                    self.store(source, case, files)
                backlog.retry()
                on_frame(video, frame)
                clock, done = time.perf_counter(), clock
                stage["decode+sample"] += t_frame - done
                stage["detect"] += t_detect - t_frame
                stage["tracking"] += t_track - t_detect
                stage["rules"] += t_rules - t_track
                stage["evidence+outbox"] += clock - t_rules
                summary.video_s = frame.media_s
            summary.frames_decoded = video.stats.decoded
            summary.video_s = video.duration_s or summary.video_s
            if video.incomplete:
                summary.incomplete, summary.video_s = video.incomplete, video.last_media_s or 0.0
        except StreamError as exc:
            summary.error = str(exc)
            log.error("%s", exc)
        finally:
            if video is not None:
                summary.stream_state = _outcome(video)
            if clips is not None:
                for case, files in clips.flush():  # revision 2 with what there is of the post-roll
                    self.store(source, case, files)
            if video is not None and isinstance(video.track, LiveTrack):
                video.track.stop()
            self._frame_boxes.pop(source.id, None)
            lost = set(self._backlogs.pop(source.id).finish())
            summary.unstored = len(lost)
            summary.cases = sum(1 for key in accepted if key not in lost)
            summary.time_source = video.time_source if video is not None else ""
            summary.model_s, summary.model_runs = detectors.model_s, detectors.runs
        return summary

    def by_type(self, detections: Detections) -> dict[str, Detections]:
        """One detector's boxes (by `detections.model`; untagged: the first detector's) as case types."""
        types = next((t for t in self.types if t.loaded.entry.id == detections.model), self.types[0])
        return types.by_type(detections)

    def accept(self, source: SourceConfig, sighting: Sighting) -> tuple[Case, dict[str, bytes]]:
        """Build the evidence and the signed case record and store both durably in the outbox; returns the
        case and its evidence files (the clip's revision carries them again)."""
        cfg = self.config
        boxes = self._frame_boxes.get(source.id)  # persons and vehicles in the evidence frame, where masked
        frame_detections = boxes.get(sighting.best_frame) if boxes else ()
        shown_frame, shown, frame_detections = self._evidence_view(source, sighting, frame_detections)
        frame, masked = self.privacy.evidence_frame(shown_frame, frame_detections)  # masked before hashing
        if masked is not None and cfg.evidence.clips:
            masked["clip"] = self.privacy.clip_policy
        snapshot = snapshot_jpeg(frame, shown, cfg.evidence.jpeg_quality, cfg.evidence.max_width_px)
        box = _best_box(sighting.best_detections)  # in the detector's pixels, as zones and reference points are
        files = {"snapshot.jpg": snapshot}
        if (shown_box := _best_box(shown)) is not None:
            files["crop.jpg"] = crop_jpeg(frame, shown_box, cfg.evidence.jpeg_quality)
        location = locate(sighting.best_frame, source, box)
        sighting_id = case_id(cfg.agent_id, source.id, sighting.case_type, sighting.first_seen)
        fixed_box = box if source.kind == "fixed" else None  # a fixed camera tells problems apart by place in view
        # the detector that found the best box; boxes of several detectors in one type: the first's
        loaded = self._by_id.get(sighting.best_detections.model, self.types[0].loaded)
        best = sighting.best_detections
        explanation = self.colocator.explain(sighting.case_type, best) | self.overflow.explain(sighting.case_type, best)
        explanation |= sighting.explanation
        explanation["boxes"] = evidence_boxes(shown_frame, shown)  # the record frame of a two-input camera: crop.jpg
        if cfg.detectors:  # the list form names its detectors; a `detector:` file's cases stay as they were
            explanation["detector"] = loaded.entry.id
        identity, revision, first_seen = self._identity(source, sighting, sighting_id, location, fixed_box)
        case = Case(
            id=identity,
            revision=revision,
            agent_id=cfg.agent_id,
            source_id=source.id,
            source_kind=source.kind,
            type=sighting.case_type,
            codes=tuple(c.model_dump() for c in cfg.cases.codes.get(sighting.case_type, [])),
            first_seen=first_seen,
            last_seen=sighting.last_seen,
            location=location,
            grid=self.grid.grid_for(location) if self.grid else None,
            score_max=sighting.score_max,
            score_mean=sighting.score_mean,
            frames=sighting.frames,
            model_name=loaded.detector.name,
            model_version=loaded.detector.version,
            evidence=tuple(
                EvidenceFile(name, "image/jpeg", hashlib.sha256(data).hexdigest(), len(data))
                for name, data in files.items()
            ),
            explanation=explanation,
            privacy=masked,
        )
        self.store(source, case, files, sighting_id, fixed_box)
        self.privacy.keep_original(case.id, case.revision, shown_frame, cfg.evidence.jpeg_quality)
        return case, files

    def _evidence_view(
        self, source: SourceConfig, sighting: Sighting, frame_detections: Sequence[Detections]
    ) -> tuple[Frame, Detections, tuple[Detections, ...]]:
        """The frame the evidence shows and its boxes: a two-input camera's record input at full resolution
        (boxes scaled to it) where it holds the moment, else the frame the detector saw."""
        running = self.running.get(source.id)
        ring = running.video.packets if source.record_url and running and running.video else None
        view = record_view(ring, sighting.best_frame, [sighting.best_detections, *frame_detections]) if ring else None
        if view is None:
            return sighting.best_frame, sighting.best_detections, tuple(frame_detections)
        frame, (best, *others) = view
        return frame, best, tuple(others)

    def _identity(
        self,
        source: SourceConfig,
        sighting: Sighting,
        sighting_id: str,
        location: Location | None,
        fixed_box: np.ndarray | None,
    ) -> tuple[str, int, datetime]:
        """(case id, revision, first seen): the same footage again gets what it got before; the same problem
        seen again (another pass, another day) the next revision of its case; anything else a new case."""
        replay = self.registry.replayed(sighting_id)
        if replay is not None:
            return replay.case_id, replay.revision, replay.first_seen
        radius_m = self.config.cases.rule(sighting.case_type).max_distance_m
        known = self.registry.match(
            sighting.case_type,
            source.id,
            sighting.first_seen,
            location.lat if location else None,
            location.lon if location else None,
            radius_m,
            fixed_box,
        )
        if known is None:
            return sighting_id, 1, sighting.first_seen
        log.info("%s: %s seen again; updating case %s", source.id, sighting.case_type, known.case_id)
        return known.case_id, known.revision + 1, known.first_seen

    def store(
        self,
        source: SourceConfig,
        case: Case,
        files: dict[str, bytes],
        sighting_id: str | None = None,
        fixed_box: np.ndarray | None = None,
    ) -> None:
        """Store the case now or, while the disk is full, as soon as it takes writes again (`DiskBacklog`)."""
        write = functools.partial(self._store_now, source, case, files, sighting_id, fixed_box)
        item = Waiting(case.id, case.revision, sum(len(data) for data in files.values()), write)
        backlog = self._backlogs.get(source.id)
        if backlog is None:  # outside run_source (tools): no one to retry, so errors go to the caller
            write()
        else:
            backlog.write(item)

    def _store_now(
        self,
        source: SourceConfig,
        case: Case,
        files: dict[str, bytes],
        sighting_id: str | None,
        fixed_box: np.ndarray | None,
    ) -> bool:
        """Sign the case record and store it with its files durably in the outbox; False if stored before."""
        self.registry.record(case, sighting_id, fixed_box)
        record = self.signer.sign(case.to_record())
        case_json = json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8")
        if self.outbox.accept(case.id, case.revision, case_json, files):
            log.info(
                "%s: case %s %s (score %.2f, %d frames) accepted%s",
                source.id,
                case.id,
                case.type,
                case.score_max,
                case.frames,
                "" if case.revision == 1 else f" as revision {case.revision} ({', '.join(files)})",
            )
            self.on_case()
            return True
        log.info("%s: case %s revision %d was accepted before; not stored twice", source.id, case.id, case.revision)
        return False


def _clip_clock(source: SourceConfig) -> Callable[[Frame], float]:
    """The time a frame is at on its source's packet ring: a two-input camera's record ring runs on the
    arrival clock (`streams.record`), every other ring or file on the frame's media time."""
    return (lambda frame: frame.mono_s) if source.record_url else (lambda frame: frame.media_s)


def _outcome(video: VideoSource) -> str:
    """The end-of-run state of the source (its detect input's, as for one input), and its record input's."""
    detect = video.stats.outcome()
    record = video.record_stats.outcome() if video.record_stats is not None else ""
    return "; ".join(filter(None, [detect, record and f"record input {record}"]))


def _best_box(detections: Detections) -> np.ndarray | None:
    return detections.xyxy[detections.confidence.argmax()] if len(detections) else None


def sampler_for(source: SourceConfig) -> Sampler:
    """Fixed cameras detect on motion (and now and then without); moving ones by distance travelled."""
    if source.kind == "fixed":
        return MotionGate(source.sample_fps, source.idle_every_s, source.motion_threshold)
    return DistanceSampler(source.sample_every_m, source.sample_fps, source.idle_every_s)


def state_paths(config: AgentConfig) -> tuple[Path, Path]:
    """(outbox folder, keys folder) under the configured state folder."""
    return config.state_dir / "outbox", config.state_dir / "keys"

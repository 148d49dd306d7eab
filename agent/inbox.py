"""The drone operators' inbox: a folder where recorded footage is uploaded and processed once.

A video (with a sidecar of the same name: .SRT, .nmea, .gpx or .klv) is taken when its size and mtime
have not changed for `settle_s` (the upload has finished), processed like any recorded file, then
moved to `done/` or to `failed/` with a `.reason.txt` beside it. A settled file that is still cut short
(an upload that broke off) goes to `failed/` unprocessed, as does one that ran into a full disk: the
reason says what to do. After a crash the file is still in the inbox and is processed again: case ids
are stable, so the outbox stores nothing twice. With `workers` > 1 the uploads ready at one scan run
at once on worker processes (agent/batch.py), each with the cases it would have alone.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.batch import BatchPool
from agent.config import InboxConfig, SourceConfig, source_id_for
from agent.pipeline import SourceSummary
from streams.video import truncation

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".ts", ".m2ts", ".avi"}
SIDECAR_SUFFIXES = (".srt", ".nmea", ".gpx", ".klv")


class Inbox:
    """Watches one folder; `run` processes finished uploads until `stop` is set."""

    def __init__(
        self,
        config: InboxConfig,
        process: Callable[[SourceConfig], SourceSummary],
        pool: BatchPool | None = None,
    ) -> None:
        """`process` runs one upload here; `pool`, where given, runs uploads that are ready together at once."""
        self.config = config
        self.folder = config.folder
        self.process = process
        self.pool = pool
        self.done, self.failed = self.folder / "done", self.folder / "failed"
        for folder in (self.folder, self.done, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        self.summaries: list[SourceSummary] = []
        self._seen: dict[Path, tuple[tuple[int, int], float]] = {}  # (size, mtime) and when first seen so

    def run(self, stop: threading.Event) -> None:
        log.info("inbox %s: waiting for uploads", self.folder)
        try:
            while not stop.is_set():
                ready = self.ready()
                if self.pool is not None and len(ready) > 1:
                    self._handle_together(ready, stop)
                    ready = []
                for video in ready:
                    if stop.is_set():
                        return
                    self._handle(video)
                stop.wait(self.config.scan_every_s)
        finally:
            if self.pool is not None:
                self.pool.close()

    def ready(self) -> list[Path]:
        """Videos whose size and mtime have not changed for `settle_s`, oldest first."""
        now = time.monotonic()
        ready = []
        present = set()
        for path in sorted(self.folder.iterdir(), key=lambda p: p.stat().st_mtime if p.exists() else 0):
            if not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES:
                continue
            present.add(path)
            stat = path.stat()
            shape = (stat.st_size, stat.st_mtime_ns)
            seen = self._seen.get(path)
            if seen is None or seen[0] != shape:
                self._seen[path] = (shape, now)
            elif now - seen[1] >= self.config.settle_s and stat.st_size > 0:
                ready.append(path)
        self._seen = {p: v for p, v in self._seen.items() if p in present}
        return ready

    def _handle(self, video: Path) -> None:
        sidecar, source, cut = self._prepare(video)
        self._file(video, sidecar, cut or self._process(source))

    def _handle_together(self, videos: list[Path], stop: threading.Event) -> None:
        """Uploads ready at the same scan, at once on the pool; each filed when all have run."""
        assert self.pool is not None
        prepared = [self._prepare(video) for video in videos]
        sources = [source for _, source, cut in prepared if cut is None]
        summaries = iter(self.pool.run(sources, stop))
        for video, (sidecar, _, cut) in zip(videos, prepared, strict=True):
            self._file(video, sidecar, cut or next(summaries))

    def _prepare(self, video: Path) -> tuple[Path | None, SourceConfig, SourceSummary | None]:
        """(sidecar, source, the summary of an upload that broke off, else None)."""
        sidecar = next(
            (
                p
                for p in video.parent.iterdir()
                if p.stem == video.stem and p.suffix.lower() in SIDECAR_SUFFIXES and p.is_file()
            ),
            None,
        )
        source = SourceConfig(
            id=source_id_for(video),
            kind=self.config.kind,
            url=str(video),
            telemetry=sidecar,
            sample_fps=self.config.sample_fps,
        )
        cut = truncation(video)
        if cut:  # settled yet still cut short: the upload broke off, and half a flight is not worth a pass
            incomplete = f"{cut}; not processed: upload the whole file again"
            return sidecar, source, SourceSummary(source.id, incomplete=incomplete)
        log.info("inbox: processing %s%s", video.name, f" with {sidecar.name}" if sidecar else " (no sidecar)")
        return sidecar, source, None

    def _file(self, video: Path, sidecar: Path | None, summary: SourceSummary) -> None:
        """Move the upload (and its sidecar) to done/ or failed/, with the reason where it failed."""
        self.summaries.append(summary)
        reason = summary.error or summary.problem
        if summary.unstored:
            reason += "; free space on the agent's disk, then move the video back into the inbox"
        target = self.failed if reason else self.done
        for path in (video, sidecar):
            if path is not None:
                shutil.move(str(path), target / path.name)
        if reason:
            (self.failed / f"{video.name}.reason.txt").write_text(reason + "\n")
            log.warning("inbox: %s moved to failed/: %s", video.name, reason)
        else:
            log.info(
                "inbox: %s done: %d frames analysed, %d case(s)", video.name, summary.frames_analysed, summary.cases
            )
        self._seen.pop(video, None)

    def _process(self, source: SourceConfig) -> SourceSummary:
        try:
            return self.process(source)
        except Exception as exc:  # one bad upload must not stop the inbox
            log.exception("inbox: %s failed", source.url)
            return SourceSummary(source.id, error=f"{type(exc).__name__}: {exc}")

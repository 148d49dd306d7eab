"""The running sources of one agent, a thread and a stop event each, so that a reload can stop one
source (its pending clips are flushed into the outbox as on shutdown), start another, and leave the
rest running with their decoders untouched."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.batch import BatchPool
from agent.config import SourceConfig
from agent.inbox import Inbox
from agent.pipeline import Pipeline, SourceSummary
from streams import Frame
from streams.video import VideoSource

log = logging.getLogger(__name__)

INBOX = "inbox"  # the inbox runs as one more entry, under this name
OnFrame = Callable[[VideoSource, Frame], None]
JOIN_TIMEOUT_S = 120.0  # a source stops within its stall timeout; this bounds a wedged one


@dataclass
class Running:
    """One source's thread; `video` is known from its first analysed frame, `summary` once it ended."""

    name: str
    config: Any  # SourceConfig, or the InboxConfig for INBOX
    stop: threading.Event
    started: datetime
    thread: threading.Thread | None = None
    video: VideoSource | None = None
    summary: SourceSummary | None = None
    inbox: Inbox | None = None

    def decoded(self) -> int:
        """Frames its decoder has produced so far (0 before the first analysed frame)."""
        return self.video.stats.decoded if self.video is not None else 0


class Supervisor:
    """Starts and stops sources of `pipeline`; `finished` keeps the summaries of those that ended."""

    def __init__(self, pipeline: Pipeline, on_frame_factory: Callable[[str], OnFrame] | None = None) -> None:
        self.pipeline = pipeline
        self.on_frame_factory = on_frame_factory
        self.running: dict[str, Running] = {}
        self.finished: list[SourceSummary] = []
        self._lock = threading.Lock()

    def start(self, source: SourceConfig) -> Running:
        entry = Running(source.id, source, threading.Event(), datetime.now(UTC))
        outer = self.on_frame_factory(source.id) if self.on_frame_factory else None

        def on_frame(video: VideoSource, frame: Frame) -> None:
            entry.video = video
            if outer is not None:
                outer(video, frame)

        entry.thread = threading.Thread(target=self._run, args=(entry, on_frame), name=f"source:{source.id}")
        entry.thread.daemon = True
        self.running[source.id] = entry
        entry.thread.start()
        return entry

    def start_inbox(self, config: Any) -> Running:
        entry = Running(INBOX, config, threading.Event(), datetime.now(UTC))
        pipeline = self.pipeline
        pool = None
        if config.workers > 1:  # uploads ready together run at once on worker processes
            pool = BatchPool(pipeline.config, pipeline.outbox, config.workers, pipeline.on_case)
        entry.inbox = Inbox(config, lambda source: pipeline.run_source(source, entry.stop), pool)
        entry.thread = threading.Thread(target=self._run_inbox, args=(entry,), name="inbox", daemon=True)
        self.running[INBOX] = entry
        entry.thread.start()
        return entry

    def stop(self, name: str) -> Running:
        """Stop one entry and wait for it: its pending work is in the outbox when this returns."""
        entry = self.running.pop(name)
        entry.stop.set()
        if entry.thread is not None:
            entry.thread.join(JOIN_TIMEOUT_S)
            if entry.thread.is_alive():
                log.error("%s: did not stop within %.0f s; left running unsupervised", name, JOIN_TIMEOUT_S)
        return entry

    def stop_all(self) -> None:
        for entry in list(self.running.values()):
            entry.stop.set()
        for name in list(self.running):
            self.stop(name)

    def forget(self, entry: Running) -> None:
        """Drop a stopped entry's summary from `finished` (a start that was rolled back)."""
        with self._lock:
            self.finished = [summary for summary in self.finished if summary is not entry.summary]

    def alive(self) -> bool:
        return any(e.thread is not None and e.thread.is_alive() for e in self.running.values())

    def ended(self, name: str) -> bool:
        entry = self.running.get(name)
        return entry is None or entry.thread is None or not entry.thread.is_alive()

    def _run(self, entry: Running, on_frame: OnFrame) -> None:
        source = entry.config
        try:
            summary = self.pipeline.run_source(source, entry.stop, on_frame)
        except Exception as exc:  # a bug or an unforeseen error in one source must not take the agent down
            log.exception("%s: stopped by an unexpected error", source.id)
            summary = SourceSummary(source.id, error=f"unexpected {type(exc).__name__}: {exc}")
        entry.summary = summary
        with self._lock:
            self.finished.append(summary)

    def _run_inbox(self, entry: Running) -> None:
        assert entry.inbox is not None
        try:
            entry.inbox.run(entry.stop)
        finally:
            with self._lock:
                self.finished.extend(entry.inbox.summaries)

    def report(self) -> dict[str, dict[str, Any]]:
        """Per running source: frames decoded and since when it runs (a kept source's counter goes on)."""
        return {
            name: {"decoded": e.decoded(), "since": e.started.isoformat(), "alive": not self.ended(name)}
            for name, e in self.running.items()
        }

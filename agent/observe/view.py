"""One read-only view of the running agent for the observers (metrics, health, MQTT status)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.config import AgentConfig
from agent.pipeline import Pipeline, RunningSource
from streams.health import SourceStats, State
from streams.video import is_live
from uploader import MqttUploader, Outbox
from uploader.budget import utc_day
from uploader.outbox_stats import OutboxStats


@dataclass
class AgentView:
    """The parts of a running agent the observers read; they never write to any of them."""

    config: AgentConfig
    pipeline: Pipeline
    outbox: Outbox
    outbox_stats: OutboxStats
    uploader: MqttUploader | None
    started_mono_s: float = field(default_factory=time.monotonic)

    def sources(self) -> list[RunningSource]:
        """The sources started so far (an inbox's files too), in a stable order."""
        return sorted(self.pipeline.running.values(), key=lambda r: r.config.id)

    def cameras(self) -> list[str]:
        """The ids of the configured live sources (cameras and streams), whose state readiness depends on."""
        return [s.id for s in self.config.sources if is_live(s.url)]

    def state_of(self, source_id: str) -> str:
        running = self.pipeline.running.get(source_id)
        return str(running.video.stats.state) if running and running.video else "idle"

    def budget_left_bytes(self) -> int | None:
        daily_mb = self.config.uploader.daily_mb
        if daily_mb is None:
            return None
        return max(0, int(daily_mb * 1e6) - self.outbox.bytes_today(utc_day()))

    def upload_bytes(self) -> int:
        return self.uploader.bytes_sent if self.uploader else 0


def stats_of(running: RunningSource) -> SourceStats:
    """The stream's counters, or fresh ones (state idle) while the source is still being opened."""
    return running.video.stats if running.video else SourceStats()


def inputs_of(running: RunningSource) -> dict[str, SourceStats]:
    """A two-input camera's inputs by role ("detect", "record") with their counters; {} for one input."""
    video = running.video
    if video is None or video.record_stats is None:
        return {}
    return {"detect": video.stats, "record": video.record_stats}


def state_and_reason(running: RunningSource) -> tuple[str, str]:
    """The source's state (its detect input's: what the detector is doing) and why; a two-input camera's
    reason also names each input that is not live, so that a dead main stream is seen though detection runs."""
    stats = stats_of(running)
    down = [f"{role} input {s.state}: {s.reason}" for role, s in inputs_of(running).items() if s.state != State.LIVE]
    return str(stats.state), "; ".join(down) if down else stats.reason


def wall_time(mono_s: float | None) -> datetime | None:
    """A monotonic instant as UTC wall time (the streams time their states with the monotonic clock)."""
    if mono_s is None:
        return None
    return datetime.fromtimestamp(time.time() - (time.monotonic() - mono_s), UTC)

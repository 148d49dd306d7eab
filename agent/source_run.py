"""What one source produced and how it runs: the end-of-run summary and the live view of a running source.

Kept apart from `agent.pipeline` (which fills them in) so that readers (metrics, status, the web page) and
the pipeline each stay one concern; `agent.pipeline` still exports both names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from agent.config import SourceConfig
from detectors import Detections
from streams import Frame, PositionFix
from streams.video import VideoSource

STAGES = ("decode+sample", "detect", "tracking", "rules", "evidence+outbox")  # seconds spent per stage, summed


@dataclass
class SourceSummary:
    """What one source produced, for the end-of-run table."""

    source_id: str
    frames_decoded: int = 0
    frames_analysed: int = 0
    video_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    detections: int = 0
    cases: int = 0
    error: str = ""
    case_ids: list[str] = field(default_factory=list)
    incomplete: str = ""  # the file ended before its container said it would (truncated)
    unstored: int = 0  # case revisions the disk refused until the end (lost with this run)
    time_source: str = ""  # files: where frame times came from ("container", "klv", "srt", "file mtime", ...)
    warnings: list[str] = field(default_factory=list)  # what the operator should know though the source ran
    stream_state: str = ""  # cameras: unreachable or down at the end, and why (SourceStats.outcome); "" if fine
    model_s: dict[str, float] = field(default_factory=dict)  # seconds each detector spent (part of "detect")
    model_runs: dict[str, int] = field(default_factory=dict)  # frames each detector saw

    @property
    def problem(self) -> str:
        """What went wrong, worst first; "" when the source did all it was asked to."""
        if self.error:
            return f"error: {self.error}"
        if self.incomplete:
            return self.incomplete
        if self.unstored:
            return f"disk full: {self.unstored} case revision(s) not stored"
        if self.stream_state.startswith("unreachable"):  # a camera never reached did nothing it was asked
            return self.stream_state
        return ""  # a camera down only when the run stopped is shown in the table, not a failed run


@dataclass
class RunningSource:
    """A source as it runs (and after it ended), read by metrics and status reports: the live counters
    themselves, not copies, so that no second bookkeeping can drift from the summary."""

    config: SourceConfig
    summary: SourceSummary
    video: VideoSource | None = None  # None until opened: its `stats` say the state and frame counters
    by_class: Counter[str] = field(default_factory=Counter)  # detections by the model's class names
    last_fix: PositionFix | None = None  # the position of the newest analysed frame, where known
    last_seen: tuple[Frame, dict[str, Detections]] | None = None  # newest analysed frame, boxes by detector

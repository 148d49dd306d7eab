"""Runs the agent: builds the detector, outbox, signer and uploader from a configuration, drives the
sources (a thread each) until they end or a signal arrives, then shuts down without losing a case.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.config import AgentConfig, ConfigError
from agent.detector_setup import build_detector
from agent.inbox import Inbox
from agent.observe.setup import Observers
from agent.pipeline import Pipeline, SourceSummary, state_paths
from protocol.signing import Signer
from streams import Frame
from streams.video import VideoSource
from uploader import MqttUploader, Outbox, Topics, UploadPolicy

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    summaries: list[SourceSummary]
    outbox_counts: dict[str, int]
    outbox_dir: str
    published: int
    seconds: float


def run_agent(
    config: AgentConfig,
    on_frame_factory: Callable[[str], Callable[[VideoSource, Frame], None]] | None = None,
) -> RunResult:
    """Run every configured source to its end (files) or until SIGTERM/SIGINT (cameras)."""
    started = time.monotonic()
    detector = build_detector(config.detector)
    check_class_map(config, detector.class_names)
    outbox_dir, keys_dir = state_paths(config)
    outbox = Outbox(outbox_dir, int(config.uploader.disk_quota_mb * 1e6), int(config.uploader.disk_hard_limit_mb * 1e6))
    signer = Signer.load_or_create(keys_dir)
    uploader = _uploader(config, outbox, signer)
    pipeline = Pipeline(config, detector, outbox, signer, on_case=uploader.notify if uploader else lambda: None)
    observers = Observers(config, pipeline, outbox, uploader)
    stop = threading.Event()
    restore = _handle_signals(stop)
    summaries: list[SourceSummary] = []
    try:
        observers.start()
        if uploader:
            uploader.start()
        threads = []
        for source in config.sources:
            on_frame = on_frame_factory(source.id) if on_frame_factory else (lambda video, frame: None)
            thread = threading.Thread(
                target=lambda s=source, f=on_frame: summaries.append(_guarded(pipeline, s, stop, f)),
                name=f"source:{source.id}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        inbox = Inbox(config.inbox, lambda source: pipeline.run_source(source, stop)) if config.inbox else None
        if inbox:
            threads.append(threading.Thread(target=inbox.run, args=(stop,), name="inbox", daemon=True))
            threads[-1].start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
            observers.tick()
    finally:
        stop.set()
        try:
            observers.stop()
            if uploader:
                uploader.stop(config.uploader.drain_timeout_s)
            counts = outbox.counts()
            outbox.close()
        finally:
            restore()  # only now: a second SIGTERM during the drain must not kill the agent before its summary
    order = {s.id: i for i, s in enumerate(config.sources)}
    summaries.sort(key=lambda s: order[s.source_id])
    if inbox:
        summaries += inbox.summaries
    return RunResult(
        summaries, counts, str(outbox_dir), uploader.published if uploader else 0, time.monotonic() - started
    )


def _guarded(pipeline: Pipeline, source, stop: threading.Event, on_frame) -> SourceSummary:
    """One source's failure is logged and reported in the summary; the other sources go on."""
    try:
        return pipeline.run_source(source, stop, on_frame)
    except Exception as exc:  # a bug or an unforeseen error in one source must not take the agent down
        log.exception("%s: stopped by an unexpected error", source.id)
        return SourceSummary(source.id, error=f"unexpected {type(exc).__name__}: {exc}")


def check_class_map(config: AgentConfig, class_names: tuple[str, ...]) -> None:
    """Refuse at start-up a class map or a co-located rule that names classes the model does not have."""
    named = [("detector.class_map", list(config.detector.class_map), "map the model's own class names")]
    for i, composite in enumerate(config.cases.colocated):
        fix = "list the model's own class names (train one with them: models/README.md)"
        named += [(f"cases.colocated[{i}].objects", composite.objects, fix)]
        named += [(f"cases.colocated[{i}].people", composite.people, fix)]
    problems = [
        f"{key}: {', '.join(map(repr, unknown))} not among the classes of "
        f"{config.detector.model.name} ({', '.join(class_names)}); {fix}"
        for key, names, fix in named
        if (unknown := sorted(set(names) - set(class_names)))
    ]
    if problems:
        raise ConfigError("\n".join(problems))


def _uploader(config: AgentConfig, outbox: Outbox, signer: Signer) -> MqttUploader | None:
    mqtt_cfg = config.uploader.mqtt
    if mqtt_cfg is None:
        log.info("no uploader.mqtt configured: cases stay in the local outbox")
        return None
    up = config.uploader
    settings = mqtt_cfg.settings(f"edge-agent-{config.agent_id}")
    policy = UploadPolicy(
        kbit_per_s=up.kbit_per_s,
        daily_bytes=int(up.daily_mb * 1e6) if up.daily_mb else None,
        ack_timeout_s=up.ack_timeout_s,
    )
    topics = Topics(mqtt_cfg.topic_prefix, config.agent_id)
    return MqttUploader(outbox, settings, topics, policy, public_key_pem=signer.public_pem)


def _handle_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT ask for a clean stop; returns a function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    received: list[int] = []

    def handler(signum, _frame) -> None:
        # a supervisor or an impatient operator may signal again while the agent drains: say it once
        if not received:
            log.warning("received %s: finishing the current frames and shutting down", signal.Signals(signum).name)
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(s, h) for s, h in previous.items()] and None


def print_summary(result: RunResult, out=sys.stdout) -> None:
    """The end-of-run table: what each source produced and where the cases went."""
    header = f"{'source':<20} {'decoded':>8} {'analysed':>9} {'detections':>11} {'cases':>6} {'video s':>8}  status"
    print(header, file=out)
    print("-" * len(header), file=out)
    for s in result.summaries:
        status = s.problem or s.stream_state or "ok"
        print(
            f"{s.source_id:<20} {s.frames_decoded:>8} {s.frames_analysed:>9} {s.detections:>11} {s.cases:>6} "
            f"{s.video_s:>8.1f}  {status}",
            file=out,
        )
    for s in result.summaries:
        for warning in s.warnings:
            print(f"{s.source_id}: warning: {warning}", file=out)
        if s.time_source in ("klv", "srt"):
            print(f"{s.source_id}: no creation_time in the file: times from its {s.time_source} telemetry", file=out)
        elif s.time_source == "file mtime":
            print(f"{s.source_id}: no creation_time and no telemetry clock: times from the file's mtime", file=out)
    video_s = sum(s.video_s for s in result.summaries)
    if video_s and result.seconds:
        print(
            f"\n{video_s:.1f} s of video in {result.seconds:.1f} s: {video_s / result.seconds:.1f}x real time", file=out
        )
    counts = result.outbox_counts
    print(
        f"\n{sum(s.cases for s in result.summaries)} case(s) in {result.seconds:.1f} s. "
        f"Outbox {result.outbox_dir}: {counts['pending']} pending, {counts['sent']} sent, "
        f"{counts['acked']} acknowledged"
        f" ({result.published} published this run).",
        file=out,
    )

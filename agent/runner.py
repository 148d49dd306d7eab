"""Runs the agent: builds the detectors, outbox, signer and uploader from a configuration, drives the
sources (a thread each, agent/updates/supervisor.py) until they end or a signal arrives, reloads on
SIGHUP or a signed update (agent/updates/), then shuts down without losing a case.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.batch import BatchPool, OnProgress
from agent.cases.registry import CaseRegistry
from agent.config import AgentConfig, SourceConfig
from agent.detector_setup import build_detectors
from agent.observe.setup import Observers
from agent.pipeline import Pipeline, SourceSummary, state_paths
from agent.updates.check import check_class_map
from agent.updates.reload import Reloader
from agent.updates.remote import RemoteUpdates
from agent.updates.supervisor import Supervisor
from agent.web.setup import web_server
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
    config_path: Path | None = None,
) -> RunResult:
    """Run every configured source to its end (files) or until SIGTERM/SIGINT (cameras). SIGHUP reloads
    `config_path`; with `updates.enabled`, signed updates from the platform are applied the same way."""
    started = time.monotonic()
    detectors = build_detectors(config)
    check_class_map(config, detectors)
    outbox_dir, keys_dir = state_paths(config)
    outbox = Outbox(outbox_dir, int(config.uploader.disk_quota_mb * 1e6), int(config.uploader.disk_hard_limit_mb * 1e6))
    signer = Signer.load_or_create(keys_dir)
    uploader = _uploader(config, outbox, signer)
    pipeline = Pipeline(config, detectors, outbox, signer, on_case=uploader.notify if uploader else lambda: None)
    supervisor = Supervisor(pipeline, on_frame_factory)
    reloader = Reloader(supervisor, config, detectors, config_path.read_text(encoding="utf-8") if config_path else None)
    jobs: queue.Queue[Callable[[], object]] = queue.Queue()  # reloads run here, on the thread that owns the sources
    if uploader and config.updates.enabled:
        RemoteUpdates(reloader, uploader, jobs.put, config_path.resolve().parent if config_path else Path.cwd())
    observers = Observers(config, pipeline, outbox, uploader)
    web = web_server(config, observers.view, reloader, jobs.put, config_path)
    stop = threading.Event()
    hangups: list[int] = []
    restore = _handle_signals(stop, hangups)
    try:
        observers.start()
        if web:
            web.start()
        if uploader:
            uploader.start()
        reloader.start()
        while supervisor.alive() and not stop.is_set():
            if hangups:
                hangups.clear()
                jobs.put(lambda: _reload_local(reloader, config_path))
            with contextlib.suppress(queue.Empty):
                jobs.get(timeout=0.2)()
                observers.view.pipeline = supervisor.pipeline  # a reload may have built a new one
            observers.tick()
    finally:
        stop.set()
        try:
            if web:
                web.stop()
            observers.stop()
            supervisor.stop_all()
            counts = _drain_and_close(config, uploader, outbox)
        finally:
            restore()  # only now: a second SIGTERM during the drain must not kill the agent before its summary
    order = {s.id: i for i, s in enumerate(reloader.config.sources)}
    summaries = sorted(supervisor.finished, key=lambda s: order.get(s.source_id, len(order)))
    return RunResult(
        summaries, counts, str(outbox_dir), uploader.published if uploader else 0, time.monotonic() - started
    )


def _drain_and_close(config: AgentConfig, uploader: MqttUploader | None, outbox: Outbox) -> dict[str, int]:
    """The end of a run: the uploader gets its drain time, then the outbox's counts for the summary."""
    if uploader:
        uploader.stop(config.uploader.drain_timeout_s)
    counts = outbox.counts()
    outbox.close()
    return counts


def run_batch(
    config: AgentConfig, sources: Sequence[SourceConfig], workers: int, on_progress: OnProgress | None = None
) -> RunResult:
    """`edge-agent process` on several files: the outbox and uploader here, the files on `workers`
    processes; SIGTERM or Ctrl-C ends every file at its current frame without losing a case."""
    started = time.monotonic()
    outbox_dir, keys_dir = state_paths(config)
    outbox = Outbox(outbox_dir, int(config.uploader.disk_quota_mb * 1e6), int(config.uploader.disk_hard_limit_mb * 1e6))
    CaseRegistry(config.state_dir / "cases.sqlite3", config.cases.remember_days).close()  # its schema, made once
    uploader = _uploader(config, outbox, Signer.load_or_create(keys_dir))
    pool = BatchPool(config, outbox, workers, on_case=uploader.notify if uploader else lambda: None)
    stop = threading.Event()
    restore = _handle_signals(stop, [])
    try:
        if uploader:
            uploader.start()
        summaries = pool.run(sources, stop, on_progress)
    finally:
        stop.set()
        try:
            pool.close()
            counts = _drain_and_close(config, uploader, outbox)
        finally:
            restore()
    published = uploader.published if uploader else 0
    return RunResult(summaries, counts, str(outbox_dir), published, time.monotonic() - started)


def _reload_local(reloader: Reloader, config_path: Path | None) -> None:
    if config_path is None:
        log.warning("received SIGHUP: the built-in demo has no configuration file to reload; give -c FILE")
    else:
        reloader.reload_file(config_path)


def _guarded(pipeline: Pipeline, source, stop: threading.Event, on_frame) -> SourceSummary:
    """One source's failure is logged and reported in the summary; the other sources go on."""
    try:
        return pipeline.run_source(source, stop, on_frame)
    except Exception as exc:  # a bug or an unforeseen error in one source must not take the agent down
        log.exception("%s: stopped by an unexpected error", source.id)
        return SourceSummary(source.id, error=f"unexpected {type(exc).__name__}: {exc}")


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


def _handle_signals(stop: threading.Event, hangups: list[int]) -> Callable[[], None]:
    """SIGTERM and SIGINT ask for a clean stop, SIGHUP for a reload (noted in `hangups`, which the main
    loop reads: a handler takes no lock); returns a function that restores the old handlers."""
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
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda signum, _frame: hangups.append(signum))
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

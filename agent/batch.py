"""Recorded footage on the whole box: several files at once, one worker process per core.

One process analyses one file on about one core (decoding, sampling and the pipeline are Python, the
detector runs on one onnxruntime thread), so `edge-agent process a.mp4 b.mp4 ...` and an inbox with
`workers` hand each file to one of N worker processes. When the files running at once are as many as
the cores, each is decoded on one thread, as a camera is: FFmpeg's frame threads would cost 2 to 5 %
more CPU a file (keyframes only, measured) for parallelism the other files already give. A worker
loads the detectors once and runs the ordinary per-source pipeline on each file it is given, so a
file's cases are those a one-at-a-time run gives (same ids, boxes and times).

Cases come back to this process, the outbox's only writer: `Outbox` recovers at open by removing
half-written case folders, so a second Outbox on the same folder could delete a case that another
process is writing, and the uploader reads the one here. A worker waits for each case's answer, so a
case counts as accepted exactly when it is in the outbox (and a full disk reaches the worker's backlog
as the OSError it is). A worker that dies (a crash, the OOM killer) costs only the rest of the file it
had: its summary says so, the cases accepted before stay, and a new worker takes the next file.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from agent.config import AgentConfig, ConfigError, SourceConfig
from agent.detector_setup import build_detectors
from agent.logs import JsonFormatter, setup_logging
from agent.pipeline import Pipeline, SourceSummary, state_paths
from detectors import ModelError
from protocol.signing import Signer
from streams import Frame
from streams.video import VideoSource
from uploader import Outbox

log = logging.getLogger(__name__)

OnProgress = Callable[[str, float, float | None], None]  # source id, media seconds done, duration if known
PROGRESS_EVERY_S = 0.5  # of the worker's wall time: often enough for a bar, rare enough to cost nothing


class BatchPool:
    """`workers` processes that each run the pipeline of `config` on the files given to `run`."""

    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        workers: int,
        on_case: Callable[[], None] = lambda: None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.config = config
        self.outbox = outbox
        self.workers = workers
        self.on_case = on_case
        self.logging_args = _logging_args()
        self._context = multiprocessing.get_context("spawn")  # no forked copy of threads or sessions
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._names = itertools.count(1)
        self.busy: dict[str, int] = {}  # source id -> pid of the worker processing it now
        _, keys_dir = state_paths(config)
        Signer.load_or_create(keys_dir)  # made once here, not by several workers at the same moment

    def run(
        self, sources: Sequence[SourceConfig], stop: threading.Event, on_progress: OnProgress | None = None
    ) -> list[SourceSummary]:
        """Process every source, up to `workers` at a time, the largest files first (a long file started
        last would run alone at the end, the other cores idle); summaries in the order of `sources`.
        Setting `stop` ends each file at its current frame, with its pending clips stored."""
        jobs: queue.SimpleQueue[tuple[int, SourceConfig]] = queue.SimpleQueue()
        for job in sorted(enumerate(sources), key=lambda job: -_file_size(job[1].url)):  # stable: ties keep order
            jobs.put(job)
        summaries: list[SourceSummary | None] = [None] * len(sources)
        lanes = min(self.workers, len(sources))
        one_thread = files_fill_the_cores(lanes, len(os.sched_getaffinity(0)))
        slots = [
            threading.Thread(
                target=self._slot, args=(jobs, summaries, stop, on_progress, one_thread), name=f"batch-{n}", daemon=True
            )
            for n in range(lanes)
        ]
        for slot in slots:
            slot.start()
        for slot in slots:
            slot.join()
        unstarted = "not started: the run was stopped"
        return [s or SourceSummary(src.id, error=unstarted) for s, src in zip(summaries, sources, strict=True)]

    def close(self) -> None:
        """End the idle workers (they hold the models in memory)."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            worker.close()

    def _slot(
        self, jobs, summaries: list[SourceSummary | None], stop: threading.Event, on_progress, one_thread: bool
    ) -> None:
        """One worker's share of the run: take files until none is left or `stop` is set; `one_thread`:
        decode them on one thread (the files running at once fill the cores)."""
        worker: _Worker | None = None
        while not stop.is_set():
            try:
                index, source = jobs.get_nowait()
            except queue.Empty:
                break
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.close()  # it died with its last file: its pipe goes too
                worker = self._take_worker()
            self.busy[source.id] = worker.process.pid or 0
            try:
                summaries[index] = worker.run_file(source, one_thread, stop, self.outbox, self.on_case, on_progress)
            except Exception as exc:  # a bug on this side: that file fails, the others go on
                log.exception("%s: the batch lost its worker", source.id)
                summaries[index] = SourceSummary(source.id, error=f"unexpected {type(exc).__name__}: {exc}")
                worker.close()
            finally:
                self.busy.pop(source.id, None)
        if worker is not None:
            if worker.alive():
                self._idle.put(worker)
            else:
                worker.close()

    def _take_worker(self) -> _Worker:
        try:
            worker = self._idle.get_nowait()
            if worker.alive():
                return worker
            worker.close()
        except queue.Empty:
            pass
        return _Worker(self._context, self.config, self.logging_args, f"batch-worker-{next(self._names)}")


def files_fill_the_cores(files_at_once: int, cores: int) -> bool:
    """Whether files run at once leave FFmpeg's frame threads no core to use: then each file decodes on one
    thread. A file alone, or fewer files than cores (a large box), keeps the frame threads."""
    return files_at_once > 1 and files_at_once >= cores


def _file_size(path: str) -> int:
    """Bytes of a file, the stand-in for its duration when ordering a batch (0 for what is not a file)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _logging_args() -> tuple[bool, str]:
    """(verbose, format) of this process's logging, for setup_logging in a worker."""
    root = logging.getLogger()
    json_lines = any(isinstance(handler.formatter, JsonFormatter) for handler in root.handlers)
    return root.level <= logging.DEBUG, "json" if json_lines else "text"


class _Worker:
    """One worker process and this side of its pipe."""

    def __init__(self, context, config: AgentConfig, logging_args: tuple[bool, str], name: str) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_work, args=(child, config, logging_args), name=name, daemon=True)
        self.process.start()
        child.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def run_file(
        self,
        source: SourceConfig,
        one_decoder_thread: bool,
        stop: threading.Event,
        outbox: Outbox,
        on_case: Callable[[], None],
        on_progress: OnProgress | None,
    ) -> SourceSummary:
        """Hand one file to the worker and serve its cases until its summary comes back."""
        self.conn.send((source, one_decoder_thread))
        stopping = False
        while True:
            if stop.is_set() and not stopping:  # the worker ends the file at its frame and flushes its clips
                stopping = True
                self.process.terminate()
            try:
                if not self.conn.poll(0.2):
                    continue
                message = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(5)
                code = self.process.exitcode
                log.error("%s: the worker process ended (exit code %s) during the file; going on", source.id, code)
                return SourceSummary(source.id, error=f"worker process ended during the file (exit code {code})")
            kind, *rest = message
            if kind == "done":
                return rest[0]
            if kind == "progress":
                if on_progress is not None:
                    on_progress(*rest)
            elif kind == "accept":
                self.conn.send(_accept(outbox, on_case, *rest))

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.conn.close()


def _accept(outbox: Outbox, on_case: Callable[[], None], *case: Any) -> tuple[str, Any, Any]:
    """The outbox's answer for a worker: ("ok", stored) or ("oserror", errno, strerror) to raise there."""
    try:
        stored = outbox.accept(*case)
    except OSError as exc:
        return "oserror", exc.errno, exc.strerror
    if stored:
        on_case()
    return "ok", stored, None


class ParentOutbox:
    """What a worker's pipeline sees as its outbox: each case goes to the parent's, and `accept` returns
    (or raises) what the real one did."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()  # one question and its answer at a time

    def accept(self, case_id: str, revision: int, case_json: bytes, evidence: dict[str, bytes]) -> bool:
        with self._lock:
            self.conn.send(("accept", case_id, revision, case_json, evidence))
            kind, value, detail = self.conn.recv()
        if kind == "oserror":
            raise OSError(value, detail)
        return bool(value)

    def send(self, message: tuple) -> None:
        with self._lock:
            self.conn.send(message)


def _work(conn: Connection, config: AgentConfig, logging_args: tuple[bool, str]) -> None:
    """A worker process: load the detectors once, then run each (file, one decoder thread) sent until None
    (or the pipe closes)."""
    setup_logging(*logging_args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # the parent's stop: end the file at its frame
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    outbox = ParentOutbox(conn)
    _, keys_dir = state_paths(config)
    pipeline: Pipeline | None = None
    refused = ""
    try:
        pipeline = Pipeline(config, build_detectors(config), outbox, Signer.load_or_create(keys_dir))  # type: ignore[arg-type]
    except (ConfigError, ModelError) as exc:  # every file it is given says why, and the run goes on
        refused = str(exc)
    try:
        while not stop.is_set():
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            source, one_decoder_thread = job
            if pipeline is None:
                outbox.send(("done", SourceSummary(source.id, error=refused)))
            else:
                pipeline.one_decoder_thread = one_decoder_thread
                outbox.send(("done", _run_one(pipeline, source, stop, outbox)))
    finally:
        if pipeline is not None:
            pipeline.registry.close()


def _run_one(pipeline: Pipeline, source: SourceConfig, stop: threading.Event, outbox: ParentOutbox) -> SourceSummary:
    last = [-PROGRESS_EVERY_S]

    def on_frame(video: VideoSource, frame: Frame) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            outbox.send(("progress", source.id, frame.media_s, video.duration_s))

    try:
        summary = pipeline.run_source(source, stop, on_frame)
    except Exception as exc:  # a bug in one file must not end the worker's other files
        log.exception("%s: stopped by an unexpected error", source.id)
        summary = SourceSummary(source.id, error=f"unexpected {type(exc).__name__}: {exc}")
    outbox.send(("progress", source.id, summary.video_s, summary.video_s))
    return summary

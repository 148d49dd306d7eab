"""`edge-agent bench --streams N`: N cameras at once on this box; does each keep up?

Each stream is a file played at real time as a camera would (`realtime: true`: a decoder thread
releases frames at their timestamps and hands over the newest sampled one), a fixed camera with
motion gating and `--sample-fps` detections a second, through the agent's own path: the same
Pipeline, persistence rule, evidence and outbox as `edge-agent run` (a temporary state folder, no
broker), one thread per source, the detectors shared by all (each model loaded once).

With substreams (`--substreams`) each camera has two inputs, as `sources[].inputs`: the detector reads a
640x360 version of the clip (the substream) and the record input keeps the 1080p clip's packets in the
ring without decoding them, decoding from the last keyframe only for a case's snapshot.

Per stream: frames decoded, sampled (wanted by the motion gate), dropped (sampled but replaced by a
newer one before the pipeline took it), analysed, lag (wall time minus media time when the pipeline
starts on a frame) and latency: detection-to-outbox (from the start of the frame's analysis to its
case committed in the outbox) when cases are raised, and detection-to-result for every analysed frame.
Per case: its CPU time in its camera's thread from detection to outbox (decoding the record frame, the
face search, the JPEGs) and when it was raised; the busiest few seconds of the run show how much case work
came at once, which is what sets the outbox column when many cameras raise cases together.
Per detector: its share of the detection time and its milliseconds a frame (a configuration with several
models on one decode shows where the time goes). Per run: CPU % of the box (200 % = both cores of a
2-core box), peak RSS, and RSS per added stream from a 1-stream run before it. Every run is a process
of its own, so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from agent.config import AgentConfig, SourceConfig, load_config
from agent.detector_setup import build_detectors
from agent.pipeline import Pipeline, state_paths
from agent.runner import _guarded, check_class_map
from agent.tools.bench_clips import staggered_clips, substream_clip
from agent.tools.bench_common import process_usage
from protocol.signing import Signer
from streams import Frame
from streams.video import VideoSource
from uploader import Outbox

KEPT_UP_LAG_S = 1.0  # a stream whose lag stays under this kept up
BURST_WINDOW_S = 5.0  # cases raised within this many seconds of each other compete for the cores
RSS_BASE_MAX_S = 60  # the 1-stream run for the memory baseline lasts at most this long


class _Timed:
    """The shared detector and the outbox as the pipeline sees them, timing each analysed frame in its
    source's thread: when the pipeline asks the detector (its analysis starts) and when that frame's case
    is committed to the outbox (a clip revision is not a detection). Anything else goes to the real one."""

    def __init__(self, real, local: threading.local) -> None:
        self._real, self._local = real, local

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def detect(self, image: np.ndarray):
        if getattr(self._local, "started", None) is None:  # the first call for this frame (tiles make more)
            self._local.started, self._local.committed = time.monotonic(), None
            self._local.cpu_started = time.thread_time()
        return self._real.detect(image)

    def accept(self, case_id: str, revision: int, case_json: bytes, files: dict[str, bytes]) -> bool:
        stored = self._real.accept(case_id, revision, case_json, files)
        if stored and "clip.mp4" not in files and getattr(self._local, "committed", 1) is None:
            self._local.committed = time.monotonic()
            self._local.case_cpu = time.thread_time() - self._local.cpu_started
        return stored


def run_streams(
    clips: list[Path],
    model: Path,
    streams: int,
    seconds: float,
    sample_fps: float,
    first: int = 0,
    of: int = 0,
    config_file: Path | None = None,
    keyframes_only: bool = False,
    detect_clips: list[Path] | None = None,
    waits: list[float] | None = None,
) -> dict:
    """Run `streams` paced sources (numbers `first`.. of `of` in all) in this process for `seconds`; the
    report as a dict (see the module's docstring). `config_file`: see `bench_config`. `detect_clips`: the
    substream of each clip (same order): every camera then has two inputs. `waits`: how long a camera of
    each clip waits before it plays (`--stagger`)."""
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for i in range(streams):
            clip = str(clips[(first + i) % len(clips)])
            way_in: dict = {"url": clip}
            if detect_clips:
                way_in = {"inputs": {"detect": str(detect_clips[(first + i) % len(clips)]), "record": clip}}
            camera = {"id": f"cam{first + i:02d}", "kind": "fixed", "sample_fps": sample_fps, "realtime": True}
            sources.append(camera | way_in | {"keyframes_only": keyframes_only})
        config = bench_config(model, config_file, Path(tmp), sources)
        detectors = build_detectors(config)
        check_class_map(config, detectors)
        outbox_dir, keys_dir = state_paths(config)
        outbox = Outbox(outbox_dir)
        local = threading.local()
        timed = [replace(d, detector=_Timed(d.detector, local)) for d in detectors]
        pipeline = Pipeline(config, timed, _Timed(outbox, local), Signer.load_or_create(keys_dir))
        timings: dict[str, dict[str, list[float]]] = {
            s.id: {"lag": [], "result": [], "outbox": [], "raised": [], "case_cpu": []} for s in config.sources
        }
        stats: dict[str, VideoSource] = {}

        def on_frame_for(source_id: str):
            times = timings[source_id]

            def on_frame(video: VideoSource, frame: Frame) -> None:
                now = time.monotonic()
                stats[source_id] = video
                if getattr(local, "started", None) is None:  # no detector was due for this frame
                    return
                times["lag"].append(local.started - video.started_mono_s - frame.media_s)
                times["result"].append(now - local.started)
                if local.committed is not None:
                    times["outbox"].append(local.committed - local.started)
                    times["raised"].append(local.started)  # monotonic: one clock for every process of the box
                    times["case_cpu"].append(local.case_cpu)
                local.started = None

            return on_frame

        stop = threading.Event()
        summaries = []
        period_s = 1.0 / sample_fps

        def run_one(index: int, source) -> None:
            wait_s = waits[(first + index) % len(waits)] if waits else 0.0
            if not stop.wait(wait_s + (first + index) * period_s / (of or streams)):  # cameras are not in step
                summaries.append(_guarded(pipeline, source, stop, on_frame_for(source.id)))

        threads = [
            threading.Thread(target=run_one, args=(i, s), name=f"source:{s.id}", daemon=True)
            for i, s in enumerate(config.sources)
        ]
        started, cpu_before = time.monotonic(), process_usage()[0]
        for t in threads:
            t.start()
        timer = threading.Timer(seconds + period_s + max(waits or [0.0]), stop.set)
        timer.start()
        for t in threads:
            t.join()
        timer.cancel()
        wall, cpu = time.monotonic() - started, process_usage()[0] - cpu_before
        outbox.close()
    rows = []
    for s in sorted(summaries, key=lambda s: s.source_id):
        video, times = stats.get(s.source_id), timings[s.source_id]
        rows.append(
            {
                "stream": s.source_id,
                "decoded": s.frames_decoded,
                "sampled": video.stats.sampled if video else 0,
                "dropped": video.stats.dropped if video else 0,
                "analysed": s.frames_analysed,
                "cases": s.cases,
                "video_s": round(s.video_s, 1),
                "lag_p95_s": _p95(times["lag"]),
                "lag_max_s": max(times["lag"], default=None),
                "result_p95_s": _p95(times["result"]),
                "outbox_p95_s": _p95(times["outbox"]),
                "outbox_n": len(times["outbox"]),
                "raised_mono_s": times["raised"],
                "case_cpu_s": times["case_cpu"],
                "error": s.error,
                "model_s": s.model_s,
                "model_runs": s.model_runs,
            }
        )
    return {
        "streams": streams,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": process_usage()[1],
        "rows": rows,
    }


def bench_config(model: Path, config_file: Path | None, state_dir: Path, sources: list[dict]) -> AgentConfig:
    """The bench's own sources and state folder; the detector, rules and evidence settings of `config_file`
    when one is given (its sources, inbox and broker are not used), else the defaults with `model`."""
    if config_file is None:
        data = {"agent_id": "bench", "state_dir": state_dir, "detector": {"model": model}, "sources": sources}
        return AgentConfig.model_validate(data)
    own = [SourceConfig.model_validate(s) for s in sources]
    return load_config(config_file).model_copy(
        update={"agent_id": "bench", "state_dir": state_dir, "sources": own, "inbox": None}
    )


def busiest(times: list[float], window_s: float) -> int:
    """The most of `times` that fall within `window_s` of each other."""
    ordered, most, first = sorted(times), 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] > window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def case_burst(rows: list[dict]) -> tuple[int, float | None]:
    """(the most cases raised within BURST_WINDOW_S of each other, the mean CPU time of a case of the run;
    None without cases)."""
    raised = [t for r in rows for t in r["raised_mono_s"]]
    cpu = [c for r in rows for c in r["case_cpu_s"]]
    return busiest(raised, BURST_WINDOW_S), (sum(cpu) / len(cpu) if cpu else None)


def _p95(values: list[float]) -> float | None:
    return float(np.percentile(values, 95)) if values else None


def _start_worker(clips: list[Path], model: Path, streams: int, first: int, seconds: float, args) -> subprocess.Popen:
    command = [sys.executable, "-m", "agent.tools.bench_streams", "--model", str(model), "--streams", str(streams)]
    command += ["--first", str(first), "--of", str(args.streams), "--seconds", str(seconds)]
    command += ["--sample-fps", str(args.sample_fps), *(["--config", str(args.config)] if args.config else [])]
    command += ["--keyframes-only"] if args.keyframes_only else []
    for detect in getattr(args, "detect_clips", None) or []:
        command += ["--detect-clip", str(detect)]
    for wait_s in getattr(args, "waits", None) or []:
        command += ["--wait", f"{wait_s:.3f}"]
    command += [*map(str, clips)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _collect(worker: subprocess.Popen) -> dict:
    out, err = worker.communicate()
    if worker.returncode != 0:
        raise RuntimeError(f"bench worker failed: {err.strip().splitlines()[-1] if err.strip() else worker.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def measure(clips: list[Path], model: Path, streams: int, seconds: float, processes: int, args) -> dict:
    """N streams split over `processes` processes running at once; their reports merged."""
    sizes = [streams // processes + (i < streams % processes) for i in range(processes)]
    firsts = [sum(sizes[:i]) for i in range(processes)]
    procs = [_start_worker(clips, model, n, f, seconds, args) for n, f in zip(sizes, firsts, strict=True) if n]
    reports = [_collect(p) for p in procs]
    return {
        "streams": streams,
        "processes": len(reports),
        "wall_s": max(r["wall_s"] for r in reports),
        "cpu_s": sum(r["cpu_s"] for r in reports),
        "peak_rss_mb": sum(r["peak_rss_mb"] for r in reports),
        "rows": [row for r in reports for row in r["rows"]],
    }


def bench_streams(args: argparse.Namespace, model: Path) -> dict:
    """The `bench --streams N` command: a 1-stream run for the memory baseline, then N streams; prints a table."""
    if args.clip:
        clips, args.waits = list(args.clip), None
    else:
        clips, args.waits = staggered_clips(args.seconds, getattr(args, "stagger", 1))
    if getattr(args, "substreams", False):
        args.detect_clips = [substream_clip(clip, args.seconds) for clip in clips]
    base = None
    if args.streams > 1:
        base = measure(clips, model, 1, min(args.seconds, RSS_BASE_MAX_S), 1, args)
    run = measure(clips, model, args.streams, args.seconds, args.processes, args)
    run["rss_1_stream_mb"] = base["peak_rss_mb"] if base else run["peak_rss_mb"]
    run["rss_per_added_stream_mb"] = (
        (run["peak_rss_mb"] - base["peak_rss_mb"]) / (args.streams - 1) if base and args.processes == 1 else None
    )
    run["clips"] = [str(c) for c in clips]
    print_table(run)
    if args.json:
        args.json.write_text(json.dumps(run, indent=2))
    return run


def print_table(run: dict) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{1000 * value:.0f}"

    header = (
        f"{'stream':<7} {'decoded':>7} {'sampled':>7} {'dropped':>7} {'analysed':>8} {'cases':>5} "
        f"{'lag p95 ms':>10} {'lag max ms':>10} {'result p95 ms':>13} {'outbox p95 ms':>13}  kept up"
    )
    print(header)
    print("-" * len(header))
    kept = 0
    for r in run["rows"]:
        ok = not r["error"] and r["lag_max_s"] is not None and r["lag_max_s"] < KEPT_UP_LAG_S
        kept += ok
        print(
            f"{r['stream']:<7} {r['decoded']:>7} {r['sampled']:>7} {r['dropped']:>7} {r['analysed']:>8} "
            f"{r['cases']:>5} {ms(r['lag_p95_s']):>10} {ms(r['lag_max_s']):>10} {ms(r['result_p95_s']):>13} "
            f"{ms(r['outbox_p95_s']):>13}  {'yes' if ok else 'NO'}{' ' + r['error'] if r['error'] else ''}"
        )
    wall = run["wall_s"]
    decoded = sum(r["decoded"] for r in run["rows"])
    print(
        f"\n{kept} of {run['streams']} streams kept up (lag < {KEPT_UP_LAG_S:g} s) in {wall:.0f} s; "
        f"{run['processes']} process(es), each model loaded once per process; "
        f"{decoded / wall:.0f} frames/s decoded in all"
    )
    print(f"CPU {100 * run['cpu_s'] / wall:.0f} % (100 % = one core), peak RSS {run['peak_rss_mb']:.0f} MB", end="")
    if run.get("rss_per_added_stream_mb") is not None:
        print(
            f", 1 stream {run['rss_1_stream_mb']:.0f} MB: {run['rss_per_added_stream_mb']:.1f} MB per added stream",
            end="",
        )
    print()
    print_model_shares(run)
    peak, case_cpu_s = case_burst(run["rows"])
    if case_cpu_s is not None:
        cores = len(os.sched_getaffinity(0))
        print(
            f"cases: {1000 * case_cpu_s:.0f} ms of CPU each from detection to outbox (in its camera's thread); "
            f"the busiest {BURST_WINDOW_S:g} s raised {peak}: {peak * case_cpu_s / cores:.1f} s of work "
            f"for each of the {cores} cores, on top of the detections"
        )
    if not any(r["outbox_n"] for r in run["rows"]):
        print("no case was raised on this clip: latency is detection-to-result (every analysed frame), not to outbox")


def print_model_shares(run: dict) -> None:
    """Each detector's share of the time spent detecting (wall clock in its `detect`, summed over the
    streams; on a loaded box more than its CPU time) and its milliseconds a frame."""
    seconds: dict[str, float] = {}
    frames: dict[str, int] = {}
    for row in run["rows"]:
        for model, spent in row.get("model_s", {}).items():
            seconds[model] = seconds.get(model, 0.0) + spent
            frames[model] = frames.get(model, 0) + row["model_runs"][model]
    total = sum(seconds.values())
    for model, spent in seconds.items():
        per_frame = 1000 * spent / frames[model] if frames[model] else 0.0
        print(
            f"detector {model}: {100 * spent / total if total else 0:.0f} % of the detection time, "
            f"{per_frame:.0f} ms a frame on {frames[model]} frames"
        )


def main() -> None:  # a worker process: prints one JSON line
    parser = argparse.ArgumentParser()
    parser.add_argument("clips", type=Path, nargs="+")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--of", type=int, default=0)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--sample-fps", type=float, required=True)
    parser.add_argument("--keyframes-only", action="store_true")
    parser.add_argument("--detect-clip", type=Path, action="append", help="the substream of each clip, in order")
    parser.add_argument("--wait", type=float, action="append", help="seconds a camera of each clip waits, in order")
    a = parser.parse_args()
    report = run_streams(
        a.clips,
        a.model,
        a.streams,
        a.seconds,
        a.sample_fps,
        a.first,
        a.of,
        a.config,
        a.keyframes_only,
        a.detect_clip,
        a.wait,
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()

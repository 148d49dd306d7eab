"""`edge-agent bench`: the agent's pipeline against the plain ultralytics loop, on the same clip and
the same model, each in a process of its own (so that peak memory is its own), side by side.

(a) what a user would write: cv2.VideoCapture + YOLO(weights).predict() on every frame;
(b) the agent: PyAV decode, motion gate (fixed camera) or time sampling, onnxruntime on sampled
frames only, persistence rule, evidence and outbox.
Both read the file as fast as they can; "x real time" is seconds of video per second of wall time
in one process, which is how many such streams one process keeps up with.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.config import resources
from agent.tools.bench_common import make_clip, parse_settings, process_usage

BASELINE_IMGSZ = 640


def run_baseline(clip: Path, weights: Path) -> dict:
    """The plain ultralytics loop on every frame (needs the train extra)."""
    import cv2
    from ultralytics import YOLO

    model = YOLO(str(weights), task="detect")
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    frames = detections = 0
    started = time.perf_counter()
    while True:
        ok, image = capture.read()
        if not ok:
            break
        result = model.predict(image, imgsz=BASELINE_IMGSZ, verbose=False)[0]
        frames += 1
        detections += len(result.boxes)
    wall = time.perf_counter() - started
    return _report("plain ultralytics loop", frames, frames, detections, frames / fps, wall, {})


def run_agent(clip: Path, model: Path, kind: str, sample_fps: float, keyframes_only: bool = False) -> dict:
    """The agent's own per-source loop, with a local outbox in a temporary folder; `keyframes_only`: the
    source decodes keyframes only (sources[].keyframes_only)."""
    import threading

    from agent.config import AgentConfig
    from agent.pipeline import Pipeline
    from detectors.onnx_yolo import OnnxYoloDetector
    from protocol.signing import Signer
    from uploader import Outbox

    with tempfile.TemporaryDirectory() as tmp:
        config = AgentConfig.model_validate(
            {
                "agent_id": "bench",
                "state_dir": tmp,
                "detector": {"model": str(model)},
                "sources": [
                    {
                        "id": "bench",
                        "kind": kind,
                        "url": str(clip),
                        "sample_fps": sample_fps,
                        "keyframes_only": keyframes_only,
                    }
                ],
            }
        )
        detector = OnnxYoloDetector(model, config.detector.min_score)
        pipeline = Pipeline(config, detector, Outbox(Path(tmp) / "outbox"), Signer.load_or_create(Path(tmp) / "k"))
        started = time.perf_counter()
        summary = pipeline.run_source(config.sources[0], threading.Event())
        wall = time.perf_counter() - started
    stages = dict(summary.stage_s)
    detect_s = stages.pop("detect")
    stages |= {f"detect: {k}": v for k, v in detector.stage_s.items()}
    stages["detect: other"] = max(0.0, detect_s - sum(detector.stage_s.values()))
    return _report(
        f"edge-agent ({kind}, {'keyframes only' if keyframes_only else f'<= {sample_fps:g}/s'})",
        summary.frames_decoded,
        summary.frames_analysed,
        summary.detections,
        summary.video_s,
        wall,
        stages,
    )


def _report(name: str, decoded: int, analysed: int, detections: int, video_s: float, wall: float, stages) -> dict:
    cpu_s, peak_rss_mb = process_usage()
    return {
        "name": name,
        "decoded": decoded,
        "analysed": analysed,
        "detections": detections,
        "video_s": video_s,
        "wall_s": wall,
        "cpu_s": cpu_s,
        "peak_rss_mb": peak_rss_mb,
        "stage_ms_per_analysed_frame": {k: 1000 * v / max(analysed, 1) for k, v in stages.items()},
    }


def run_in_subprocess(args: list[str]) -> dict | None:
    done = subprocess.run([sys.executable, "-m", "agent.tools.bench", *args], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  ({args[0]} did not run: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(
    clip: Path | None,
    model: Path,
    weights: Path | None,
    kind: str,
    sample_fps: float,
    seconds: int,
    keyframes_only: bool = False,
) -> None:
    """The side-by-side table per clip: the plain loop (with `weights`), the agent, and with `keyframes_only`
    the agent decoding keyframes only; each ratio is against the plain loop."""
    clips: list[Path]
    cache = Path(tempfile.gettempdir()) / "edge-agent-bench"
    cache.mkdir(exist_ok=True)
    if clip:
        clips = [clip]
    else:
        base = resources.builtin("sample")
        clips = [
            make_clip(base, cache / f"sample-1920x1080p25-4M-{seconds}s.mp4", 1080, 25, 4000, seconds),
            make_clip(base, cache / f"sample-1280x720p25-2M-{seconds}s.mp4", 720, 25, 2000, seconds),
        ]
    for path in clips:
        print(f"\n{path.name}")
        plain = run_in_subprocess(["baseline", str(path), str(weights)]) if weights else None
        agents = [run_in_subprocess(["agent", str(path), str(model), kind, str(sample_fps), "0"])]
        if keyframes_only:
            agents.append(run_in_subprocess(["agent", str(path), str(model), kind, str(sample_fps), "1"]))
        _print_table(plain, [r for r in agents if r])


def _print_table(plain: dict | None, agents: list[dict]) -> None:
    """The rows side by side; with the plain loop's row (None when it did not run), each agent row's ratio to it."""
    rows = [plain, *agents] if plain else agents
    print(
        f"{'pipeline':<34} {'x real time':>11} {'frames/s':>9} {'analysed/s':>10} {'ms/analysed':>11} "
        f"{'det/s':>6} {'CPU %':>6} {'peak RSS MB':>11}"
    )
    for r in rows:
        speed = r["video_s"] / r["wall_s"]
        print(
            f"{r['name']:<34} {speed:>11.2f} {r['decoded'] / r['wall_s']:>9.1f} {r['analysed'] / r['wall_s']:>10.1f} "
            f"{1000 * r['wall_s'] / max(r['analysed'], 1):>11.1f} {r['detections'] / r['wall_s']:>6.1f} "
            f"{100 * r['cpu_s'] / r['wall_s']:>6.0f} {r['peak_rss_mb']:>11.0f}"
        )
    if plain:
        for r in agents:
            ratio = (r["video_s"] / r["wall_s"]) / (plain["video_s"] / plain["wall_s"])
            print(f"ratio {r['name']} / plain loop, in streams one process keeps up with: {ratio:.1f}x")
    for r in rows:
        if r["stage_ms_per_analysed_frame"]:
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_ms_per_analysed_frame"].items())
            print(f"ms per analysed frame, {r['name']}: {stages}")


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    """The `edge-agent bench` subcommand."""
    bench = sub.add_parser(
        "bench",
        help="speed: the agent's pipeline against the plain ultralytics loop, same clip and model",
        description="Runs, each in its own process and one after the other, (a) the plain loop a user would "
        "write (cv2.VideoCapture + ultralytics predict on every frame; needs the train extra and .pt weights) "
        "and (b) the agent's pipeline, on 1080p25 and 720p25 H.264 clips made from the bundled sample (or "
        "--clip), and prints x real time, frames/s, ms per stage, CPU %, peak memory and the ratio (b)/(a). "
        "With --streams N: N fixed cameras at once (files played at real time, motion gating, --sample-fps each) "
        "through the agent's pipeline and outbox, and per stream frames dropped, lag and latency, with CPU and "
        "memory per added stream (from a 1-stream run first) and each case's CPU and the busiest 5 s of cases. "
        "With --batch N: N recorded files one at a time and on --workers processes (edge-agent process); "
        "with --tiles: the cost of tiling a 4000x3000 drone frame.",
    )
    bench.add_argument(
        "--clip",
        type=Path,
        action="append",
        help="a video to use instead of the generated 1080p and 720p clips (repeat for several; "
        "--streams cycles through them)",
    )
    bench.add_argument("--model", default="builtin:garbage", help="ONNX model for the agent")
    bench.add_argument(
        "--weights",
        type=Path,
        help="ultralytics .pt weights for the baseline "
        "(default: models/garbage-yolov8n.pt when ultralytics is installed)",
    )
    bench.add_argument("--kind", default="fixed", choices=["vehicle", "fixed", "drone", "bodycam"])
    bench.add_argument("--sample-fps", type=float, default=1.0, help="detections per second per stream")
    bench.add_argument("--seconds", type=int, default=30, help="length of the generated clips and of a --streams run")
    bench.add_argument("--streams", type=int, default=0, help="instead: N cameras at once, do they keep up (see below)")
    bench.add_argument("--processes", type=int, default=1, help="--streams: split the streams over P processes")
    bench.add_argument("--json", type=Path, help="--streams: also write the report as JSON to this file")
    bench.add_argument(
        "-c",
        "--config",
        type=Path,
        help="--streams: detector, rules, evidence from this config; --tiles: its detector.tiling",
    )
    bench.add_argument(
        "--batch",
        type=int,
        default=0,
        help="instead: N files of --seconds (1080p25, or --clip) through `edge-agent process`, one at a time and "
        "on --workers processes, side by side (with --keyframes-only: keyframes only, as process does)",
    )
    bench.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="--batch: worker processes of the parallel run (default: the cores, %(default)s here)",
    )
    bench.add_argument(
        "--tiles",
        action="store_true",
        help="instead: seconds per 4000x3000 drone frame: 640-pixel tiles, 800-pixel tiles with the whole-frame pass "
        "on --workers threads, and the tiling of -c (default configs/drone-vendors.yaml), interleaved",
    )
    bench.add_argument(
        "--keyframes-only",
        action="store_true",
        help="--streams: the cameras decode keyframes only (sources[].keyframes_only); without --streams: "
        "one more row, the agent decoding keyframes only",
    )
    bench.add_argument(
        "--substreams",
        action="store_true",
        help="--streams: each camera has two inputs (sources[].inputs): the detector reads a 640x360 substream "
        "of the clip, the 1080p clip is kept encoded for evidence",
    )
    bench.add_argument(
        "--stagger",
        type=_at_least_one,
        default=1,
        metavar="K",
        help="--streams: the cameras cycle through K moments of the bundled sample, 1/K of its length apart (cut "
        "from one encode), so that their cases do not all fall in the same second; K = N gives each camera its "
        "own moment (default 1: every camera shows the same moment, a burst of cases at once)",
    )
    bench.add_argument(
        "--settings",
        type=parse_settings,
        help="--streams: run N cameras once per setting (full, keyframes, substream, substream-keyframes; "
        "comma-separated) and "
        "print them side by side",
    )
    bench.set_defaults(func=_command)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}")
    return int(text)


def _command(args: argparse.Namespace) -> int:
    """`edge-agent bench`: the side-by-side table, or with --streams the many-camera run."""
    model = (
        resources.builtin(args.model.removeprefix("builtin:"))
        if args.model.startswith("builtin:")
        else Path(args.model)
    )
    if args.streams and args.settings:
        from agent.tools.bench_settings import compare_settings

        compare_settings(args, model)
        return 0
    if args.streams:
        from agent.tools.bench_streams import bench_streams

        bench_streams(args, model)
        return 0
    if args.batch or args.tiles:
        from agent.tools.bench_batch import bench_batch, bench_tiles

        if args.batch:
            bench_batch(args, model)
        if args.tiles:
            bench_tiles(args.workers, args.config)
        return 0
    weights = args.weights
    if weights is None and importlib.util.find_spec("ultralytics"):
        weights = resources.builtin("garbage-pt")
    if weights is None:
        print("(no ultralytics: the baseline is skipped; pip install -e '.[train]' to compare)")
    for clip in args.clip or [None]:
        bench(clip, model, weights, args.kind, args.sample_fps, args.seconds, args.keyframes_only)
    return 0


if __name__ == "__main__":  # a worker: prints one JSON line
    mode, *rest = sys.argv[1:]
    if mode == "baseline":
        report = run_baseline(Path(rest[0]), Path(rest[1]))
    else:
        report = run_agent(Path(rest[0]), Path(rest[1]), rest[2], float(rest[3]), rest[4] == "1")
    print(json.dumps(report))

"""`edge-agent bench --batch N` and `--tiles`: recorded footage and drone frames, the way they are run.

--batch: N copies of a 1080p25 fixed-camera clip (or --clip) through `edge-agent process`'s own path
(agent.runner.run_batch: worker processes, the parent's outbox), one at a time (one worker) and on
--workers processes, side by side: x real time, CPU % of the box, the share of decoding and of the
detector in the workers' time, and whether both runs raised the same cases.
--tiles: one 4000x3000 frame through the aerial vendor model, today's 640-pixel tiling against larger
tiles and tiles on threads (the recall of each on held-out vendors: tests/detectors/test_tiling.py).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from agent.config import AgentConfig, resources
from agent.pipeline import SourceSummary
from agent.runner import run_batch
from agent.tools.bench_common import make_clip

TILE_REPEATS = 3  # frames per tiling row; the median is printed
DRONE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "drone-vendors.yaml"


def bench_batch(args: argparse.Namespace, model: Path) -> None:
    """One-at-a-time against parallel on the same files, same run."""
    cache = Path(tempfile.gettempdir()) / "edge-agent-bench"
    cache.mkdir(exist_ok=True)
    clip = args.clip[0] if args.clip else None
    if clip is None:
        clip = make_clip(
            resources.builtin("sample"),
            cache / f"sample-1920x1080p25-4M-{args.seconds}s.mp4",
            1080,
            25,
            4000,
            args.seconds,
        )
    mode = "keyframes only" if args.keyframes_only else "every frame decoded"
    print(f"\n{args.batch} x {clip.name} ({args.kind}, <= {args.sample_fps:g} analysed/s, {mode})")
    print(f"load average {_load()} before")
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for n in range(args.batch):  # a link each: every file is a source of its own
            files.append(Path(tmp) / f"cam-{n + 1}{clip.suffix}")
            files[-1].symlink_to(clip.resolve())
        rows = [_run(files, model, args, workers, Path(tmp) / f"state-{workers}") for workers in (1, args.workers)]
    print(f"load average {_load()} after")
    print(
        f"{'run':<28} {'video s':>8} {'wall s':>7} {'x real time':>11} {'CPU %':>6} {'video s/CPU s':>13} "
        f"{'decode %':>8} {'detect %':>8} {'start s':>7} {'tail s':>6}"
    )
    for row in rows:
        print(
            f"{row['name']:<28} {row['video_s']:>8.0f} {row['wall_s']:>7.1f} {row['video_s'] / row['wall_s']:>11.1f} "
            f"{100 * row['cpu_s'] / row['wall_s']:>6.0f} {row['video_s'] / row['cpu_s']:>13.1f} "
            f"{row['decode_pct']:>8.0f} {row['detect_pct']:>8.0f} {row['start_s']:>7.1f} {row['tail_s']:>6.1f}"
        )
    same = rows[0]["cases"] == rows[1]["cases"]
    print(f"speed-up {rows[0]['wall_s'] / rows[1]['wall_s']:.2f}x; same cases in both runs: {'yes' if same else 'NO'}")
    print(
        "(CPU %: this process and its workers, 200 = both cores of a 2-core box; video s/CPU s: what one fully "
        "used core reaches; decode %, detect %: shares of the workers' time on their files; start s: until the "
        "first file's first frame (the workers' imports and models); tail s: the end of the run with fewer files "
        "left than workers, so that a core has no file)"
    )


def _run(files: list[Path], model: Path, args: argparse.Namespace, workers: int, state: Path) -> dict:
    sources = [
        {
            "id": f.stem,
            "kind": args.kind,
            "url": str(f),
            "sample_fps": args.sample_fps,
            "keyframes_only": args.keyframes_only,
        }
        for f in files
    ]
    config = AgentConfig.model_validate(
        {"agent_id": "bench", "state_dir": str(state), "detector": {"model": str(model)}, "sources": sources}
    )
    reported: dict[str, list[float]] = {}  # source id -> wall times of its progress reports

    def on_progress(source_id: str, done_s: float, duration_s: float | None) -> None:
        reported.setdefault(source_id, []).append(time.perf_counter() - started)

    cpu_before = _cpu_s()
    started = time.perf_counter()
    result = run_batch(config, config.sources, workers, on_progress)
    wall = time.perf_counter() - started
    ended = sorted(times[-1] for times in reported.values())  # each file's last report: when it was done
    stages = _summed(result.summaries)
    busy = sum(stages.values()) or 1.0
    return {
        "name": "one at a time (1 worker)" if workers == 1 else f"parallel ({workers} workers)",
        "video_s": sum(s.video_s for s in result.summaries),
        "wall_s": wall,
        "cpu_s": _cpu_s() - cpu_before,
        "decode_pct": 100 * stages["decode+sample"] / busy,
        "detect_pct": 100 * stages["detect"] / busy,
        "cases": sorted((s.source_id, tuple(sorted(s.case_ids))) for s in result.summaries),
        "start_s": min((times[0] for times in reported.values()), default=wall),
        "tail_s": ended[-1] - ended[-workers] if 1 < workers <= len(ended) else 0.0,
    }


def _summed(summaries: list[SourceSummary]) -> dict[str, float]:
    total: dict[str, float] = {}
    for summary in summaries:
        for stage, seconds in summary.stage_s.items():
            total[stage] = total.get(stage, 0.0) + seconds
    return total


def _cpu_s() -> float:
    """CPU seconds of this process and of its ended children (the workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_tiles(threads: int, config: Path | None = None) -> None:
    """Seconds per 4000x3000 frame: the tiling before issue 17, last stop's 800-pixel tiles with the
    whole-frame pass, and the drone configuration's tiling (`config`, default configs/drone-vendors.yaml
    of the checkout) interleaved frame by frame: a busy box slows every row alike, so compare the rows of
    one run."""
    from agent.config import load_config
    from agent.detector_setup import build_detector
    from detectors.onnx_yolo import OnnxYoloDetector
    from detectors.tiling import TiledDetector

    path = config or DRONE_CONFIG
    if not path.is_file():
        raise SystemExit(f"bench --tiles: {path} not found; give -c FILE, a configuration with detector.tiling")
    shipped = load_config(path).detector
    if shipped.tiling is None:
        raise SystemExit(f"bench --tiles: {path} has no detector.tiling; give -c FILE with one")
    model = OnnxYoloDetector(resources.builtin("vendors-aerial"), min_score=0.3)
    rows = {
        "tile_px 640 (before issue 17)": TiledDetector(model),
        f"tile_px 800, whole frame, threads {threads}": TiledDetector(model, tile_px=800, threads=threads),
        f"{path.name} (its tiling)": build_detector(shipped),
    }
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.normal(110, 25, (3000, 4000, 3)).clip(0, 255).astype(np.uint8), (0, 0), 3)
    print(f"\n4000x3000 frame, builtin:vendors-aerial; load average {_load()} before")
    print("(recall of each row on held-out vendors: tests/detectors/test_tiling.py, docs/drone-tiling.md)")
    seconds: dict[str, list[float]] = {name: [] for name in rows}
    cpu = dict.fromkeys(rows, 0.0)
    for _ in range(TILE_REPEATS):
        for name, tiled in rows.items():
            cpu_before, started = _cpu_s(), time.perf_counter()
            tiled.detect(frame)
            seconds[name].append(time.perf_counter() - started)
            cpu[name] += _cpu_s() - cpu_before
    print(f"{'tiling':<44} {'passes':>6} {'s/frame':>8} {'ms/pass':>8} {'CPU s/frame':>11} {'vs 640':>7}")
    today = float(np.median(seconds[next(iter(rows))]))
    for name, tiled in rows.items():
        passes = tiled.tiles_run // TILE_REPEATS
        median = float(np.median(seconds[name]))
        print(
            f"{name:<44} {passes:>6} {median:>8.2f} {1000 * median / passes:>8.0f} "
            f"{cpu[name] / TILE_REPEATS:>11.2f} {median / today:>7.2f}"
        )
    tiling = shipped.tiling
    print(
        f"load average {_load()} after; {path.name}: tile_px {tiling.tile_px}, overlap {tiling.overlap:g}, "
        f"full_frame {tiling.full_frame}, threads {tiling.threads}"
    )
    print("(CPU s/frame: what one frame costs on a core of its own; on two free cores two threads halve its wall time)")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())

"""`edge-agent bench --streams N --settings full,keyframes,substream`: the same N cameras decoded three ways,
one after the other, in one table: does each setting keep up, and what does a camera cost?

full: every frame of the 1080p stream decoded (today's default); keyframes: keyframes only
(`keyframes_only`); substream: the detector decodes a 640x360 substream and the 1080p main stream is kept
encoded for evidence (`inputs`); substream-keyframes: the same, the substream's keyframes only (one a
second). Each setting is `bench --streams N` as it is (a 1-stream run for the
memory baseline, then N), so its own per-stream table is printed first.
"""

from __future__ import annotations

import argparse
import json
from copy import copy
from pathlib import Path

from agent.tools.bench_common import SETTINGS
from agent.tools.bench_streams import BURST_WINDOW_S, KEPT_UP_LAG_S, bench_streams, case_burst


def compare_settings(args: argparse.Namespace, model: Path) -> list[dict]:
    """Run `bench --streams N` once per setting and print the side-by-side table; its rows as dicts."""
    rows = []
    for name in args.settings:
        run_args = copy(args)
        vars(run_args).update(SETTINGS[name], json=None)
        print(f"\n== {name}: {args.streams} camera(s) for {args.seconds} s")
        rows.append(summary_row(name, bench_streams(run_args, model)))
    print_comparison(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


def summary_row(setting: str, run: dict) -> dict:
    """One setting's verdict: cameras that kept up (lag max) and that meet lag p95 and detection-to-outbox
    p95 under 1 s, the worst camera's p95s, CPU per camera (% of one core), RSS per added camera, and the
    case burst that explains the outbox p95 (see `case_burst`)."""
    streams = run["rows"]
    peak, case_cpu_s = case_burst(streams)

    def worst(key: str) -> float | None:
        values = [r[key] for r in streams if r[key] is not None]
        return max(values) if values else None

    def meets(r: dict) -> bool:
        fast = r["outbox_p95_s"] is None or r["outbox_p95_s"] < KEPT_UP_LAG_S
        return not r["error"] and r["lag_p95_s"] is not None and r["lag_p95_s"] < KEPT_UP_LAG_S and fast

    return {
        "setting": setting,
        "streams": run["streams"],
        "kept_up": sum(1 for r in streams if not r["error"] and (r["lag_max_s"] or 1e9) < KEPT_UP_LAG_S),
        "meet_p95": sum(1 for r in streams if meets(r)),
        "lag_p95_worst_s": worst("lag_p95_s"),
        "outbox_p95_worst_s": worst("outbox_p95_s"),
        "cases": sum(r["cases"] for r in streams),
        "cases_busiest_window": peak,
        "case_cpu_s": case_cpu_s,
        "analysed_per_s": sum(r["analysed"] for r in streams) / run["wall_s"],
        "cpu_per_camera_pct": 100 * run["cpu_s"] / run["wall_s"] / run["streams"],
        "rss_per_added_mb": run.get("rss_per_added_stream_mb"),
        "peak_rss_mb": run["peak_rss_mb"],
    }


def print_comparison(rows: list[dict]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{1000 * value:.0f}"

    header = (
        f"{'setting':<19} {'cameras':>7} {'kept up':>7} {'p95s < 1 s':>10} {'lag p95 ms':>10} {'outbox p95 ms':>13} "
        f"{'cases':>5} {'busiest':>7} {'CPU ms/case':>11} "
        f"{'analysed/s':>10} {'CPU %/camera':>12} {'MB/added camera':>15}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for r in rows:
        rss = "-" if r["rss_per_added_mb"] is None else f"{r['rss_per_added_mb']:.1f}"
        case_cpu = ms(r["case_cpu_s"])
        print(
            f"{r['setting']:<19} {r['streams']:>7} {r['kept_up']:>7} {r['meet_p95']:>10} "
            f"{ms(r['lag_p95_worst_s']):>10} {ms(r['outbox_p95_worst_s']):>13} {r['cases']:>5} "
            f"{r['cases_busiest_window']:>7} {case_cpu:>11} "
            f"{r['analysed_per_s']:>10.1f} {r['cpu_per_camera_pct']:>12.1f} {rss:>15}"
        )
    print(
        f"kept up: lag max < {KEPT_UP_LAG_S:g} s; p95s: lag and detection-to-outbox p95 < {KEPT_UP_LAG_S:g} s; "
        f"lag and outbox columns: the worst camera's p95; busiest: the most cases raised within {BURST_WINDOW_S:g} s; "
        "CPU ms/case: from detection to outbox, in its camera's thread; CPU %: 100 % = one core"
    )

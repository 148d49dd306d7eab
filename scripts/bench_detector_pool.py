"""Does a bounded pool of detector workers help when many source threads share one detector?

Each source thread of the agent calls the shared onnxruntime detector itself (1 intra-op thread, so
each inference runs in the calling thread). With 12 cameras on 2 cores, up to 12 inferences may run
at once, time-sliced by the OS. This compares, for N threads that each detect once a second on a
1080p frame (`--aligned`: all at the same instant, the worst case; otherwise spread over the second),
direct calls against a semaphore of W slots (W inferences at a time, the others wait their turn),
and prints the latency per call (from asking to the answer) and the CPU per call.

    .venv/bin/python scripts/bench_detector_pool.py [--streams 12] [--rounds 8] [--model M.onnx]
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from pathlib import Path

import numpy as np

from agent.config import resources
from detectors import Detector
from detectors.loading import load_detector


class Bounded:
    """The detector with at most `slots` inferences at once."""

    def __init__(self, detector: Detector, slots: int) -> None:
        self.detector = detector
        self.slots = threading.Semaphore(slots)

    def detect(self, image: np.ndarray):
        with self.slots:
            return self.detector.detect(image)


def run(shared, image: np.ndarray, streams: int, rounds: int, aligned: bool) -> tuple[np.ndarray, float]:
    """Latencies (ms) of every call, and CPU ms per call."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.2

    def source(i: int) -> None:
        for r in range(rounds):
            time.sleep(max(0.0, start + r + (0 if aligned else i / streams) - time.monotonic()))
            asked = time.monotonic()
            shared.detect(image)
            with lock:
                latencies.append(1000 * (time.monotonic() - asked))

    threads = [threading.Thread(target=source, args=(i,)) for i in range(streams)]
    cpu = _cpu_s()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(latencies), 1000 * (_cpu_s() - cpu) / len(latencies)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--model", type=Path, default=resources.builtin("garbage"))
    args = parser.parse_args()
    detector = load_detector(args.model, 0.3, 0.5, 1)
    image = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), np.uint8)
    for _ in range(5):
        detector.detect(image)
    print(f"{args.streams} threads, 1 detection/s each, {args.model.name}")
    for aligned in (True, False):
        for name, shared in (
            ("direct", detector),
            ("pool of 2", Bounded(detector, 2)),
            ("pool of 1", Bounded(detector, 1)),
            ("direct", detector),
            ("pool of 2", Bounded(detector, 2)),
        ):
            ms, cpu = run(shared, image, args.streams, args.rounds, aligned)
            print(
                f"{'aligned' if aligned else 'spread':<8} {name:<10} latency ms p50 {np.median(ms):6.1f} "
                f"p95 {np.percentile(ms, 95):6.1f} max {ms.max():6.1f}   CPU ms per call {cpu:5.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

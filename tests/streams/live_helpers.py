"""A consumer thread for live-source tests and process resource probes (threads, fds, RSS)."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from streams.video import VideoSource


@dataclass(frozen=True)
class Seen:
    """What the consumer noted about one frame: when it got it and the frame's own times."""

    recv_mono_s: float
    media_s: float
    mono_s: float
    shape: tuple[int, ...]
    utc: datetime
    newest_media_s: float | None  # the decoder's newest media time when this frame was handed over


@dataclass
class Consumer:
    """Runs `source.frames(stop)` in a thread, optionally sleeping per frame, and keeps what it saw."""

    source: VideoSource
    sleep_s: float = 0.0
    seen: deque[Seen] = field(default_factory=lambda: deque(maxlen=5000))
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Consumer:
        self._thread = threading.Thread(target=self._run, name="test-consumer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        for frame in self.source.frames(self.stop):
            newest = self.source.stats.last_media_s
            self.seen.append(Seen(time.monotonic(), frame.media_s, frame.mono_s, frame.image.shape, frame.utc, newest))
            if self.sleep_s:
                self.stop.wait(self.sleep_s)

    def close(self, timeout_s: float = 15.0) -> None:
        """Stop consuming and wait for the source's decoder thread to end too."""
        self.stop.set()
        if self._thread:
            self._thread.join(timeout_s)
            assert not self._thread.is_alive(), "consumer did not stop"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and decoder_threads():
            time.sleep(0.05)

    def wait_frame_after(self, t: float, timeout_s: float) -> Seen | None:
        """The first frame received after monotonic time `t`, waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            after = [s for s in list(self.seen) if s.recv_mono_s > t]
            if after:
                return after[0]
            time.sleep(0.02)
        return None


def decoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("decode:") and t.is_alive()]


def native_threads() -> int:
    """OS threads of this process, FFmpeg's decoder threads included."""
    return len(os.listdir("/proc/self/task"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")

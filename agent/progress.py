"""Progress bars for batch footage: one tqdm bar per source, advanced by media time (and for files on
worker processes, agent/batch.py, one more bar for all of them).

Bars are drawn only when stderr is a terminal: under systemd, docker or a pipe they would fill the log
with carriage returns and block characters, and the summary table says the same at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

from streams import Frame
from streams.video import VideoSource

OnFrame = Callable[[VideoSource, Frame], None]


@contextmanager
def progress_bars() -> Iterator[Callable[[str], OnFrame]]:
    """Yields a factory of per-source callbacks; closes every bar on exit."""
    bars: list[tqdm] = []

    def factory(source_id: str) -> OnFrame:
        bar = tqdm(
            desc=source_id,
            unit="s",
            unit_scale=True,
            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s video [{elapsed}<{remaining}, {rate_fmt}]",
            total=0,
            leave=True,
            position=len(bars),
            disable=None,  # tqdm's "only on a terminal"
        )
        bars.append(bar)

        def on_frame(video: VideoSource, frame: Frame) -> None:
            if video.duration_s and not bar.total:
                bar.total = video.duration_s
            bar.update(frame.media_s - bar.n)

        return on_frame

    try:
        yield factory
    finally:
        for bar in bars:
            bar.close()


class BatchProgress:
    """Progress of files processed at once by worker processes: a bar per file and one for all of them,
    advanced by the media seconds each worker reports. `done` and `total` hold the numbers whether or
    not bars are drawn."""

    def __init__(self, source_ids: list[str]) -> None:
        self._lock = threading.Lock()  # reports arrive on one thread per worker
        self.done = dict.fromkeys(source_ids, 0.0)
        self.durations: dict[str, float] = {}
        bar_format = "{l_bar}{bar}| {n:.0f}/{total:.0f} s video [{elapsed}<{remaining}, {rate_fmt}]"
        self._bars = {
            source_id: tqdm(desc=source_id, unit="s", bar_format=bar_format, total=0, position=i, disable=None)
            for i, source_id in enumerate(source_ids)
        }
        self._all = tqdm(
            desc=f"all {len(source_ids)} files",
            unit="s",
            bar_format=bar_format,
            total=0,
            position=len(source_ids),
            disable=None,
        )

    def update(self, source_id: str, media_s: float, duration_s: float | None) -> None:
        """A worker's report: `source_id` is done up to `media_s` of its `duration_s` (None: not known)."""
        with self._lock:
            bar = self._bars[source_id]
            if duration_s and source_id not in self.durations:
                self.durations[source_id] = duration_s
                bar.total = duration_s
                self._all.total = sum(self.durations.values())
            self.done[source_id] = max(self.done[source_id], media_s)
            bar.update(self.done[source_id] - bar.n)
            self._all.update(self.total - self._all.n)

    @property
    def total(self) -> float:
        """Media seconds done over all files."""
        return sum(self.done.values())

    def close(self) -> None:
        for bar in [*self._bars.values(), self._all]:
            bar.close()

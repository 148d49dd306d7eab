"""Progress bars for batch footage: one tqdm bar per source, advanced by media time.

Bars are drawn only when stderr is a terminal: under systemd, docker or a pipe they would fill the log
with carriage returns and block characters, and the summary table says the same at the end.
"""

from __future__ import annotations

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

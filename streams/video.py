"""Video sources decoded with PyAV: recorded files and RTSP cameras.

PyAV rather than cv2.VideoCapture because it gives us the encoded packets (clips without
re-encoding, later), per-packet error handling (one corrupt packet is skipped, not the file) and
frames that are converted to BGR only when the agent will look at them.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av

from streams import Frame, StreamError
from streams.telemetry import Track

log = logging.getLogger(__name__)

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "srt://")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs and error messages."""
    return re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", url)


def is_live(url: str) -> bool:
    return url.lower().startswith(LIVE_SCHEMES)


@dataclass
class SourceStats:
    """Counters a source keeps for the summary and for health reports."""

    state: str = "idle"
    decoded: int = 0
    sampled: int = 0
    bad_packets: int = 0
    reconnects: int = 0
    last_error: str = ""


@dataclass
class Backoff:
    """Exponential backoff with jitter, capped, reset after a healthy period."""

    initial_s: float = 1.0
    cap_s: float = 30.0
    _next: float = field(default=0.0, init=False)

    def delay(self) -> float:
        self._next = self.initial_s if self._next == 0 else min(self._next * 2, self.cap_s)
        return self._next * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next = 0.0


class VideoSource:
    """Frames sampled at `sample_fps` from a file or a live stream.

    Files are read as fast as possible (or at real time with `realtime=True`); live streams
    reconnect with backoff until `stop` is set. Each yielded Frame carries the nearest position
    fix from `track` when one is given.
    """

    def __init__(
        self,
        source_id: str,
        url: str,
        sample_fps: float,
        track: Track | None = None,
        realtime: bool = False,
        rtsp_transport: str = "tcp",
        timeout_s: float = 10.0,
    ) -> None:
        self.source_id = source_id
        self.url = url
        self.sample_fps = sample_fps
        self.track = track
        self.realtime = realtime
        self.rtsp_transport = rtsp_transport
        self.timeout_s = timeout_s
        self.stats = SourceStats()
        self.duration_s: float | None = None
        self._index = 0

    @property
    def live(self) -> bool:
        return is_live(self.url)

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Yield sampled frames until the file ends or `stop` is set."""
        stop = stop or threading.Event()
        if not self.live:
            yield from self._read_once(stop)
            return
        backoff = Backoff()
        while not stop.is_set():
            started = time.monotonic()
            try:
                yield from self._read_once(stop)
                reason = "stream ended"
            except StreamError as exc:
                reason = str(exc)
            if stop.is_set():
                break
            if time.monotonic() - started > 60:
                backoff.reset()
            wait = backoff.delay()
            self.stats.state, self.stats.last_error = "backing_off", reason
            self.stats.reconnects += 1
            log.warning("%s: %s; reconnecting in %.1f s", self.source_id, reason, wait)
            stop.wait(wait)

    def _open(self) -> av.container.InputContainer:
        options = {}
        if self.url.lower().startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": self.rtsp_transport, "timeout": str(int(self.timeout_s * 1e6))}
        elif not self.live and not Path(self.url).is_file():
            raise StreamError(f"{self.source_id}: file not found: {self.url}")
        try:
            return av.open(self.url, options=options, timeout=self.timeout_s)
        except (av.FFmpegError, OSError) as exc:
            raise StreamError(f"{self.source_id}: cannot open {mask_url(self.url)}: {_reason(exc)}") from exc

    def _read_once(self, stop: threading.Event) -> Iterator[Frame]:
        self.stats.state = "connecting"
        container = self._open()
        try:
            if not container.streams.video:
                raise StreamError(f"{self.source_id}: {mask_url(self.url)} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if stream.duration and stream.time_base:
                self.duration_s = float(stream.duration * stream.time_base)
            elif container.duration:
                self.duration_s = container.duration / 1e6
            start_utc = self._start_time(container)
            self.stats.state = "live"
            yield from self._decode(container, stream, start_utc, stop)
        finally:
            container.close()

    def _decode(self, container, stream, start_utc: datetime, stop: threading.Event) -> Iterator[Frame]:
        period = 1.0 / self.sample_fps
        next_sample = 0.0
        first_pts: float | None = None
        wall_start = time.monotonic()
        for packet in container.demux(stream):
            if stop.is_set():
                return
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                self.stats.bad_packets += 1
                log.debug("%s: skipped a bad packet: %s", self.source_id, exc)
                continue
            for vframe in decoded:
                self.stats.decoded += 1
                media_s = float(vframe.time) if vframe.time is not None else self.stats.decoded / 25.0
                first_pts = media_s if first_pts is None else first_pts
                media_s -= first_pts
                if self.realtime and not self.live:
                    ahead = media_s - (time.monotonic() - wall_start)
                    if ahead > 0 and stop.wait(ahead):
                        return
                if media_s + 1e-6 < next_sample:
                    continue
                next_sample = media_s + period
                yield self._frame(vframe, media_s, start_utc)
        if self.stats.bad_packets:
            log.warning("%s: skipped %d corrupt packets", self.source_id, self.stats.bad_packets)

    def _frame(self, vframe: av.VideoFrame, media_s: float, start_utc: datetime) -> Frame:
        self.stats.sampled += 1
        self._index += 1
        utc = datetime.now(UTC) if self.live else start_utc + timedelta(seconds=media_s)
        fix = self.track.at(media_s, utc) if self.track else None
        return Frame(
            source_id=self.source_id,
            index=self._index,
            utc=utc,
            mono_s=time.monotonic(),
            media_s=media_s,
            image=vframe.to_ndarray(format="bgr24"),
            fix=fix,
        )

    def _start_time(self, container) -> datetime:
        """When recording began: container metadata, else the file's mtime minus its duration."""
        if self.live:
            return datetime.now(UTC)
        created = container.metadata.get("creation_time")
        if created:
            try:
                parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            except ValueError:
                log.warning("%s: unreadable creation_time %r; using the file time", self.source_id, created)
        mtime = datetime.fromtimestamp(Path(self.url).stat().st_mtime, UTC)
        return mtime - timedelta(seconds=self.duration_s or 0)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return mask_url(text)

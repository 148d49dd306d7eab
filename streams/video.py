"""Video sources decoded with PyAV: recorded files and RTSP cameras.

PyAV rather than cv2.VideoCapture because it gives us the encoded packets (clips without
re-encoding, later), per-packet error handling (one corrupt packet is skipped, not the file) and
frames that are converted to BGR only when the agent will look at them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av

from streams import Frame, PositionFix, StreamError, mask_url
from streams.health import Backoff, SourceStats, State
from streams.live import Decoded, LiveOptions, LiveReader
from streams.packets import PacketRing, RingFeeder
from streams.sampling import Sampler, TimeSampler
from streams.track import Positions

log = logging.getLogger(__name__)

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "srt://")


def is_live(url: str) -> bool:
    return url.lower().startswith(LIVE_SCHEMES)


class VideoSource:
    """Frames sampled at `sample_fps` from a file or a live stream.

    Files are read as fast as possible (or at real time with `realtime=True`) in the caller's
    thread. Live streams are decoded by a thread of their own (see `streams.live`) that reconnects
    with backoff until `stop` is set; the caller gets the newest sampled frame, never a backlog.
    `live_options` tunes transport, timeouts, watchdog and backoff. `stats` tells the state and
    counters.
    Each yielded Frame carries the position from `track` at its time (see `Track.at`) when one is given.
    With `packets` (a PacketRing) every encoded packet read is kept there too, for clips.
    """

    def __init__(
        self,
        source_id: str,
        url: str,
        sample_fps: float,
        track: Positions | None = None,
        realtime: bool = False,
        live_options: LiveOptions | None = None,
        sampler: Sampler | None = None,
        keyframes_only: bool = False,
        packets: PacketRing | None = None,
        start_utc: datetime | None = None,
    ) -> None:
        self.source_id = source_id
        self.url = url
        self.sample_fps = sample_fps
        self.track = track
        self.realtime = realtime
        self.live_options = live_options or LiveOptions()
        self.sampler = sampler or TimeSampler(sample_fps)
        self.keyframes_only = keyframes_only  # files: decode keyframes only (sparse batch sampling)
        self.start_utc = start_utc  # files: when recording began, when the container does not say (or is wrong)
        self.packets = packets  # encoded packets for clips; None keeps none
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
            self.stats.set_state(State.ENDED)
            return
        reader = LiveReader(
            self.source_id, self.url, mask_url(self.url), self.sampler, self.live_options, self.stats, self.packets
        )
        reader.start()
        try:
            while not stop.is_set():
                item = reader.take(0.25)
                if item is not None:
                    yield self._live_frame(item)
        finally:
            reader.stop()

    def _live_frame(self, item: Decoded) -> Frame:
        self._index += 1
        return Frame(
            source_id=self.source_id,
            index=self._index,
            utc=item.utc,
            mono_s=item.mono_s,
            media_s=item.media_s,
            image=item.vframe.to_ndarray(format="bgr24"),
            fix=self.track.at(item.media_s, item.utc) if self.track else None,
        )

    def _open(self) -> av.container.InputContainer:
        if not Path(self.url).is_file():
            raise StreamError(f"{self.source_id}: file not found: {self.url}")
        try:
            return av.open(self.url)
        except (av.FFmpegError, OSError) as exc:
            raise StreamError(f"{self.source_id}: cannot open {mask_url(self.url)}: {_reason(exc)}") from exc

    def _read_once(self, stop: threading.Event) -> Iterator[Frame]:
        self.stats.set_state(State.CONNECTING, f"opening {self.url}")
        container = self._open()
        try:
            if not container.streams.video:
                raise StreamError(f"{self.source_id}: {mask_url(self.url)} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self.keyframes_only:
                stream.codec_context.skip_frame = "NONKEY"
            if stream.duration and stream.time_base:
                self.duration_s = float(stream.duration * stream.time_base)
            elif container.duration:
                self.duration_s = container.duration / 1e6
            start_utc = self._start_time(container)
            self.stats.set_state(State.LIVE)
            yield from self._decode(container, stream, start_utc, stop)
        finally:
            container.close()

    def _decode(self, container, stream, start_utc: datetime, stop: threading.Event) -> Iterator[Frame]:
        first_pts: float | None = None
        wall_start = time.monotonic()
        feeder = RingFeeder(self.packets, stream) if self.packets is not None else None
        for packet in container.demux(stream):
            if stop.is_set():
                return
            if feeder is not None:
                feeder.add(packet)
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                self.stats.bad_packets += 1
                log.debug("%s: skipped a bad packet: %s", self.source_id, exc)
                continue
            for vframe in decoded:
                self.stats.decoded += 1
                media_s = float(vframe.time) if vframe.time is not None else self.stats.decoded / 25.0
                if first_pts is None:
                    first_pts = media_s
                    if feeder is not None:
                        feeder.anchor(-first_pts)
                media_s -= first_pts
                if self.realtime:
                    ahead = media_s - (time.monotonic() - wall_start)
                    if ahead > 0 and stop.wait(ahead):
                        return
                utc = start_utc + timedelta(seconds=media_s)
                fix = self.track.at(media_s, utc) if self.track else None
                if self.sampler.wants(vframe, media_s, fix):
                    yield self._frame(vframe, media_s, utc, fix)
        if self.stats.bad_packets:
            log.warning("%s: skipped %d corrupt packets", self.source_id, self.stats.bad_packets)

    def _frame(self, vframe: av.VideoFrame, media_s: float, utc: datetime, fix: PositionFix | None) -> Frame:
        self.stats.sampled += 1
        self._index += 1
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
        """When recording began: as given, else container metadata, else the file's mtime minus its duration."""
        if self.start_utc is not None:
            return self.start_utc
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


__all__ = ["Backoff", "LiveOptions", "SourceStats", "VideoSource", "is_live", "mask_url"]

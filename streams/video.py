"""Video sources decoded with PyAV: recorded files and RTSP cameras.

PyAV rather than cv2.VideoCapture because it gives us the encoded packets (clips without
re-encoding, later), per-packet error handling (one corrupt packet is skipped, not the file) and
frames that are converted to BGR only when the agent will look at them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av

from streams import Frame, StreamError, error_text, mask_url
from streams.health import Backoff, SourceStats, State
from streams.live import Decoded, LatestSlot, LiveOptions, LiveReader, tune_decoder
from streams.packets import PacketRing, RingFeeder
from streams.record import RecordReader
from streams.sampling import Sampler, TimeSampler
from streams.track import Positions

log = logging.getLogger(__name__)

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "srt://")


def is_live(url: str) -> bool:
    return url.lower().startswith(LIVE_SCHEMES)


class VideoSource:
    """Frames sampled at `sample_fps` from a file or a live stream.

    Files are read as fast as possible in the caller's thread. With `realtime=True` a file plays as a
    camera would: a thread of its own decodes it, releases each frame at its timestamp and hands over
    the newest sampled frame only (a slow consumer gets fewer frames, counted in `stats.dropped`, never
    older ones); `started_mono_s` is the monotonic time at which media time 0 played, so that
    `time.monotonic() - started_mono_s - frame.media_s` is how far behind the consumer is.
    Live streams are decoded by a thread of their own (see `streams.live`) that reconnects
    with backoff until `stop` is set; the caller gets the newest sampled frame, never a backlog.
    `live_options` tunes transport, timeouts, watchdog and backoff. `stats` tells the state and
    counters.
    Each yielded Frame carries the position from `track` at its time (see `Track.at`) when one is given.
    A file's frames are timed from `start_utc`, else its creation_time, else `start_hint` (when its
    telemetry says recording began), else its mtime; `time_source` says which. A file that ends before
    its container says it should (a cut upload) leaves the reason in `incomplete`.
    With `packets` (a PacketRing) every encoded packet read is kept there too, for clips. With
    `record_url` (a camera's main stream beside `url`, its substream) the ring is filled from that
    input instead, by a reader that decodes nothing and reconnects on its own (`streams.record`);
    `record_stats` say its state, `stats` the detect input's. `one_decoder_thread` decodes a file on
    one thread, as cameras are (several files decoded at once already use every core).
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
        start_hint: tuple[datetime, str] | None = None,
        record_url: str | None = None,
        one_decoder_thread: bool = False,
    ) -> None:
        self.source_id = source_id
        self.url = url
        self.sample_fps = sample_fps
        self.track = track
        self.realtime = realtime
        self.live_options = live_options or LiveOptions()
        self.sampler = sampler or TimeSampler(sample_fps)
        self.keyframes_only = keyframes_only  # files: decode keyframes only (cameras: live_options)
        self.one_decoder_thread = one_decoder_thread  # files: no FFmpeg frame threads (other files fill the cores)
        self.start_utc = start_utc  # files: when recording began, when the container does not say (or is wrong)
        self.start_hint = start_hint  # files: (start, what said so) from telemetry, below creation_time
        self.packets = packets  # encoded packets for clips; None keeps none
        self.stats = SourceStats()
        self.record_url = record_url
        self.record_stats = SourceStats() if record_url else None
        self.duration_s: float | None = None
        self.frames_expected: int | None = None  # files: the container's frame count, where it has one
        self.last_media_s: float | None = None  # files: media time of the last frame decoded
        self._last_packet_s: float | None = None  # files: media time of the last packet read, decoded or not
        self.incomplete = ""  # files: why the file ended early (truncated), "" when it played to its end
        self.time_source = ""  # files: "given", "container", the telemetry's name or "file mtime"
        self.started_mono_s: float | None = None
        self._index = 0

    @property
    def live(self) -> bool:
        return is_live(self.url)

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Yield sampled frames until the file ends or `stop` is set."""
        stop = stop or threading.Event()
        record = self._record_reader()
        try:
            if not self.live:
                if self.realtime:
                    yield from self._paced(stop)
                else:
                    yield from self._read_ahead(stop)
                self.stats.set_state(State.ENDED)
                return
            own_packets = None if record else self.packets
            reader = LiveReader(
                self.source_id, self.url, mask_url(self.url), self.sampler, self.live_options, self.stats, own_packets
            )
            reader.start()
            try:
                while not stop.is_set():
                    item = reader.take(0.25)
                    if item is not None:
                        yield self._frame(item)
            finally:
                reader.stop()
        finally:
            if record is not None:
                record.stop()

    def _record_reader(self) -> RecordReader | None:
        """The record input's reader, started; None for a source with one input (or without a ring)."""
        if not self.record_url or self.packets is None or self.record_stats is None:
            return None
        reader = RecordReader(self.source_id, self.record_url, self.live_options, self.packets, self.record_stats)
        reader.start()
        return reader

    def _paced(self, stop: threading.Event) -> Iterator[Frame]:
        """A file at real time, as a camera: decoded and paced in a thread, newest sampled frame handed over."""
        slot = LatestSlot()
        halt, ended = threading.Event(), threading.Event()
        failed: list[StreamError] = []

        def decode() -> None:
            try:
                for item in self._read_once(halt):
                    if slot.put(item):
                        self.stats.dropped += 1
            except StreamError as exc:
                failed.append(exc)
            finally:
                ended.set()

        thread = threading.Thread(target=decode, name=f"decode:{self.source_id}", daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                item = slot.take(0.25)
                if item is None and ended.is_set():
                    item = slot.take(0)  # the last frame may have come between the wait and the check
                    if item is None:
                        break
                if item is not None:
                    yield self._frame(item)
        finally:
            halt.set()
            thread.join()
        if failed:
            raise failed[0]

    def _read_ahead(self, stop: threading.Event, depth: int = 3) -> Iterator[Frame]:
        """A file as fast as possible: decoded and converted to BGR in a thread a few frames ahead, so that
        decoding the next frame overlaps detecting on this one (PyAV and onnxruntime release the GIL)."""
        ready: queue.Queue[Frame | None] = queue.Queue(maxsize=depth)
        halt = threading.Event()
        failed: list[Exception] = []  # raised again here, in the consumer's thread

        def put(item: Frame | None) -> bool:
            while not halt.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def decode() -> None:
            try:
                for item in self._read_once(halt):
                    if not put(self._frame(item)):
                        return
            except Exception as exc:  # handed to the consumer, which raises it
                failed.append(exc)
            finally:
                put(None)

        thread = threading.Thread(target=decode, name=f"decode:{self.source_id}", daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                frame = ready.get()
                if frame is None:
                    break
                yield frame
        finally:
            halt.set()
            thread.join()
        if failed:
            raise failed[0]

    def _frame(self, item: Decoded) -> Frame:
        """The Frame handed to the agent; converted to BGR here, in the consumer's thread."""
        self._index += 1
        fix = item.fix
        if fix is None and self.live and self.track:
            fix = self.track.at(item.media_s, item.utc)
        return Frame(
            source_id=self.source_id,
            index=self._index,
            utc=item.utc,
            mono_s=item.mono_s,
            media_s=item.media_s,
            image=item.vframe.to_ndarray(format="bgr24"),
            fix=fix,
        )

    def _open(self) -> av.container.InputContainer:
        if not Path(self.url).is_file():
            raise StreamError(f"{self.source_id}: file not found: {self.url}")
        try:
            return av.open(self.url)
        except (av.FFmpegError, OSError) as exc:
            raise StreamError(f"{self.source_id}: cannot open {mask_url(self.url)}: {error_text(exc)}") from exc

    def _read_once(self, stop: threading.Event) -> Iterator[Decoded]:
        self.stats.set_state(State.CONNECTING, f"opening {self.url}")
        container = self._open()
        try:
            if not container.streams.video:
                raise StreamError(f"{self.source_id}: {mask_url(self.url)} has no video stream")
            stream = container.streams.video[0]
            one_thread = self.realtime or self.one_decoder_thread
            tune_decoder(stream, one_thread=one_thread, keyframes_only=self.keyframes_only)
            self.duration_s = _duration_s(container, stream)
            self.frames_expected = stream.frames or None
            start_utc = self._start_time(container)
            self.stats.set_state(State.LIVE)
            yield from self._decode(container, stream, start_utc, stop)
            if not stop.is_set():
                self._check_complete(float(stream.average_rate or 25))
        finally:
            container.close()

    def _decode(self, container, stream, start_utc: datetime, stop: threading.Event) -> Iterator[Decoded]:
        first_pts: float | None = None
        wall_start = self.started_mono_s = time.monotonic()
        feeder = RingFeeder(self.packets, stream) if self.packets is not None and not self.record_url else None
        for packet in container.demux(stream):
            if stop.is_set():
                return
            if feeder is not None:
                feeder.add(packet)
            if packet.pts is not None and first_pts is not None:
                self._last_packet_s = float(packet.pts * stream.time_base) - first_pts
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
                self.last_media_s = media_s
                if self.realtime:
                    ahead = media_s - (time.monotonic() - wall_start)
                    if ahead > 0 and stop.wait(ahead):
                        return
                utc = start_utc + timedelta(seconds=media_s)
                fix = self.track.at(media_s, utc) if self.track else None
                if self.sampler.wants(vframe, media_s, fix):
                    self.stats.sampled += 1
                    yield Decoded(vframe, media_s, time.monotonic(), utc, fix)
        if self.stats.bad_packets:
            log.warning("%s: skipped %d corrupt packets", self.source_id, self.stats.bad_packets)

    def _check_complete(self, fps: float) -> None:
        """Compare what was decoded with what the container promises: a cut file decodes without an
        error up to its cut, so only its frame count and duration tell that the end is missing."""
        expected = None if self.keyframes_only else self.frames_expected
        last = self.last_media_s
        if self.keyframes_only and last is not None and self._last_packet_s is not None:
            last = max(last, self._last_packet_s)  # the frames after the last keyframe are there, not decoded
        reached = last + 1 / fps if last is not None else 0.0
        self.incomplete = _shortfall("decoded", self.stats.decoded, expected, reached, self.duration_s, fps)
        if self.incomplete:
            log.warning("%s: %s: %s", self.source_id, Path(self.url).name, self.incomplete)

    def _start_time(self, container) -> datetime:
        """When recording began: as given, else container metadata, else the telemetry's clock, else the
        file's mtime minus its duration (the least trustworthy: a copy resets it)."""
        if self.start_utc is not None:
            self.time_source = "given"
            return self.start_utc
        created = container.metadata.get("creation_time")
        if created:
            try:
                parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
                self.time_source = "container"
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            except ValueError:
                log.warning("%s: unreadable creation_time %r", self.source_id, created)
        if self.start_hint is not None:
            start, self.time_source = self.start_hint
            log.info(
                "%s: no creation_time in the file; times come from its %s telemetry (start %s)",
                self.source_id,
                self.time_source,
                start.isoformat(),
            )
            return start
        self.time_source = "file mtime"
        log.warning("%s: no creation_time and no telemetry clock; times come from the file's mtime", self.source_id)
        mtime = datetime.fromtimestamp(Path(self.url).stat().st_mtime, UTC)
        return mtime - timedelta(seconds=self.duration_s or 0)


def truncation(path: Path) -> str:
    """Why a recorded file is cut short ("" when it is whole or cannot be read), from its packets alone:
    cheap enough to check an upload before a detector spends minutes on half of it."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return ""
            stream = container.streams.video[0]
            duration = _duration_s(container, stream)
            count, first, last = 0, None, None
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                at = float(packet.pts * stream.time_base)
                count += 1
                first, last = min(at, first if first is not None else at), max(at, last if last is not None else at)
            fps = float(stream.average_rate or 25)
    except (av.FFmpegError, OSError):
        return ""
    reached = last - first + 1 / fps if first is not None else 0.0
    return _shortfall("holds", count, stream.frames or None, reached, duration, fps)


def _duration_s(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else None


def _shortfall(
    verb: str, count: int, expected: int | None, reached_s: float, duration_s: float | None, fps: float
) -> str:
    """The reason a file ending at `reached_s` is truncated, or "" when it reaches its `duration_s`
    (within two frames or half a second: containers round their durations)."""
    if not duration_s or duration_s - reached_s <= max(2 / fps, 0.5):
        return ""
    counted = f"{count} of {expected}" if expected else f"{count}"
    return (
        f"truncated: {verb} {counted} frames, {reached_s:.1f} of {duration_s:.1f} s; "
        "the file ends early (an upload or copy cut short?)"
    )


__all__ = ["Backoff", "LiveOptions", "SourceStats", "VideoSource", "is_live", "mask_url", "truncation"]

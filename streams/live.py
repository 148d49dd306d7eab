"""Live sources (RTSP and other network streams): one decoder thread per source.

The thread owns the connection: it opens the stream with bounded timeouts, decodes every packet
(H.264 needs them all), keeps only the newest sampled frame for the consumer and reconnects with
capped exponential backoff when the stream fails or stalls. The consumer therefore never waits on
the network, never sees stale frames when it is slower than the camera, and memory stays bounded
(one pending frame per source), whatever the camera or the network does.

Watchdog: every blocking FFmpeg call runs under PyAV's interrupt callback (`timeout=`), with the
read timeout equal to `stall_s`, and the socket I/O timeout is the same; a stream that still sends
packets but yields no frame is caught by the frame-age check after each packet. Either way the
source is marked `stalled` and reconnected, so no read hangs for longer than `stall_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import av

from streams import PositionFix, StreamError, error_text
from streams.health import Backoff, SourceStats, State
from streams.packets import PacketRing, RingFeeder
from streams.sampling import Sampler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveOptions:
    """How a live source connects, notices a stall and retries.

    Shorter `stall_s` notices a dead camera sooner but reconnects a camera that only paused (or a
    congested 4G link) more often. A camera that was live and drops is retried every
    `backoff_initial_s` for `quick_retry_s`, whatever the cap, so that a short outage ends within
    about a second of the camera's return; only one that stays down (or never came up) backs off,
    doubling up to `backoff_cap_s`: a smaller cap finds a long-dead camera's return sooner but knocks
    on it more often. `probe_s` bounds FFmpeg's stream probing on open (longer helps streams with
    rare keyframes).
    """

    transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: float = 10.0
    stall_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_cap_s: float = 30.0
    quick_retry_s: float = 30.0
    probe_s: float = 0.5
    keyframes_only: bool = False


@dataclass(frozen=True)
class Decoded:
    """A sampled frame as the decoder thread hands it over; converted to BGR only when taken."""

    vframe: av.VideoFrame
    media_s: float
    mono_s: float
    utc: datetime
    fix: PositionFix | None = None  # files: the position the sampler saw; cameras look theirs up when taken


class LatestSlot:
    """Holds only the newest item: put() replaces one the consumer has not taken yet."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Decoded | None = None

    def put(self, item: Decoded) -> bool:
        """Store the item; True when it replaced (dropped) an untaken one."""
        with self._cond:
            dropped = self._item is not None
            self._item = item
            self._cond.notify()
        return dropped

    def take(self, timeout_s: float) -> Decoded | None:
        """The newest item, waiting up to `timeout_s` for one; None if none came."""
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
        return item

    def clear(self) -> None:
        with self._cond:
            self._item = None


def tune_decoder(stream: av.video.stream.VideoStream, one_thread: bool, keyframes_only: bool) -> None:
    """Cameras decode on one thread each: a box runs many, and FFmpeg's frame threads per stream cost
    about 10 % more CPU and several MB more per camera than the parallelism across cameras gains.
    Recorded files, processed one at a time as fast as possible, use every core. `keyframes_only`
    decodes I-frames alone (skip_frame NONKEY): many times cheaper when analysing about one frame per
    keyframe interval."""
    if one_thread:
        stream.codec_context.thread_count = 1
    else:
        stream.thread_type = "AUTO"
    if keyframes_only:
        stream.codec_context.skip_frame = "NONKEY"


class _Stalled(Exception):
    """No frame for `stall_s`: the watchdog's verdict, as opposed to an error the stream reported."""


class LiveReader:
    """The decoder thread of one live source; `start()` it, `take()` frames, `stop()` it."""

    def __init__(
        self,
        source_id: str,
        url: str,
        safe_url: str,
        sampler: Sampler | None,
        options: LiveOptions,
        stats: SourceStats,
        packets: PacketRing | None = None,
    ) -> None:
        self.source_id = source_id
        self.url = url
        self.safe_url = safe_url
        self.sampler = sampler  # None: a reader that keeps packets and decodes nothing (streams.record)
        self.options = options
        self.stats = stats
        self.packets = packets  # every encoded packet also goes here (clips); None keeps none
        self.slot = LatestSlot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"decode:{source_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_s: float = 1.0) -> bool:
        """Ask the thread to end; True if it did within `join_s` (a blocked read ends by `stall_s`)."""
        self._stop.set()
        self.slot.clear()
        if self._thread.is_alive():
            self._thread.join(join_s)
        return not self._thread.is_alive()

    def take(self, timeout_s: float) -> Decoded | None:
        return self.slot.take(timeout_s)

    def _run(self) -> None:
        opts = self.options
        backoff = Backoff(opts.backoff_initial_s, opts.backoff_cap_s)
        while not self._stop.is_set():
            live_since: float | None = None
            self.stats.set_state(State.CONNECTING, f"opening {self.safe_url} over {opts.transport}")
            try:
                container = self._open()
                try:
                    live_since = time.monotonic()
                    self._pump(container)
                    reason = "stream ended"
                finally:
                    container.close()
            except _Stalled as exc:
                reason = str(exc).removeprefix(f"{self.source_id}: ")
                self.stats.stalls += 1
                self.stats.set_state(State.STALLED, reason)
            except StreamError as exc:
                reason = str(exc).removeprefix(f"{self.source_id}: ")
            except Exception as exc:  # never let one camera's surprise kill its thread for good
                reason = f"unexpected {type(exc).__name__}: {exc}"
                log.exception("%s: decoder thread error", self.source_id)
            if self._stop.is_set():
                break
            last_frame = self.stats.last_frame_mono_s
            if live_since is not None and last_frame is not None and last_frame >= live_since:
                backoff.reset(opts.quick_retry_s)  # it was live: a new outage, most likely a short one
            delay = backoff.delay()
            self.stats.reconnects += 1
            self.stats.set_state(State.BACKING_OFF, reason, delay)
            log.warning("%s: %s; reconnecting in %.1f s", self.source_id, reason, delay)
            self._stop.wait(delay)
        self.stats.set_state(State.STOPPED)

    def _open(self) -> av.container.InputContainer:
        opts = self.options
        options = {"analyzeduration": str(int(opts.probe_s * 1e6)), "fflags": "discardcorrupt"}
        if self.url.lower().startswith(("rtsp://", "rtsps://")):
            options |= {
                "rtsp_transport": opts.transport,
                "timeout": str(int(opts.stall_s * 1e6)),  # socket I/O timeout, microseconds
                "allowed_media_types": "video",
            }
            if opts.transport == "udp":
                options |= {"buffer_size": str(4 << 20), "max_delay": "500000"}  # reorder up to 0.5 s
        else:
            options["rw_timeout"] = str(int(opts.stall_s * 1e6))
        started = time.monotonic()
        try:
            container = av.open(self.url, options=options, timeout=(opts.open_timeout_s, opts.stall_s))
        except (av.FFmpegError, OSError) as exc:
            why = error_text(exc)
            if time.monotonic() - started >= opts.open_timeout_s * 0.9:  # FFmpeg's error text hides this
                why = f"no answer within {opts.open_timeout_s:g} s ({why})"
            raise StreamError(f"{self.source_id}: cannot open {self.safe_url}: {why}") from exc
        if not container.streams.video:
            container.close()
            raise StreamError(f"{self.source_id}: {self.safe_url} has no video stream")
        return container

    def _pump(self, container: av.container.InputContainer) -> None:
        """Decode until the stream ends, fails or stalls, or stop is set; publish sampled frames."""
        stream = container.streams.video[0]
        tune_decoder(stream, one_thread=True, keyframes_only=self.options.keyframes_only)
        rate = float(stream.guessed_rate or stream.average_rate or 25)
        self.stats.connects += 1
        self.stats.set_state(State.LIVE, f"{stream.codec_context.name} {stream.width}x{stream.height}")
        log.info("%s: live (%s, %s)", self.source_id, self.safe_url, self.options.transport)
        last_frame = time.monotonic()
        first_pts: float | None = None
        conn_s = 0.0  # media time within this connection
        base_s: float | None = None
        packets = container.demux(stream)
        feeder = RingFeeder(self.packets, stream) if self.packets is not None else None
        while not self._stop.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as exc:
                idle = time.monotonic() - last_frame
                if idle >= self.options.stall_s * 0.9:
                    raise _Stalled(f"{self.source_id}: no frame for {idle:.1f} s") from exc
                raise StreamError(f"{self.source_id}: read failed: {error_text(exc)}") from exc
            now = time.monotonic()
            if now - last_frame >= self.options.stall_s:  # a read can return a stale packet after a pause
                raise _Stalled(f"{self.source_id}: no frame for {now - last_frame:.1f} s")
            if feeder is not None:
                feeder.add(packet)
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                self.stats.bad_packets += 1
                log.debug("%s: skipped a bad packet: %s", self.source_id, exc)
                frames = []
            now = time.monotonic()
            for vframe in frames:
                if vframe.time is not None:
                    first_pts = vframe.time if first_pts is None else first_pts
                    conn_s = max(vframe.time - first_pts, conn_s)
                else:
                    conn_s += 1.0 / rate
                if base_s is None:  # media time keeps counting across reconnects, by the wall clock
                    last_mono, last_media = self.stats.last_frame_mono_s, self.stats.last_media_s
                    base_s = 0.0 if last_mono is None or last_media is None else last_media + (now - last_mono)
                media_s = base_s + conn_s
                if feeder is not None and not feeder.anchored and first_pts is not None:
                    feeder.anchor(base_s - first_pts)  # packets are timed like these frames
                last_frame = now
                self.stats.decoded += 1
                self.stats.last_frame_mono_s, self.stats.last_media_s = now, media_s
                if self.sampler is None or not self.sampler.wants(vframe, media_s, None):
                    continue
                self.stats.sampled += 1
                if self.slot.put(Decoded(vframe, media_s, now, datetime.now(UTC))):
                    self.stats.dropped += 1

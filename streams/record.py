"""The record input of a two-input camera: its main stream's packets go into a PacketRing, never decoded.

Frigate-style roles: the detector decodes the cheap substream (the source's own reader), while this
reader only demuxes the full-resolution main stream for clips and for the one frame a case's snapshot
needs (`streams.nearest`). It reconnects on its own, with the same watchdog and backoff as a camera's
decoder thread, and keeps its own `SourceStats`, so that either input can be down while the other runs.

The two streams of one camera have unrelated timestamps, so the ring is timed by the monotonic clock
at which packets arrive (`packet.media_s` is a `time.monotonic()` instant): a detection's frame is
looked up by its own arrival time (`Frame.mono_s`). A recorded file (`realtime` bench pairs) is
released at its timestamps, as a camera would send it, on the same clock.
"""

from __future__ import annotations

import logging
import threading
import time

import av

from streams import StreamError, error_text, mask_url
from streams.health import SourceStats, State
from streams.live import LiveOptions, LiveReader
from streams.packets import PacketRing, RingFeeder

log = logging.getLogger(__name__)


class RecordReader(LiveReader):
    """Demuxes one record input into `ring` until stopped; `stats` say its state (packets, not frames)."""

    def __init__(self, source_id: str, url: str, options: LiveOptions, ring: PacketRing, stats: SourceStats) -> None:
        super().__init__(f"{source_id} record input", url, mask_url(url), None, options, stats, ring)
        self.live = url.lower().startswith(("rtsp://", "rtsps://", "rtmp://", "udp://", "srt://"))
        run = self._run if self.live else self._run_file
        self._thread = threading.Thread(target=run, name=f"record:{source_id}", daemon=True)  # logs: the source id

    def _pump(self, container: av.container.InputContainer) -> None:
        """Keep every packet of the connection until it ends, fails or stalls, or stop is set."""
        stream = container.streams.video[0]
        self.stats.connects += 1
        self.stats.set_state(State.LIVE, f"{stream.codec_context.name} {stream.width}x{stream.height}, not decoded")
        log.info("%s: live (%s, %s)", self.source_id, self.safe_url, self.options.transport)
        feeder = RingFeeder(self.packets, stream)  # type: ignore[arg-type]  # a record reader always has a ring
        tb = float(stream.time_base or 0)
        last_packet = time.monotonic()
        packets = container.demux(stream)
        while not self._stop.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as exc:
                raise StreamError(f"{self.source_id}: read failed: {error_text(exc)}") from exc
            now = time.monotonic()
            if now - last_packet >= self.options.stall_s:  # a read can return a stale packet after a pause
                self.stats.stalls += 1
                raise StreamError(f"{self.source_id}: no packet for {now - last_packet:.1f} s")
            last_packet = now
            self._keep(feeder, packet, now, tb)

    def _keep(self, feeder: RingFeeder, packet: av.Packet, now: float, tb: float) -> None:
        timed = packet.is_keyframe and packet.pts is not None and packet.dts is not None
        if not feeder.anchored and timed:
            feeder.anchor(now - packet.pts * tb)  # media time = arrival time of the first kept keyframe on
        feeder.add(packet)
        if packet.size:
            self.stats.decoded += 1  # packets kept: the counter a health report shows moving
            self.stats.last_frame_mono_s, self.stats.last_media_s = now, now

    def _run_file(self) -> None:
        """A recorded main stream released at its timestamps, once (bench pairs, demos)."""
        self.stats.set_state(State.CONNECTING, f"opening {self.safe_url}")
        try:
            with av.open(self.url) as container:
                if not container.streams.video:
                    raise StreamError(f"{self.source_id}: {self.safe_url} has no video stream")
                stream = container.streams.video[0]
                self.stats.connects += 1
                self.stats.set_state(State.LIVE, f"{stream.codec_context.name} {stream.width}x{stream.height}")
                feeder, tb = RingFeeder(self.packets, stream), float(stream.time_base or 0)  # type: ignore[arg-type]
                started, first_s = time.monotonic(), None
                for packet in container.demux(stream):
                    stamp = packet.dts if packet.dts is not None else packet.pts
                    if stamp is not None:
                        first_s = stamp * tb if first_s is None else first_s
                        if self._stop.wait(max(0.0, started + stamp * tb - first_s - time.monotonic())):
                            break
                    self._keep(feeder, packet, time.monotonic(), tb)
            self.stats.set_state(State.ENDED)
        except (StreamError, av.FFmpegError, OSError) as exc:
            log.error("%s: %s", self.source_id, error_text(exc))
            self.stats.set_state(State.STOPPED, error_text(exc))

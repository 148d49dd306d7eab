"""A bounded ring of one source's ENCODED video packets, so that clips can be cut without re-encoding.

The reader (the file loop or the live decoder thread) hands every demuxed packet to a `RingFeeder`,
which keeps `bytes(packet)` and the packet's timing: one copy per packet, no decoding. The ring is
capped in seconds of media and in bytes, and drops the oldest packets first, so memory stays bounded
whatever the camera's bitrate. Each packet carries the same media time as the Frames the reader
yields, so "the clip around the frame at 12.4 s" means the same instant to both.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av

log = logging.getLogger(__name__)

PACKET_OVERHEAD_BYTES = 256  # the Python objects around a payload (about 240 bytes measured), counted against the cap
_MAX_PENDING = 600  # packets held back while the first frame's time is not known yet


class StreamParams:
    """The codec parameters a muxer needs to write the stream again (codec, size, extradata).

    PyAV copies codec parameters only from a Stream, and an input stream dies with its container (a
    reconnect closes it), so they are copied once per connection into a stream of an output container
    that is never written; `template` is what `OutputContainer.add_stream_from_template` takes.
    """

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self._holder = av.open(io.BytesIO(), "w", format="mp4")
        self.template = self._holder.add_stream_from_template(stream)
        self.time_base: Fraction = stream.time_base or Fraction(1, 90000)
        self.codec = stream.codec_context.name
        self.extradata = stream.codec_context.extradata  # SPS/PPS: what a decoder needs before the first keyframe
        self.width = stream.width
        self.height = stream.height

    def __repr__(self) -> str:
        return f"StreamParams({self.codec} {self.width}x{self.height}, time base {self.time_base})"


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One encoded packet as demuxed; `pts`/`dts`/`duration` in `params.time_base` units."""

    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    keyframe: bool
    media_s: float  # the media time of the frame this packet decodes to, as the Frames carry it
    params: StreamParams  # shared by every packet of one connection; a new connection, a new object


class PacketRing:
    """The newest encoded packets of one source, at most `max_s` seconds and `max_bytes` bytes.

    Written by one reader thread and read by the pipeline thread; every method takes the lock, and
    `put` does only an append and a trim under it.
    """

    def __init__(self, max_s: float = 30.0, max_bytes: int = 32 << 20) -> None:
        self.max_s = max_s
        self.max_bytes = max_bytes
        self._packets: deque[EncodedPacket] = deque()
        self._bytes = 0
        self._newest_s = float("-inf")
        self._lock = threading.Lock()
        self.dropped = 0  # packets trimmed from the old end

    def put(self, packet: EncodedPacket) -> None:
        with self._lock:
            self._packets.append(packet)
            self._bytes += len(packet.data) + PACKET_OVERHEAD_BYTES
            self._newest_s = max(self._newest_s, packet.media_s)
            packets = self._packets
            while len(packets) > 1 and (
                self._bytes > self.max_bytes or self._newest_s - packets[0].media_s > self.max_s
            ):
                old = packets.popleft()
                self._bytes -= len(old.data) + PACKET_OVERHEAD_BYTES
                self.dropped += 1

    def snapshot(self) -> list[EncodedPacket]:
        """The packets held now, oldest first (a list of references: the payloads are not copied)."""
        with self._lock:
            return list(self._packets)

    @property
    def bytes(self) -> int:
        """Payload bytes held plus `PACKET_OVERHEAD_BYTES` per packet: what the cap is checked against."""
        with self._lock:
            return self._bytes

    @property
    def newest_s(self) -> float | None:
        """The latest media time held, None while empty."""
        with self._lock:
            return self._newest_s if self._packets else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._packets)


class RingFeeder:
    """Feeds one connection's (or one file's) packets into a ring, timed like its Frames.

    A Frame's media time is `offset + frame.time`, and the offset is known only once the first frame
    of the connection is decoded (decoders hold frames back, B-frames reorder them), so packets wait
    here until the reader calls `anchor(offset_s)`.

    FFmpeg's RTSP demuxer gives the first packets of a connection no pts and no dts (it cannot map
    RTP times yet; with B-frames the next few lack a dts too), and an MP4 cannot hold them: a clip
    that started there failed with "Invalid argument". So the ring starts at the first keyframe that
    has both; the packets before it (at most one keyframe interval per connection) are skipped.
    """

    def __init__(self, ring: PacketRing, stream: av.video.stream.VideoStream) -> None:
        self.ring = ring
        self.params = StreamParams(stream)
        self._tb = float(self.params.time_base)
        self._offset_s: float | None = None
        self._pending: list[tuple[bytes, int | None, int | None, int, bool]] = []
        self._last_s = 0.0
        self._timed = False  # a keyframe with pts and dts has come: packets from it on are kept
        self.skipped = 0  # packets before it, which no clip could hold

    @property
    def anchored(self) -> bool:
        return self._offset_s is not None

    def add(self, packet: av.Packet) -> None:
        if not packet.size:
            return  # flush packets at the end of a stream carry nothing
        if not self._timed:
            self._timed = packet.is_keyframe and packet.pts is not None and packet.dts is not None
            if not self._timed:
                self.skipped += 1
                return
        item = (bytes(packet), packet.pts, packet.dts, packet.duration or 0, packet.is_keyframe)
        if self._offset_s is None:
            if len(self._pending) < _MAX_PENDING:
                self._pending.append(item)
            return
        self._put(*item)

    def anchor(self, offset_s: float) -> None:
        """Media time = `offset_s` + pts in seconds, from now on; releases the packets held back."""
        if self._offset_s is not None:
            return
        self._offset_s = offset_s
        pending, self._pending = self._pending, []
        for item in pending:
            self._put(*item)

    def _put(self, data: bytes, pts: int | None, dts: int | None, duration: int, keyframe: bool) -> None:
        stamp = pts if pts is not None else dts
        media_s = self._last_s if stamp is None else self._offset_s + stamp * self._tb  # type: ignore[operator]
        self._last_s = media_s
        self.ring.put(EncodedPacket(data, pts, dts, duration, keyframe, media_s, self.params))

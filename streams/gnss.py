"""Live positions from a vehicle's GNSS receiver: NMEA 0183 over TCP, UDP or a serial device.

Patrol cars carry a receiver (or a 4G router with one) that streams NMEA sentences; the camera's
frames get the position at their own time from the last minutes of fixes, interpolated, and no
position at all once the receiver has been silent for longer than `max_gap_s`.
URLs: `tcp://host:port` (connect), `udp://0.0.0.0:port` (listen), `gpsd://host:2947` (gpsd's JSON
protocol, when gpsd already owns the receiver), or a device path such as `/dev/ttyUSB0` (set its
speed beforehand, e.g. `stty -F /dev/ttyUSB0 9600`).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlparse

from streams import PositionFix, StreamError
from streams.health import Backoff
from streams.nmea import parse_nmea
from streams.track import Track

log = logging.getLogger(__name__)

WINDOW_LINES = 40  # enough sentences to pair each GGA with the RMC that carries its date


class LiveTrack:
    """A thread that keeps the last `keep_s` seconds of fixes from a live NMEA stream."""

    def __init__(self, url: str, max_gap_s: float = 2.0, keep_s: float = 120.0, retry_cap_s: float = 10.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("tcp", "udp", "gpsd", "") or (parsed.scheme and not parsed.port):
            raise StreamError(
                f"gnss {url!r}: use tcp://HOST:PORT, udp://0.0.0.0:PORT, gpsd://HOST:2947 or a device path"
            )
        self.url = url
        self.max_gap_s = max_gap_s
        self.keep_s = keep_s
        self.fixes_received = 0
        self.lines_skipped = 0
        self._fixes: deque[PositionFix] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._backoff = Backoff(1.0, retry_cap_s)
        self._problem = ""
        self._thread = threading.Thread(target=self._run, name=f"gnss:{url}", daemon=True)

    def start(self) -> LiveTrack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def at(self, media_s: float, utc: datetime) -> PositionFix | None:
        """The position at `utc` from the fixes received so far (the media time plays no part)."""
        with self._lock:
            fixes = tuple(self._fixes)
        return Track(fixes, max_gap_s=self.max_gap_s).at(media_s, utc) if fixes else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                window: deque[str] = deque(maxlen=WINDOW_LINES)
                for line in self._lines():
                    if line.startswith("{"):
                        self._add([fix] if (fix := gpsd_fix(line)) else [])
                        continue
                    window.append(line)
                    self._add(parse_nmea(window)[0])
                reason = "the receiver closed the stream"
            except OSError as exc:
                reason = exc.strerror or str(exc)
            if self._stop.is_set():
                return
            if reason != self._problem:
                log.warning("gnss %s: %s; retrying with backoff", self.url, reason)
                self._problem = reason
            self._stop.wait(self._backoff.delay())

    def _add(self, fixes: list[PositionFix]) -> None:
        with self._lock:
            newest = self._fixes[-1].utc if self._fixes else None
            for fix in fixes:
                if fix.utc is not None and (newest is None or fix.utc > newest):
                    self._fixes.append(fix)
                    self.fixes_received += 1
                    newest = fix.utc
            while self._fixes and newest and (newest - self._fixes[0].utc).total_seconds() > self.keep_s:
                self._fixes.popleft()
        if fixes and self._problem:
            log.info("gnss %s: receiving positions again", self.url)
            self._problem = ""
            self._backoff.reset()

    def _lines(self) -> Iterator[str]:
        parsed = urlparse(self.url)
        if parsed.scheme in ("tcp", "gpsd"):
            with socket.create_connection((parsed.hostname, parsed.port), timeout=5) as sock:
                if parsed.scheme == "gpsd":
                    sock.sendall(b'?WATCH={"enable":true,"json":true};\n')
                sock.settimeout(1.0)
                yield from self._socket_lines(sock.recv)
        elif parsed.scheme == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((parsed.hostname or "0.0.0.0", parsed.port))
                sock.settimeout(1.0)
                yield from self._socket_lines(lambda n: sock.recvfrom(n)[0])
        else:
            with open(self.url, "rb", buffering=0) as device:
                yield from self._socket_lines(device.read)

    def _socket_lines(self, receive) -> Iterator[str]:
        """Lines from a byte stream; a silent receiver for 10 s counts as a broken one."""
        pending = b""
        last_data = time.monotonic()
        while not self._stop.is_set():
            try:
                data = receive(4096)
            except TimeoutError:
                if time.monotonic() - last_data > 10:
                    raise OSError("no data for 10 s") from None
                continue
            if not data:
                return
            last_data = time.monotonic()
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                yield raw.decode("ascii", errors="replace").strip()
            pending = pending[-4096:]  # a stream without newlines must not grow without bound


def gpsd_fix(line: str) -> PositionFix | None:
    """A position from one gpsd TPV report (mode 2 or 3), None for any other report or a bad line."""
    try:
        report = json.loads(line)
        if report.get("class") != "TPV" or report.get("mode", 0) < 2 or "lat" not in report:
            return None
        utc = datetime.fromisoformat(report["time"].replace("Z", "+00:00"))
        errors = [report[k] for k in ("epx", "epy") if isinstance(report.get(k), int | float)]
        return PositionFix(
            lat=float(report["lat"]),
            lon=float(report["lon"]),
            alt_m=report.get("altMSL", report.get("alt")),
            utc=utc,
            accuracy_m=max(errors) if errors else None,
            heading_deg=report.get("track"),
            speed_mps=report.get("speed"),
            source="gpsd",
        )
    except (ValueError, KeyError, TypeError):
        return None

"""Live positions from a GNSS receiver streaming NMEA over TCP and UDP (a real socket server here)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.gnss import LiveTrack
from streams.nmea import sentence
from tests.conftest import free_port

LAT0, LON0, SPEED_MPS = 30.27415, 120.15515, 10.0


def sentences(moment: datetime) -> list[bytes]:
    """RMC and GGA for a car driving east at 10 m/s since the start of the minute."""
    east_m = SPEED_MPS * (moment.second + moment.microsecond / 1e6)
    lon = LON0 + east_m / 96200.0  # metres per degree of longitude at 30.27 N, roughly
    hms = moment.strftime("%H%M%S.") + f"{moment.microsecond // 10000:02d}"
    lat_s, lon_s = f"{int(LAT0):02d}{(LAT0 % 1) * 60:07.4f}", f"{int(lon):03d}{(lon % 1) * 60:08.5f}"
    out = []
    for body in (
        f"GNRMC,{hms},A,{lat_s},N,{lon_s},E,19.4,90.0,{moment.strftime('%d%m%y')},,,A",
        f"GNGGA,{hms},{lat_s},N,{lon_s},E,1,12,0.8,15.0,M,7.0,M,,",
    ):
        out.append(f"{sentence(body)}\r\n".encode())
    return out


class NmeaServer:
    """A receiver that serves NMEA at 5 Hz to whoever connects, until closed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"garbage before the first sentence\r\n$GPXXX,bad*00\r\n")
                while not self.stop.is_set():
                    try:
                        for line in sentences(datetime.now(UTC)):
                            conn.sendall(line)
                    except OSError:
                        break
                    time.sleep(0.2)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)
    return condition()


def test_tcp_positions_follow_the_car_and_go_stale() -> None:
    server = NmeaServer()
    track = LiveTrack(f"tcp://127.0.0.1:{server.port}", max_gap_s=1.0, retry_cap_s=1).start()
    try:
        assert wait_for(lambda: track.fixes_received >= 5, 10)
        now = datetime.now(UTC) - timedelta(seconds=0.3)
        fix = track.at(0.0, now)
        assert fix is not None and fix.lat == pytest.approx(LAT0, abs=1e-5)
        expected_east_m = SPEED_MPS * (now.second + now.microsecond / 1e6)
        assert (fix.lon - LON0) * 96200.0 == pytest.approx(expected_east_m, abs=3.0)  # interpolated, not stepped
        assert track.at(0.0, now + timedelta(seconds=5)) is None  # no fix that recent: no position
    finally:
        track.stop()
        server.close()


def test_tcp_receiver_restart_is_survived(caplog) -> None:
    caplog.set_level(logging.INFO, logger="streams.gnss")
    server = NmeaServer()
    track = LiveTrack(f"tcp://127.0.0.1:{server.port}", retry_cap_s=1).start()
    try:
        assert wait_for(lambda: track.fixes_received >= 2, 10)
        port = server.port
        server.close()
        time.sleep(1.5)
        count = track.fixes_received
        restarted = NmeaServer.__new__(NmeaServer)
        restarted.port, restarted.stop = port, threading.Event()
        restarted.sock = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=restarted._serve, daemon=True).start()
        assert wait_for(lambda: track.fixes_received >= count + 3, 15)
        assert "retrying with backoff" in caplog.text and "receiving positions again" in caplog.text
        restarted.close()
    finally:
        track.stop()


def test_udp_positions() -> None:
    port = free_port()
    track = LiveTrack(f"udp://127.0.0.1:{port}").start()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        time.sleep(0.3)
        for _ in range(10):
            for line in sentences(datetime.now(UTC)):
                sender.sendto(line, ("127.0.0.1", port))
            time.sleep(0.1)
        assert wait_for(lambda: track.fixes_received >= 5, 5)
        assert track.at(0.0, datetime.now(UTC) - timedelta(seconds=0.2)) is not None
    finally:
        sender.close()
        track.stop()


def test_bad_url_is_a_clear_error() -> None:
    from streams import StreamError

    with pytest.raises(StreamError, match="tcp://HOST:PORT"):
        LiveTrack("http://example/gps")


def test_positions_through_a_real_gpsd(tmp_path) -> None:
    import shutil
    import subprocess

    gpsd = shutil.which("gpsd") or "/usr/sbin/gpsd"
    if not Path(gpsd).exists():
        pytest.fail("gpsd is not installed: run the README's test command (it installs it)")
    receiver = NmeaServer()
    port = free_port()
    daemon = subprocess.Popen(
        [
            gpsd,
            "-N",
            "-n",
            "-b",
            "-S",
            str(port),
            "-F",
            str(tmp_path / "gpsd.sock"),
            f"tcp://127.0.0.1:{receiver.port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    track = LiveTrack(f"gpsd://127.0.0.1:{port}", retry_cap_s=1)
    try:
        time.sleep(0.5)
        track.start()
        assert wait_for(lambda: track.fixes_received >= 3, 20)
        fix = track.at(0.0, datetime.now(UTC) - timedelta(seconds=0.5))
        assert fix is not None and fix.source == "gpsd" and fix.lat == pytest.approx(LAT0, abs=1e-5)
    finally:
        track.stop()
        daemon.kill()
        daemon.wait()
        receiver.close()

"""How long a camera takes to be live again after short outages: the field case of issue 13.

Serves tests/rtsp_server.py (gst-rtsp-server), reads it as the agent does (streams.VideoSource) and
SIGKILLs the server for `--outage` seconds every `--every` seconds, restarting it on the same port.
Prints, per outage, the seconds from the server's return to the first frame the consumer gets.

    .venv/bin/python scripts/bench_recovery.py [--cap 30] [--outages 4] [--outage 5] [--every 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from streams.live import LiveOptions
from streams.video import VideoSource

SERVER = Path(__file__).resolve().parents[1] / "tests" / "rtsp_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """gst-rtsp-server on `port`, returned once the port accepts connections."""
    process = subprocess.Popen(
        ["/usr/bin/python3", str(SERVER), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.02)
    process.kill()
    sys.exit(f"the RTSP server did not listen on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=30.0, help="reconnect_cap_s (the agent's default: 30)")
    parser.add_argument("--outages", type=int, default=4)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the server stays down")
    parser.add_argument("--every", type=float, default=20.0, help="seconds from one outage to the next")
    parser.add_argument("--transport", choices=["tcp", "udp"], default="tcp")
    args = parser.parse_args()

    port = free_port()
    server = start_server(port)
    source = VideoSource(
        "cam",
        f"rtsp://127.0.0.1:{port}/live",
        5,
        live_options=LiveOptions(transport=args.transport, backoff_cap_s=args.cap),
    )
    stop = threading.Event()
    received: list[float] = []

    def consume() -> None:
        for _ in source.frames(stop):
            received.append(time.monotonic())

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    recoveries: list[float] = []
    try:
        time.sleep(args.every - args.outage)
        for i in range(args.outages):
            server.kill()
            server.wait()
            time.sleep(args.outage)
            server = start_server(port)
            back = time.monotonic()
            time.sleep(args.every - args.outage)
            after = [t for t in received if t > back]
            recovery = after[0] - back if after else float("inf")
            recoveries.append(recovery)
            if after:
                print(f"outage {i + 1}: live {recovery:.2f} s after the server's return", flush=True)
            else:
                print(
                    f"outage {i + 1}: not live within {args.every - args.outage:g} s of the server's return", flush=True
                )
    finally:
        stop.set()
        server.kill()
        thread.join(5)
    print(
        f"cap {args.cap:g} s, {args.transport}: recovery median {statistics.median(recoveries):.2f} s, "
        f"max {max(recoveries):.2f} s over {len(recoveries)} outages of {args.outage:g} s every {args.every:g} s"
    )


if __name__ == "__main__":
    main()

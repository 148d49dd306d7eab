"""Upload benchmark: cases per second from the outbox through a local mosquitto to the reference
receiver (acknowledged end to end), and the bytes on the wire per case, per kind of message.

    python scripts/bench_upload.py [--cases 200] [--clip-kb 1000]

Needs mosquitto (scripts/test installs it). Run from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.signing import Signer
from tests.conftest import Broker, free_port
from tests.netproxy import ThrottlingProxy
from tests.upload_fixtures import make_cases, make_uploader, start_receiver, wait_until
from uploader import Outbox


def run(n: int, clip_bytes: int, root: Path) -> tuple[float, int]:
    """Seconds until every case and file is acknowledged, and bytes sent on the wire."""
    broker = Broker(free_port(), root)
    broker.start()
    proxy = ThrottlingProxy(broker.port, kbit_per_s=1e9)
    proxy.start()
    signer = Signer.load_or_create(root / "keys")
    outbox = Outbox(root / "outbox")
    make_cases(outbox, signer, n, clip_bytes=clip_bytes)
    receiver = start_receiver(broker.port, root / "platform")
    uploader = make_uploader(outbox, proxy.port, signer)
    started = time.perf_counter()
    uploader.start()
    ok = wait_until(lambda: not list((root / "outbox" / "cases").glob("*/r*")), timeout_s=600, step_s=0.01)
    seconds = time.perf_counter() - started
    uploader.stop(0)
    receiver.stop()
    proxy.stop()
    broker.stop()
    if not ok:
        sys.exit("not every case was acknowledged within 10 minutes")
    return seconds, proxy.bytes_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--clip-kb", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, clip in (("case JSON + snapshot", 0), (f"+ {args.clip_kb} kB clip", args.clip_kb * 1000)):
            folder = Path(tmp) / f"run{clip}"
            folder.mkdir()
            seconds, wire = run(args.cases, clip, folder)
            rows.append((label, args.cases / seconds, seconds, wire / args.cases))
    print(f"{'per case':<26} {'cases/s':>8} {'seconds':>8} {'wire bytes/case':>16}")
    for label, rate, seconds, per_case in rows:
        print(f"{label:<26} {rate:>8.1f} {seconds:>8.1f} {per_case:>16.0f}")
    json_and_snapshot = rows[0][3]
    print(
        f"\nclip on the wire: {rows[1][3] - json_and_snapshot:.0f} bytes for {args.clip_kb * 1000} bytes "
        f"({(rows[1][3] - json_and_snapshot) / (args.clip_kb * 1000) - 1:+.1%} overhead); snapshot in the test "
        "cases is 2 kB (a real one is 50-60 kB)"
    )


if __name__ == "__main__":
    main()

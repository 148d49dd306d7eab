"""What the box's page costs: the bytes it serves (HTML, JS, CSS, one live frame) and the agent's CPU
seconds over a minute without and then with one headless Chromium watching one camera's live view.

    PYTHONPATH=. .venv/bin/python scripts/measure_web.py [--seconds 60]

Starts a real RTSP server with the sample street footage, `edge-agent run` with the page on over TLS,
and Debian's chromium through selenium (as tests/agent/web does). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.agent.updates.helpers import Agent, write_config
from tests.agent.web.conftest import Box, log_in
from tests.browser import chromium, self_signed, session_headers
from tests.conftest import REPO, free_port
from tests.streams.conftest import RtspServer
from webauth.passwords import hash_password

STATIC = ["live.html", "zones.html", "cases.html", "page.js", "common.js", "live.js", "zones.js", "cases.js", "app.css"]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over(pid: int, seconds: float) -> dict[str, float]:
    load_before, start = os.getloadavg()[0], cpu_s(pid)
    time.sleep(seconds)
    return {"cpu_s": round(cpu_s(pid) - start, 2), "load1_before": load_before, "load1_after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="measure-web-"))
    street = RtspServer(free_port(), folder / "rtsp.log", per_client=True, file=REPO / "samples" / "street-garbage.mp4")
    street.start()
    cert, key = self_signed(folder)
    port = free_port()
    data = {
        "agent_id": "box-1",
        "state_dir": str(folder / "state"),
        "sources": [{"id": "cam-1", "kind": "fixed", "url": street.url, "sample_fps": 2, "idle_every_s": 1}],
        "detector": {"model": "builtin:garbage"},
        "web": {
            "enabled": True,
            "port": port,
            "user": "installer",
            "password_hash": hash_password("kerb-side-2026"),
            "tls": {"cert_file": str(cert), "key_file": str(key)},
        },
    }
    agent = Agent(write_config(folder / "agent.yaml", data), folder / "state").start()
    result: dict[str, object] = {"cpu": os.popen("grep -m1 'model name' /proc/cpuinfo").read().split(":")[1].strip()}
    try:
        assert agent.wait_log("cam-1: reading", 60), agent.log()[-2000:]
        time.sleep(10)  # the model loaded, the stream running
        result["without_page"] = over(agent.process.pid, args.seconds)
        box = Box(agent, f"https://127.0.0.1:{port}", folder / "agent.yaml", port)
        driver = chromium()
        try:
            log_in(driver, box)
            time.sleep(5)
            frames_before = int(driver.find_element("id", "frame-cam-1").get_attribute("data-frames") or 0)
            result["with_page"] = over(agent.process.pid, args.seconds)
            frames = int(driver.find_element("id", "frame-cam-1").get_attribute("data-frames") or 0) - frames_before
            result["frames_shown_per_s"] = round(frames / args.seconds, 2)
            headers = session_headers(driver)
            result["static_bytes"] = {n: len(box.request("GET", f"/static/{n}", headers=headers)[2]) for n in STATIC}
            jpegs = [len(box.request("GET", "/api/sources/cam-1/frame.jpg", headers=headers)[2]) for _ in range(20)]
            result["frame_jpeg_bytes_median"] = int(statistics.median(jpegs))
            result["sources_json_bytes"] = len(box.request("GET", "/api/sources", headers=headers)[2])
        finally:
            driver.quit()
    finally:
        agent.stop()
        street.kill()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

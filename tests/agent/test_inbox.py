"""The drone inbox: uploads are processed once when finished, then moved to done/ or failed/."""

from __future__ import annotations

import multiprocessing
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import yaml

from agent.batch import BatchPool
from agent.config import InboxConfig, PrivacyConfig, default_config, resources
from agent.inbox import Inbox
from tests.agent.test_cli import ENV
from tests.conftest import agent_cmd
from uploader import Outbox


def outbox_rows(state: Path) -> int:
    db = state / "outbox" / "outbox.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.1)
    return condition()


def test_uploads_are_processed_once_and_filed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = {
        "agent_id": "station-1",
        "state_dir": str(tmp_path / "state"),
        "inbox": {"folder": str(inbox), "kind": "vehicle", "settle_s": 1, "scan_every_s": 0.3},
        "detector": {"model": "builtin:garbage"},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        agent_cmd("run", "-c", str(path)), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # an upload in two halves, a second apart: it must not be taken half-written
        clip = resources.builtin("sample").read_bytes()
        upload = inbox / "flight 07.mp4"
        upload.write_bytes(clip[: len(clip) // 2])
        shutil.copy(resources.builtin("sample-telemetry"), inbox / "flight 07.nmea")
        time.sleep(0.8)
        with open(upload, "ab") as fh:
            fh.write(clip[len(clip) // 2 :])
        (inbox / "broken.mp4").write_bytes(b"\x00" * 5000)
        assert wait_for(lambda: (inbox / "done" / "flight 07.mp4").exists(), 60)
        assert wait_for(lambda: (inbox / "failed" / "broken.mp4.reason.txt").exists(), 30)
        assert (inbox / "done" / "flight 07.nmea").exists()
        assert "cannot open" in (inbox / "failed" / "broken.mp4.reason.txt").read_text()
        cases = outbox_rows(tmp_path / "state")
        assert cases >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "flight_07" in out and "broken" in out  # both in the summary table
    assert "Traceback" not in err
    # a restart finds nothing new to do
    proc = subprocess.Popen(
        agent_cmd("run", "-c", str(path)), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "flight_07" not in out and outbox_rows(tmp_path / "state") == cases


def test_uploads_ready_together_run_at_once_on_worker_processes(tmp_path: Path) -> None:
    inbox_dir = tmp_path / "inbox"
    inbox_dir.mkdir()
    for name, start in (("pass-1", 0), ("pass-2", 8)):  # two real encodes, each with cases of its own
        cut = ["-ss", str(start), "-t", "16", "-i", str(resources.builtin("sample"))]
        encode = ["-c:v", "libx264", "-preset", "veryfast", "-g", "10", "-pix_fmt", "yuv420p"]
        out = str(inbox_dir / f"{name}.mp4")
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *cut, *encode, out], check=True)
    (inbox_dir / "broken.mp4").write_bytes(b"\x00" * 5000)
    config = default_config().model_copy(
        update={"state_dir": tmp_path / "state", "sources": [], "privacy": PrivacyConfig(faces=False)}
    )
    settings = InboxConfig(folder=inbox_dir, kind="fixed", settle_s=0.5, scan_every_s=0.2, workers=2)
    outbox = Outbox(tmp_path / "state" / "outbox")
    in_process: list[str] = []
    inbox = Inbox(settings, lambda source: in_process.append(source.id), BatchPool(config, outbox, 2))
    stop = threading.Event()
    runner = threading.Thread(target=inbox.run, args=(stop,))
    runner.start()
    try:
        assert wait_for(lambda: len(inbox.summaries) == 3, 120)
    finally:
        stop.set()
        runner.join(60)
    assert not in_process  # all three went to the workers together
    by_id = {s.source_id: s for s in inbox.summaries}
    assert (inbox_dir / "done" / "pass-1.mp4").exists() and (inbox_dir / "done" / "pass-2.mp4").exists()
    assert "cannot open" in (inbox_dir / "failed" / "broken.mp4.reason.txt").read_text()
    assert by_id["pass-1"].cases >= 1 and by_id["pass-2"].cases >= 1
    assert set(by_id["pass-1"].case_ids + by_id["pass-2"].case_ids) <= {i.case_id for i in outbox.items()}
    outbox.close()
    assert not multiprocessing.active_children()  # the workers end with the inbox

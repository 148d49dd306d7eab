"""The edge-agent command as users run it: separate processes, real files, a real broker."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import yaml

from tests.conftest import REPO, Broker, Receiver, agent_cmd, free_port, make_clip

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
HELD_OUT_PILE = "000393_jpg.rf.957a04ba1a22bbbe739b3ffffaec6e81.jpg"  # a garbage pile of the by-source held-out split


def run_cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(agent_cmd(*args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_demo_run_prints_the_table(tmp_path: Path) -> None:
    done = run_cli("run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sample-patrol" in done.stdout and "case(s)" in done.stdout
    assert f"Outbox {tmp_path}/edge-agent-data/outbox" in done.stdout or "Outbox edge-agent-data/outbox" in done.stdout
    assert list((tmp_path / "edge-agent-data" / "outbox" / "cases").glob("*/r1/case.json"))
    verify = run_cli("verify", "edge-agent-data", cwd=tmp_path)
    assert verify.returncode == 0 and " 0 problem(s)" in verify.stdout


def test_help_teaches_with_examples(tmp_path: Path) -> None:
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0 and "examples:" in done.stdout and "edge-agent process" in done.stdout


def test_process_footage_without_targets(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "pattern.mp4", seconds=4)
    done = run_cli("process", str(clip), "--kind", "bodycam", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pattern" in done.stdout  # the progress bar is only on a terminal: tests/agent/test_terminal.py


def test_corrupt_and_missing_videos_are_reported_not_crashed(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(50_000))
    done = run_cli("process", str(corrupt), cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot open" in done.stderr and "Traceback" not in done.stderr
    missing = run_cli("process", str(tmp_path / "none.mp4"), cwd=tmp_path)
    assert missing.returncode == 2 and "file not found" in missing.stderr and "Traceback" not in missing.stderr


def test_truncated_video_keeps_what_it_can(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "full.ts", seconds=6)  # MPEG-TS survives truncation, as a cut upload would
    data = clip.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2] + os.urandom(4096))
    done = run_cli("process", str(cut), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("cut"))
    assert int(row.split()[1]) > 20  # frames decoded before the damage


def test_sigterm_stops_a_camera_cleanly_and_never_logs_its_password(tmp_path: Path) -> None:
    config = {
        "agent_id": "box-1",
        "state_dir": str(tmp_path / "state"),
        "sources": [
            {"id": "gate", "kind": "fixed", "url": f"rtsp://admin:${{CAM_PASSWORD}}@127.0.0.1:{free_port()}/live"}
        ],
        "detector": {"model": "builtin:garbage"},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    env = ENV | {"CAM_PASSWORD": "Tr0ub4dor-pw"}
    proc = subprocess.Popen(
        agent_cmd("run", "-c", str(path)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(4)  # connection refused, then backoff
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert "Tr0ub4dor-pw" not in out + err
    assert "rtsp://admin:***@127.0.0.1" in err
    assert "reconnecting in" in err and "SIGTERM" in err
    row = next(line for line in out.splitlines() if line.startswith("gate"))  # the summary table is still printed
    assert row.split()[1] == "0"  # no frame decoded, and the status says why instead of "ok"
    assert "unreachable (" in row, row
    assert row.rstrip().endswith("/live: Connection refused"), row
    assert proc.returncode == 1  # a camera never reached is a failed run, as an unreadable file is


def outbox_ids(state: Path) -> list[str]:
    db = state / "outbox" / "outbox.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT case_id FROM cases")]
        except sqlite3.OperationalError:  # the agent has created the file but not its tables yet
            return []


def test_case_accepted_before_sigkill_is_published_once_after_restart(
    tmp_path: Path, broker_port_unstarted: Broker
) -> None:
    broker = broker_port_unstarted
    config = {
        "agent_id": "car-7",
        "state_dir": str(tmp_path / "state"),
        "sources": [
            {"id": "patrol", "kind": "vehicle", "url": "builtin:sample", "telemetry": "builtin:sample-telemetry"}
        ],
        "detector": {"model": "builtin:garbage"},
        "uploader": {"mqtt": {"host": "127.0.0.1", "port": broker.port}, "drain_timeout_s": 30},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    # 1. no broker yet: the case is accepted into the outbox, then the agent is killed
    proc = subprocess.Popen(
        agent_cmd("run", "-c", str(path)), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not outbox_ids(tmp_path / "state") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    accepted_before_kill = outbox_ids(tmp_path / "state")
    assert accepted_before_kill, "no case was accepted before the kill"
    # 2. the broker comes up and the agent starts again on the same footage
    broker.start()
    receiver = Receiver(broker.port)
    import paho.mqtt.client as mqtt

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: receiver.messages.append((msg.topic, msg.payload))
    client.connect("127.0.0.1", broker.port)
    client.subscribe("edge-agent/car-7/#", qos=1)
    client.loop_start()
    time.sleep(0.3)
    done = run_cli("run", "-c", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    all_ids = outbox_ids(tmp_path / "state")  # a row per revision: 1 (snapshot) and 2 (with the clip)
    cases = receiver.wait_for_cases(len(set(all_ids)), timeout_s=10)
    client.loop_stop()
    received = [(c["id"], c["revision"]) for c in cases]
    assert set(accepted_before_kill) <= {cid for cid, _ in received}
    assert {cid for cid, _ in received} == set(all_ids)  # every accepted case ...
    assert len(received) == len(set(received))  # ... each revision exactly once
    assert all(json.loads(p)["agent_id"] == "car-7" for p in receiver.payload("/cases"))


def test_bench_runs_the_agent_side(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "cam.mp4", seconds=4, size="640x360", rate=25)
    done = run_cli("bench", "--clip", str(clip), "--weights", str(tmp_path / "none.pt"), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "did not run" in done.stdout  # no ultralytics or no such weights: said, not crashed
    row = next(line for line in done.stdout.splitlines() if line.startswith("edge-agent (fixed"))
    assert float(row.split(")")[1].split()[0]) > 0  # x real time
    assert "ms per analysed frame" in done.stdout and "detect: inference" in done.stdout


def test_verify_with_another_agents_key_fails_and_print_key_exports_ours(tmp_path: Path) -> None:
    assert run_cli("run", cwd=tmp_path).returncode == 0
    ours = run_cli("verify", "--print-key", "edge-agent-data", cwd=tmp_path)
    assert ours.returncode == 0 and ours.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    other = tmp_path / "other"
    other.mkdir()
    assert run_cli("run", cwd=other).returncode == 0  # another box, another key
    swapped = run_cli(
        "verify", "edge-agent-data", "--key", "other/edge-agent-data/keys/agent_ed25519.pub.pem", cwd=tmp_path
    )
    assert swapped.returncode == 1
    assert "case.json: signed with key" in swapped.stdout and "not with the given public key" in swapped.stdout


def test_process_start_time_must_carry_a_zone(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2)
    done = run_cli("process", str(clip), "--start-time", "2026-11-20T10:30:00", cwd=tmp_path)
    assert done.returncode == 2 and "give the time zone too" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("process", str(clip), "--start-time", "2026-11-20T10:30:00+08:00", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_footage_whose_codec_mp4_cannot_hold_still_makes_cases(tmp_path: Path) -> None:
    """MS-MPEG4 in AVI (as vtest.avi is) cannot be remuxed into an MP4 clip: the case is made without one."""
    from tests.conftest import need_shared

    photo = need_shared("datasets/garbage-street-cn/train/images") / HELD_OUT_PILE
    video = tmp_path / "pile.avi"
    encode = ["-t", "20", "-r", "5", "-vf", "scale=640:480", "-c:v", "msmpeg4", "-q:v", "3", str(video)]
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-i", str(photo), *encode], check=True)
    done = run_cli("process", str(video), cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "1 case(s)" in done.stdout, done.stdout
    assert "no clip ('mp4' format does not support 'msmpeg4' codec)" in done.stderr


def test_every_file_the_help_names_exists(tmp_path: Path) -> None:
    """The examples in --help are what users copy first: the configuration files they name must exist."""
    done = run_cli("--help", cwd=tmp_path)
    named = set(re.findall(r"configs/[\w./-]+\.yaml", done.stdout))
    assert named and all((REPO / path).is_file() for path in named), named


def test_process_takes_a_config_that_has_no_sources(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "footage.mp4", seconds=2)
    config = tmp_path / "detector-only.yaml"
    config.write_text("agent_id: office-pc-01\ndetector:\n  model: builtin:garbage\n  min_score: 0.4\n")
    done = run_cli("process", str(clip), "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "footage" in done.stdout
    ran = run_cli("run", "-c", str(config), cwd=tmp_path)  # a camera agent still needs something to watch
    assert ran.returncode == 2 and "give at least one entry under sources" in ran.stderr

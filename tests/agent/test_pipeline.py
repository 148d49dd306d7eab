"""The whole path in one process: sample clip -> model -> rule -> signed case in the outbox -> MQTT."""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from agent.config import AgentConfig, PrivacyConfig, default_config
from agent.evidence.verify import verify_path
from agent.runner import run_agent
from tests.conftest import Broker


def demo_config(tmp_path: Path, **uploader) -> AgentConfig:
    """The demo with nothing masked, so that its clips go out as cut (masking: tests/agent/evidence/test_privacy.py)."""
    config = default_config()
    return config.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "uploader": config.uploader.model_copy(update=uploader),
            "privacy": PrivacyConfig(faces=False),
        }
    )


def outbox_records(state: Path) -> list[dict]:
    return [json.loads(p.read_bytes()) for p in sorted((state / "outbox" / "cases").glob("*/r*/case.json"))]


def test_demo_clip_makes_signed_geotagged_cases(tmp_path: Path, case_validator) -> None:
    result = run_agent(demo_config(tmp_path))
    summary = result.summaries[0]
    assert not summary.error
    assert summary.frames_decoded == 240  # 24 s at 10 fps
    # a vehicle samples every 5 m, at most 2 a second: 240 m travelled gives up to 48 frames; with 1 Hz
    # GPS fixes the position moves in 10 m steps, which gives one or two frames a second
    assert 24 <= summary.frames_analysed <= 48
    records = outbox_records(tmp_path / "state")
    # each case is stored at once with its snapshot (revision 1), then again with its clip (revision 2)
    assert sorted(r["revision"] for r in records) == [1] * summary.cases + [2] * summary.cases
    assert len([r for r in records if r["revision"] == 1]) == summary.cases >= 1
    for record in records:
        case_validator.validate(record)
        assert record["source"] == {"id": "sample-patrol", "kind": "vehicle"}
        assert record["type"] in ("garbage_pile", "overflowing_bin")
        location = record["location"]
        assert location["method"] == "camera_position:nmea"
        # the synthetic track runs east from 30.27415, 120.15515 at 10 m/s for 24 s
        assert location["lat"] == pytest.approx(30.27415, abs=1e-5)
        assert 120.15515 <= location["lon"] <= 120.15515 + 0.0026
        assert location["gcj02"]["lon"] > location["lon"]  # the GCJ-02 shift in Hangzhou is to the east
        assert record["first_seen"] >= "2026-11-20T02:30:00.000Z" and record["last_seen"] <= "2026-11-20T02:30:24.000Z"
        assert record["first_seen"] <= record["last_seen"]
        # the explanation names the tracked objects behind the case: seen in frames, over seconds, how sure
        tracks = record["explanation"]["tracks"]
        assert tracks and all(t["frames"] >= 1 and 0 < t["score_mean"] <= 1 for t in tracks)
        assert max(t["frames"] for t in tracks) >= 2  # the pile was followed across frames as the car drove by
    problems, checked = verify_path(tmp_path / "state" / "outbox", None)
    assert problems == [] and checked == len(records)


def test_rerun_of_the_same_footage_adds_no_duplicate(tmp_path: Path) -> None:
    first = run_agent(demo_config(tmp_path))
    second = run_agent(demo_config(tmp_path))
    assert second.summaries[0].case_ids == first.summaries[0].case_ids  # stable ids
    assert second.outbox_counts["pending"] == len(first.summaries[0].case_ids)


def test_tampering_is_detected_and_named(tmp_path: Path) -> None:
    run_agent(demo_config(tmp_path))
    case_dir = next((tmp_path / "state" / "outbox" / "cases").glob("*/r1"))
    snapshot = case_dir / "snapshot.jpg"
    original = snapshot.read_bytes()
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01  # one bit of one byte
    snapshot.write_bytes(bytes(altered))
    problems, _ = verify_path(case_dir, None)
    assert problems == [f"{snapshot}: sha256 differs from the case (the file was altered)"]
    snapshot.write_bytes(original)
    assert verify_path(case_dir, None)[0] == []
    case_file = case_dir / "case.json"
    case_file.write_text(case_file.read_text().replace('"revision": 1', '"revision": 2'))
    problems, _ = verify_path(case_dir, None)
    assert problems == [f"{case_file}: signature does not match the case JSON (the case was altered)"]


def holds_every_file(platform, record: dict) -> bool:
    """The receiver has every evidence file the case revision lists (in whichever revision it came)."""
    held = platform.evidence_files(record["agent_id"], record["id"], record["revision"])
    return sorted(held) == sorted(e["name"] for e in record["evidence"])


def test_platform_receives_cases_and_intact_snapshots(tmp_path: Path, broker: Broker, case_validator) -> None:
    from protocol.broker import MqttConfig
    from tests.upload_fixtures import start_receiver, wait_until

    platform = start_receiver(broker.port, tmp_path / "platform")
    config = demo_config(tmp_path, mqtt=MqttConfig(host="127.0.0.1", port=broker.port, topic_prefix="city"))
    try:
        result = run_agent(config)
        expected = result.summaries[0].case_ids
        # revision 1 (snapshot, crop) goes out at once unless revision 2 (with the clip) superseded it first
        assert expected and len(expected) <= result.published <= 2 * len(expected)
        assert wait_until(lambda: len(platform.case_ids()) == result.published, timeout_s=10)
        for case_id in expected:
            with sqlite3.connect(tmp_path / "platform" / "platform.sqlite3") as db:
                (text,) = db.execute(
                    "SELECT json FROM cases WHERE case_id = ? ORDER BY revision DESC LIMIT 1", (case_id,)
                ).fetchone()
            record = json.loads(text)
            case_validator.validate(record)
            assert record["revision"] == 2
            assert [e["name"] for e in record["evidence"]] == ["snapshot.jpg", "crop.jpg", "clip.mp4"]
            # each file wherever it arrived: a snapshot revision 1 sent is not sent again with revision 2
            assert wait_until(functools.partial(holds_every_file, platform, record), timeout_s=10)
            held = platform.evidence_files("demo-box", case_id, 2)
            for item in record["evidence"]:
                assert hashlib.sha256(held[item["name"]].read_bytes()).hexdigest() == item["sha256"]
        assert platform.stored == result.published and platform.rejected == 0
    finally:
        platform.stop()

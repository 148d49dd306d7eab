"""Signed updates over MQTT to a running `edge-agent run` (real mosquitto, real RTSP server, the
bundled sample clip): applied without losing a case, refused with a reason, rolled back, and a model
update that later cases report."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import resources
from detectors import crop_check, input_shapes
from protocol.signing import Signer
from tests.agent.updates.helpers import AGENT, PREFIX, Agent, Platform, wait_for, write_config
from tests.conftest import Broker, Receiver

ACCEPTED = re.compile(r"clip: case ([0-9a-f-]{36}) \w+ \(score [0-9.]+, \d+ frames\) accepted\n")


def config(tmp_path: Path, broker: Broker, key: Path, camera_url: str | None = None) -> dict:
    sources = [{"id": "cam-a", "kind": "fixed", "url": camera_url, "sample_fps": 1, "idle_every_s": 1}]
    return {
        "agent_id": AGENT,
        "state_dir": str(tmp_path / "state"),
        "sources": [
            *(sources if camera_url else []),
            {"id": "clip", "kind": "vehicle", "url": "builtin:sample", "telemetry": "builtin:sample-telemetry"}
            | {"sample_fps": 2, "realtime": True},
        ],
        "detector": {"model": "builtin:garbage"},
        "evidence": {"clip_pre_s": 2, "clip_post_s": 2, "ring_max_s": 10},
        "privacy": {"faces": False},  # clips as revision 2 in the outbox (masking: tests/agent/evidence)
        "cases": {"rules": {"garbage_pile": {"min_detections": 3, "window_s": 10}}},
        "uploader": {"mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX, "retry_cap_s": 1}},
        "updates": {"enabled": True, "platform_key": str(key), "start_check_s": 3},
    }


def stored_cases(state: Path) -> dict[str, dict]:
    """case id -> its revision 1 record, from the outbox on disk."""
    folder = state / "outbox" / "cases"
    return {p.parent.parent.name: json.loads(p.read_text()) for p in folder.glob("*/r1/case.json")}


def test_a_signed_configuration_restarts_only_the_changed_source_and_loses_no_case(
    tmp_path: Path, broker: Broker, receiver: Receiver, rtsp_factory
) -> None:
    server = rtsp_factory(fps=10, size="320x180", per_client=True)
    server.start()
    platform = Platform(broker.port)
    data = config(tmp_path, broker, platform.write_key(tmp_path / "platform.pem"), server.url)
    agent = Agent(write_config(tmp_path / "agent.yaml", data), tmp_path / "state").start()
    try:
        platform.wait_for_box()
        assert agent.wait_log("accepted\n"), agent.log()[-3000:]  # the clip's first case, its clip still to come
        changed = copy.deepcopy(data)
        changed["sources"][1]["stall_s"] = 12  # a setting of the clip source (files ignore it: same case ids)
        changed["sources"].append(changed["sources"][0] | {"id": "cam-b"})  # and a second camera
        text = yaml.safe_dump(changed).encode()
        acks = platform.send(platform.manifest("cfg-1", "config", text), text)
        assert [a["status"] for a in acks] == ["accepted", "applied"], acks
        report = agent.report()
        assert (report["restarted"], report["kept"], report["started"]) == (["clip"], ["cam-a"], ["cam-b"]), report
        accepted_before = set(ACCEPTED.findall(agent.log()))
        assert accepted_before
        wait_for(lambda: False, 3)  # cam-a decodes on
    finally:
        out = agent.stop()
    assert len(agent.rows("cam-a")) == 1, out  # one run of cam-a: its decoder was never restarted
    assert int(agent.rows("cam-a")[0][1]) > report["sources"]["cam-a"]["decoded"] > 0, out
    assert len(agent.rows("clip")) == 2 and len(agent.rows("cam-b")) == 1, out  # clip stopped and started again
    stored = stored_cases(tmp_path / "state")
    for case_id in accepted_before:  # every case accepted before the reload is stored, with its clip
        assert case_id in stored
        assert (tmp_path / "state" / "outbox" / "cases" / case_id / "r2" / "clip.mp4").is_file(), case_id
    published = {case["id"] for case in receiver.cases()}
    assert accepted_before <= published  # and reached the broker
    assert "accepted before; not stored twice" in agent.log()  # the replayed file stored nothing twice


def without_crop_check(model: bytes) -> bytes:
    """The model without the crop check and the other input shapes its metadata names: a model update is one
    file, and a check's classifier or another shape's export is another (docs/remote-updates.md)."""
    import onnx

    proto = onnx.load_from_string(model)
    kept = [p for p in proto.metadata_props if p.key not in (crop_check.METADATA_KEY, input_shapes.METADATA_KEY)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    return proto.SerializeToString()


def test_refused_rolled_back_and_model_updates_are_answered_on_the_ack_topic(tmp_path: Path, broker: Broker) -> None:
    platform = Platform(broker.port)
    data = config(tmp_path, broker, platform.write_key(tmp_path / "platform.pem"))
    agent = Agent(write_config(tmp_path / "agent.yaml", data), tmp_path / "state").start()
    state = tmp_path / "state"
    try:
        platform.wait_for_box()
        checked = resources.builtin("garbage-fp32").read_bytes()  # names its crop check, which is not sent
        acks = platform.send(platform.manifest("model-0", "model", checked), checked)
        assert [a["status"] for a in acks] == ["accepted", "rejected"], acks
        assert "crop_check.model" in acks[-1]["reason"] and "garbage-overflow-check.onnx" in acks[-1]["reason"]
        model = without_crop_check(checked)
        acks = platform.send(platform.manifest("model-1", "model", model), model)
        version = hashlib.sha256(model).hexdigest()[:12]
        assert [a["status"] for a in acks] == ["accepted", "applied"], acks
        assert acks[-1]["model_version"] == version and acks[-1]["version"] == "model-1-v"
        stored_model = state / "models" / f"{hashlib.sha256(model).hexdigest()}.onnx"
        assert stored_model.read_bytes() == model  # named by its hash, not by anything in the message
        before_update = set(stored_cases(state))

        text = yaml.safe_dump(data).encode()
        stranger = Signer(Ed25519PrivateKey.generate())  # not the key the box trusts
        [ack] = platform.send(platform.manifest("cfg-bad-key", "config", text, signer=stranger), text)
        assert ack["status"] == "rejected" and "signed with key" in ack["reason"], ack
        altered = platform.manifest("cfg-altered", "config", text) | {"version": "changed after signing"}
        [ack] = platform.send(altered, text)
        assert ack["status"] == "rejected" and "signature does not match the manifest" in ack["reason"], ack

        (tmp_path / "broken.mp4").write_text("not a video\n")
        failing = copy.deepcopy(data)
        failing["detector"]["model"] = str(stored_model)
        failing["sources"].append({"id": "broken", "kind": "fixed", "url": str(tmp_path / "broken.mp4")})
        text = yaml.safe_dump(failing).encode()
        acks = platform.send(platform.manifest("cfg-fails", "config", text), text)
        assert [a["status"] for a in acks] == ["accepted", "rolled_back"], acks
        assert acks[-1]["reason"].startswith("broken: error:"), acks
        assert agent.report()["status"] == "rolled_back" and "broken" not in agent.report()["sources"]
        assert wait_for(lambda: set(stored_cases(state)) - before_update, 40), "no case after the model update"
    finally:
        out = agent.stop()
    later = {cid: case for cid, case in stored_cases(state).items() if cid not in before_update}
    assert later and {case["model"]["version"] for case in later.values()} == {version}, later
    assert "broken" not in out  # the rolled-back source is not a failure of this run

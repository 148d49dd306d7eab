"""Helpers for upload tests: signed cases made in bulk, the reference receiver, an uploader worker."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.cases.case import case_id
from cityplatform.config import ReceiverConfig
from cityplatform.receiver import Receiver
from protocol.broker import MqttConfig
from protocol.signing import Signer
from tests.case_records import make_case
from uploader import MqttSettings, MqttUploader, Outbox, Topics, UploadPolicy

AGENT = "car-1"
PREFIX = "city"


def make_cases(outbox: Outbox, signer: Signer, n: int, clip_bytes: int = 0, start: int = 0) -> list[str]:
    """Accept `n` signed cases with a snapshot (and a clip when clip_bytes > 0); returns their ids."""
    ids = []
    for i in range(start, start + n):
        seen = datetime(2026, 11, 20, 2, 30, tzinfo=UTC) + timedelta(seconds=i)
        files = {"snapshot.jpg": b"\xff\xd8" + hashlib.sha256(str(i).encode()).digest() * 64}
        if clip_bytes:
            files["clip.mp4"] = (hashlib.sha256(f"clip{i}".encode()).digest() * (clip_bytes // 32 + 1))[:clip_bytes]
        cid = case_id(AGENT, "front", "garbage_pile", seen)
        assert accept_revision(outbox, signer, cid, 1, seen, files)
        ids.append(cid)
    return ids


def accept_revision(
    outbox: Outbox, signer: Signer, cid: str, revision: int, seen: datetime, files: dict[str, bytes]
) -> bool:
    """Accept revision `revision` of case `cid`, signed, listing `files` as its evidence."""
    case = make_case(cid, revision, seen, agent_id=AGENT, source_id="front", source_kind="vehicle", files=files)
    record = json.dumps(signer.sign(case.to_record())).encode()
    return outbox.accept(case.id, revision, record, files)


def start_receiver(
    port: int,
    store: Path,
    client_id: str = "rx-1",
    share_group: str | None = "platform",
    enrolled: dict[str, bytes] | None = None,
    mqtt: MqttConfig | None = None,
    **options,
) -> Receiver:
    """The reference receiver. With `enrolled` (agent id -> public key PEM) it trusts those keys only;
    without it, the first key each agent publishes (trust_first_key, the lab setting)."""
    if enrolled is not None:
        (store / "agent-keys").mkdir(parents=True, exist_ok=True)
        for agent_id, pem in enrolled.items():
            (store / "agent-keys" / f"{agent_id}.pem").write_bytes(pem)
    config = ReceiverConfig(
        mqtt=mqtt or MqttConfig(host="127.0.0.1", port=port, topic_prefix=PREFIX, retry_cap_s=1),
        store_dir=store,
        client_id=client_id,
        share_group=share_group,
        trust_first_key=enrolled is None,
        **options,
    )
    receiver = Receiver(config)
    receiver.start()
    assert receiver.connection.connected.wait(10), "receiver could not connect"
    time.sleep(0.2)  # let the SUBACKs arrive
    return receiver


def make_uploader(outbox: Outbox, port: int, signer: Signer, **policy) -> MqttUploader:
    settings = MqttSettings("127.0.0.1", port, client_id=f"edge-agent-{AGENT}", retry_initial_s=0.2, retry_cap_s=1)
    return MqttUploader(outbox, settings, Topics(PREFIX, AGENT), UploadPolicy(**policy), signer.public_pem)


def wait_until(condition, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


if __name__ == "__main__":  # an uploader process for kill tests: outbox dir, broker port, keys dir
    root, port, keys = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    uploader = make_uploader(Outbox(root), port, Signer.load_or_create(keys), ack_timeout_s=5)
    uploader.start()
    while True:
        time.sleep(1)

"""Verification by the next pass, end to end: a fixed camera's real footage of a held-out pile, then the
pile removed, uploaded over a real mosquitto to the receiver on a real PostgreSQL + PostGIS, makes a
dispatched platform case verified fixed with the cleared snapshot as evidence; the pile seen again the
next day makes it still there. The SQLite receiver stores a cleared observation once and refuses an
altered one."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.pipeline import state_paths
from agent.runner import run_agent
from cityplatform.config import PostgresConfig
from cityplatform.export import export_by_street
from cityplatform.receiver import Receiver
from protocol.signing import Signer
from tests.cityplatform.receiver_helpers import Client
from tests.cityplatform.test_fleet import RULES
from tests.cleared_footage import fixed_camera, footage, pile_photos
from tests.conftest import Broker
from tests.upload_fixtures import PREFIX, start_receiver, wait_until
from uploader import MqttSettings, MqttUploader, Outbox, Topics, UploadPolicy

START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # a Friday, 10:00 in the city


def upload(config: AgentConfig, port: int) -> list[Path]:
    """Send the agent's outbox until everything is acknowledged; the JSON files that went (case and cleared)."""
    outbox_dir, keys_dir = state_paths(config)
    sent = sorted((outbox_dir / "cases").glob("*/r*/case.json"))
    kept = {path: path.read_bytes() for path in sent}
    outbox = Outbox(outbox_dir)
    settings = MqttSettings("127.0.0.1", port, client_id=f"edge-agent-{config.agent_id}", retry_initial_s=0.2)
    uploader = MqttUploader(
        outbox, settings, Topics(PREFIX, config.agent_id), UploadPolicy(), Signer.load_or_create(keys_dir).public_pem
    )
    uploader.start()
    try:
        assert wait_until(lambda: not any(os.scandir(outbox_dir / "cases")), timeout_s=60), outbox.counts()
    finally:
        uploader.stop(0)
        outbox.close()
    copies = []
    for index, (path, data) in enumerate(kept.items()):  # the outbox removed them once acknowledged
        copy = config.state_dir / "sent" / f"{index}-{path.parent.parent.name}.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(data)
        copies.append(copy)
    return copies


def platform_case(receiver: Receiver) -> dict:
    with receiver.db.direct() as tx:
        rows = tx.run(
            "SELECT id, status, verification, verified_by, verified_revision, dispatch FROM platform_cases", ()
        ).fetchall()
    assert len(rows) == 1, rows
    return dict(zip(("id", "status", "verification", "by", "revision", "dispatch"), rows[0], strict=True))


@pytest.mark.slow
def test_a_pile_removed_is_verified_fixed_on_the_platform_then_still_there(
    tmp_path: Path, broker: Broker, postgres: PostgresConfig
) -> None:
    pile, removed = pile_photos(tmp_path / "photos")
    store = tmp_path / "platform"
    receiver = start_receiver(broker.port, store, postgres=postgres, platform=RULES)
    try:
        first = fixed_camera(tmp_path / "box", footage(tmp_path / "1.mp4", [(pile, 20), (removed, 40)]), START)
        run_agent(first)
        sent = [json.loads(p.read_bytes()) for p in upload(first, broker.port)]
        (observation,) = [r for r in sent if "case_revision" in r]
        case = platform_case(receiver)
        assert case["dispatch"] == "grid"  # a dispatched case ...
        assert (case["status"], case["verification"], case["by"]) == ("verified", "fixed", observation["id"])
        with receiver.db.direct() as tx:
            assert tx.run("SELECT COUNT(*) FROM cleared", ()).fetchone()[0] == 1
            (exported,) = json.loads(export_by_street(tx.run, tmp_path / "export")[0].read_text())["cases"]
        verification = exported["verification"]
        assert verification["state"] == "fixed" and verification["by"] == observation["id"]
        (snapshot,) = verification["evidence"]
        assert (store / snapshot["path"]).read_bytes()[:2] == b"\xff\xd8"  # ... with the clear place's snapshot

        # the same observation sent again (an ack lost) is stored once
        client = Client(broker.port)
        client.watch(f"{PREFIX}/{first.agent_id}/ack")
        client.publish(f"{PREFIX}/{first.agent_id}/cleared", json.dumps(observation).encode())
        assert wait_until(lambda: client.ack_for("cleared", observation["id"]) is not None, timeout_s=10)
        assert client.ack_for("cleared", observation["id"])["status"] == "duplicate"
        client.close()

        # the next day the pile is back: the case's next revision, and the platform case is still there
        again = fixed_camera(tmp_path / "box", footage(tmp_path / "2.mp4", [(pile, 15)]), START + timedelta(days=1))
        run_agent(again)
        upload(again, broker.port)
        case = platform_case(receiver)
        assert (case["status"], case["verification"]) == ("open", "still there")
        assert case["revision"] > observation["case_revision"]
    finally:
        receiver.stop()


def test_the_sqlite_receiver_stores_a_cleared_once_and_refuses_an_altered_one(tmp_path: Path, broker: Broker) -> None:
    pile, removed = pile_photos(tmp_path / "photos")
    config = fixed_camera(tmp_path / "box", footage(tmp_path / "1.mp4", [(pile, 20), (removed, 40)]), START)
    run_agent(config)
    records = {}
    for path in (tmp_path / "box" / "outbox" / "cases").glob("*/r1/case.json"):
        record = json.loads(path.read_bytes())
        records["cleared" if "case_revision" in record else "case"] = record
    receiver = start_receiver(broker.port, tmp_path / "platform")
    client = Client(broker.port)
    agent = config.agent_id
    try:
        client.watch(f"{PREFIX}/{agent}/ack")
        client.publish(f"{PREFIX}/{agent}/key", Signer.load_or_create(tmp_path / "box" / "keys").public_pem)
        observation = records["cleared"]
        client.publish(f"{PREFIX}/{agent}/cleared", json.dumps(observation).encode())  # before its case
        client.publish(f"{PREFIX}/{agent}/cases", json.dumps(records["case"]).encode())
        assert wait_until(lambda: client.ack_for("case", records["case"]["id"]) is not None, timeout_s=10)
        assert client.ack_for("cleared", observation["id"]) is None  # not answered: the agent sends it again
        client.publish(f"{PREFIX}/{agent}/cleared", json.dumps(observation).encode())
        client.publish(f"{PREFIX}/{agent}/cleared", json.dumps(observation).encode())
        assert wait_until(lambda: len([a for a in client.acks if a["kind"] == "cleared"]) == 2, timeout_s=10)
        assert [a["status"] for a in client.acks if a["kind"] == "cleared"] == ["stored", "duplicate"]
        altered = observation | {"id": "00000000-0000-4000-8000-000000000001"}
        client.publish(f"{PREFIX}/{agent}/cleared", json.dumps(altered).encode())
        assert wait_until(lambda: client.ack_for("cleared", altered["id"]) is not None, timeout_s=10)
        ack = client.ack_for("cleared", altered["id"])
        assert ack["status"] == "rejected" and "signature does not match the cleared observation" in ack["reason"]
        with receiver.db.direct() as tx:
            assert tx.run("SELECT id, case_id FROM cleared", ()).fetchall() == [
                (observation["id"], observation["case_id"])
            ]
    finally:
        client.close()
        receiver.stop()

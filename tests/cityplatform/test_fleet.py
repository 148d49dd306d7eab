"""Two agents processing the same footage give one platform case per problem with two reports each, and
a third agent's report 200 m away is a new case: the bundled sample, a real mosquitto, the receiver on
a real PostgreSQL + PostGIS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.config import PrivacyConfig, default_config
from agent.pipeline import state_paths
from agent.runner import run_agent
from cityplatform.config import CaseCode, GridLayer, PlatformConfig, PostgresConfig, TypeRule
from cityplatform.receiver import Receiver
from protocol.signing import Signer
from tests.cityplatform.platform_records import record_at
from tests.cityplatform.receiver_helpers import Client
from tests.conftest import REPO, Broker
from tests.upload_fixtures import PREFIX, start_receiver, wait_until
from uploader import MqttSettings, MqttUploader, Outbox, Topics, UploadPolicy

RULES = PlatformConfig(
    grid=GridLayer(file=REPO / "configs" / "example-grid.geojson"),
    types={
        "garbage_pile": TypeRule(
            code=CaseCode(standard="GB/T 30428.2-2013", code="01-10", name="暴露垃圾"), due_working_hours=4
        ),
        "overflowing_bin": TypeRule(
            code=CaseCode(standard="GB/T 47678.5-2026", code="06042", name="垃圾站(箱)满溢"), due_working_hours=2
        ),
    },
)


def drive_and_upload(tmp_path: Path, agent_id: str, port: int) -> list[str]:
    """Run the bundled sample as `agent_id`, upload its outbox until every case and file is acknowledged;
    the ids of its cases."""
    config = default_config().model_copy(  # nothing masked: the clips go out with revision 2
        update={"state_dir": tmp_path / agent_id, "agent_id": agent_id, "privacy": PrivacyConfig(faces=False)}
    )
    assert run_agent(config).summaries[0].cases >= 2
    outbox_dir, keys_dir = state_paths(config)
    ids = sorted({p.parent.parent.name for p in (outbox_dir / "cases").glob("*/r*/case.json")})
    outbox = Outbox(outbox_dir)
    settings = MqttSettings("127.0.0.1", port, client_id=f"edge-agent-{agent_id}", retry_initial_s=0.2, retry_cap_s=1)
    uploader = MqttUploader(
        outbox, settings, Topics(PREFIX, agent_id), UploadPolicy(), Signer.load_or_create(keys_dir).public_pem
    )
    uploader.start()
    try:
        assert wait_until(lambda: not any(os.scandir(outbox_dir / "cases")), timeout_s=90), outbox.counts()
    finally:
        uploader.stop(0)
    return ids


def reports_per_case(receiver: Receiver) -> dict[int, list[tuple]]:
    with receiver.db.direct() as tx:
        rows = tx.run("SELECT platform_case_id, agent_id, case_id FROM reports ORDER BY agent_id", ()).fetchall()
    found: dict[int, list[tuple]] = {}
    for platform_case, agent_id, case_id in rows:
        found.setdefault(platform_case, []).append((agent_id, case_id))
    return found


@pytest.mark.slow
def test_two_agents_on_the_same_footage_make_one_platform_case_per_problem(
    tmp_path: Path, broker: Broker, postgres: PostgresConfig, signer: Signer
) -> None:
    receiver = start_receiver(broker.port, tmp_path / "platform", postgres=postgres, platform=RULES)
    try:
        ids = {agent: drive_and_upload(tmp_path, agent, broker.port) for agent in ("car-a", "car-b")}
        cases = reports_per_case(receiver)
        assert len(cases) == len(ids["car-a"]) == len(ids["car-b"])  # one platform case per problem
        for reports in cases.values():
            assert [agent for agent, _ in reports] == ["car-a", "car-b"]
        # every report keeps its evidence: the snapshot, crop and clip of each agent's case
        for agent, case_ids in ids.items():
            for cid in case_ids:
                with receiver.db.direct() as tx:
                    latest = max(rev for c, rev in tx.case_ids() if c == cid)
                files = receiver.evidence_files(agent, cid, latest)
                assert {"snapshot.jpg", "crop.jpg", "clip.mp4"} <= files.keys(), (agent, cid, files)
        with receiver.db.direct() as tx:
            dispatch = tx.run("SELECT dispatch, grid_code, street, code, due_at FROM platform_cases", ()).fetchall()
        assert all(d[0] == "grid" and d[1].startswith("EX-") and d[2] and d[3] and d[4] for d in dispatch), dispatch

        # a third agent's pile 200 m north of the sample's first one is another problem
        client = Client(broker.port)
        client.watch(f"{PREFIX}/car-c/ack")
        client.publish(f"{PREFIX}/car-c/key", signer.public_pem)
        far = record_at(signer, "car-c", north_m=200)
        client.publish(f"{PREFIX}/car-c/cases", json.dumps(far).encode())
        assert wait_until(lambda: client.ack_for("case", far["id"]) is not None, timeout_s=20)
        client.close()
        after = reports_per_case(receiver)
        assert len(after) == len(cases) + 1
        assert [r for r in after.values() if r[0][0] == "car-c"] == [[("car-c", far["id"])]]
    finally:
        receiver.stop()

"""The PostgreSQL store itself: migrations applied once, in order, recorded; a receiver whose database
restarts connects again and stores what its agents send again."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cityplatform.config import PlatformConfig, PostgresConfig
from cityplatform.migrations import migration_files
from cityplatform.store_postgres import PostgresStore
from protocol.signing import Signer
from tests.cityplatform.platform_records import record_at
from tests.cityplatform.postgres import Postgres
from tests.cityplatform.receiver_helpers import Client
from tests.conftest import Broker
from tests.upload_fixtures import PREFIX, start_receiver, wait_until


def test_migrations_run_once_in_order_and_are_recorded(postgres: PostgresConfig) -> None:
    first = PostgresStore(postgres, PlatformConfig())
    second = PostgresStore(postgres, PlatformConfig())  # another receiver starting on the same database
    with second.direct() as tx:
        recorded = tx.run("SELECT version, name FROM schema_migrations ORDER BY version", ()).fetchall()
    first.close()
    second.close()
    assert [tuple(r) for r in recorded] == [(v, p.name) for v, p in migration_files()]
    assert [v for v, _ in recorded] == sorted({v for v, _ in recorded}) and len(recorded) >= 2


def test_a_receiver_connects_again_after_its_database_restarts(
    tmp_path: Path, broker: Broker, postgres_server: Postgres, postgres: PostgresConfig, signer: Signer
) -> None:
    receiver = start_receiver(broker.port, tmp_path / "platform", postgres=postgres)
    client = Client(broker.port)
    try:
        client.watch(f"{PREFIX}/car-1/ack")
        client.publish(f"{PREFIX}/car-1/key", signer.public_pem)
        before = record_at(signer, "car-1")
        client.publish(f"{PREFIX}/car-1/cases", json.dumps(before).encode())
        assert wait_until(lambda: client.ack_for("case", before["id"]) is not None, timeout_s=20)
        postgres_server.restart()
        after = record_at(signer, "car-1", north_m=500, seconds=60)
        for _ in range(2):  # the first may meet the dead connection (dropped, not acked); the agent resends
            client.publish(f"{PREFIX}/car-1/cases", json.dumps(after).encode())
            if wait_until(lambda: client.ack_for("case", after["id"]) is not None, timeout_s=5):
                break
            time.sleep(0.5)
        assert (client.ack_for("case", after["id"]) or {}).get("status") == "stored"
        assert {cid for cid, _ in receiver.case_ids()} == {before["id"], after["id"]}
    finally:
        client.close()
        receiver.stop()

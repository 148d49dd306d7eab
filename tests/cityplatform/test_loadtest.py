"""Three receivers sharing one PostgreSQL store under load (real mosquitto, real PostgreSQL + PostGIS):
every case revision and every snapshot is stored exactly once, even when agents send some twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityplatform.config import PostgresConfig, ReceiverConfig
from cityplatform.loadtest import run_load
from cityplatform.store_postgres import PostgresStore
from protocol.broker import MqttConfig
from tests.conftest import Broker
from tests.upload_fixtures import PREFIX


@pytest.mark.slow
def test_three_receivers_store_every_revision_exactly_once(
    tmp_path: Path, broker: Broker, postgres: PostgresConfig
) -> None:
    config = ReceiverConfig(
        mqtt=MqttConfig(host="127.0.0.1", port=broker.port, topic_prefix=PREFIX, retry_cap_s=1),
        store_dir=tmp_path / "platform",
        postgres=postgres,
        client_id="rx",
    )
    result = run_load(config, receivers=3, agents=20, cases_per_minute=30, duration_s=10, resend=0.3, drain_s=60)
    assert result.published >= 90
    assert (result.lost, result.files_lost, result.duplicated) == (0, 0, 0), result
    assert result.stored == result.published
    assert all(n > 0 for n in result.stored_by.values()), result.stored_by  # the shared subscription spread it
    store = PostgresStore(postgres, config.platform)
    with store.direct() as tx:  # and each stored revision is exactly one report of one platform case
        reports = tx.run("SELECT COUNT(*), COUNT(DISTINCT case_id) FROM reports", ()).fetchone()
    store.close()
    assert reports == (result.published, result.published)

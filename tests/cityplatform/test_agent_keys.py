"""Enrolled agent keys live in the store, on a real PostgreSQL and on SQLite: an agent enrolled through
receiver A's configuration is verified by receiver B sharing the database with an empty keys_dir (a
real mosquitto), a tampered case is still refused, rotation and revocation through A take effect on B
at once; key files of receivers from before are imported once on start, and a revoked agent's old file
does not bring it back."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cityplatform.config import PostgresConfig, ReceiverConfig
from cityplatform.keys import import_key_files, revoke
from cityplatform.receiver import Receiver, open_store
from protocol.broker import MqttConfig
from protocol.signing import Signer
from tests.cityplatform.receiver_helpers import Client, signed_case
from tests.cityplatform.test_enrolment import run_cli
from tests.conftest import Broker
from tests.upload_fixtures import AGENT, PREFIX, wait_until


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> PostgresConfig | None:
    """The database receivers A and B share: SQLite in one store_dir, or a fresh PostgreSQL + PostGIS one."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres")


def receiver_config(tmp_path: Path, name: str, port: int, postgres: PostgresConfig | None) -> ReceiverConfig:
    """Receiver `name` with its own empty keys_dir; SQLite receivers share tmp_path/shared as their store."""
    store_dir = tmp_path / (name if postgres else "shared")
    store_dir.mkdir(exist_ok=True)
    (tmp_path / f"{name}-keys").mkdir(exist_ok=True)
    mqtt = MqttConfig(host="127.0.0.1", port=port, topic_prefix=PREFIX, retry_cap_s=1)
    return ReceiverConfig(
        mqtt=mqtt, store_dir=store_dir, client_id=f"rx-{name}", keys_dir=tmp_path / f"{name}-keys", postgres=postgres
    )


def write_yaml(config: ReceiverConfig, path: Path) -> Path:
    path.write_text(json.dumps(config.model_dump(mode="json", exclude_none=True)))  # JSON is YAML
    return path


def case_answer(client: Client, receiver: Receiver, payload: bytes, case_id: str) -> dict | None:
    """Publish a case to `receiver` (alone in its share group) and wait for its answer; None: none came."""
    client.publish(f"{PREFIX}/{AGENT}/cases", payload)
    wait_until(lambda: client.ack_for("case", case_id) is not None, timeout_s=5)
    return client.ack_for("case", case_id)


def test_an_agent_enrolled_through_one_receiver_is_verified_by_another_sharing_the_store(
    tmp_path: Path, broker: Broker, signer: Signer, shared: PostgresConfig | None
) -> None:
    a = write_yaml(receiver_config(tmp_path, "a", broker.port, shared), tmp_path / "a.yaml")
    enrolled = run_cli(
        "receive", "-c", str(a), "--enrol", AGENT, "--key", str(tmp_path / "keys" / "agent_ed25519.pub.pem")
    )
    assert enrolled.returncode == 0 and f"enrolled {AGENT} with key {signer.key_id}" in enrolled.stdout, enrolled.stderr

    b_config = receiver_config(tmp_path, "b", broker.port, shared)
    b = Receiver(b_config)
    b.start()
    client = Client(broker.port)
    try:
        assert b.connection.connected.wait(10)
        client.watch(f"{PREFIX}/{AGENT}/ack")
        assert not any(b_config.trusted_keys_dir.iterdir())  # B has no key file at all
        good_id, good = signed_case(tmp_path, signer, 1)
        assert case_answer(client, b, good, good_id)["status"] == "stored"
        tampered = json.loads(signed_case(tmp_path, signer, 2)[1])
        tampered["type"] = "overflowing_bin"  # signed as a garbage_pile
        ack = case_answer(client, b, json.dumps(tampered).encode(), tampered["id"])
        assert ack["status"] == "rejected" and "signature does not match" in ack["reason"]

        # a rebuilt box: its new key enrolled through A with --replace; B trusts it and not the old one, at once
        rebuilt = Signer.load_or_create(tmp_path / "rebuilt")
        new_key = tmp_path / "rebuilt" / "agent_ed25519.pub.pem"
        refused = run_cli("receive", "-c", str(a), "--enrol", AGENT, "--key", str(new_key))
        assert refused.returncode == 2 and "--replace" in refused.stderr
        replaced = run_cli("receive", "-c", str(a), "--enrol", AGENT, "--key", str(new_key), "--replace")
        assert replaced.returncode == 0 and rebuilt.key_id in replaced.stdout, replaced.stderr
        old_id, old = signed_case(tmp_path, signer, 3)
        assert case_answer(client, b, old, old_id)["status"] == "rejected"
        new_id, new = signed_case(tmp_path, rebuilt, 4)
        assert case_answer(client, b, new, new_id)["status"] == "stored"

        # revoked through A: B leaves the agent's cases unanswered, as an unenrolled agent's
        revoked = run_cli("receive", "-c", str(a), "--revoke", AGENT)
        assert revoked.returncode == 0 and f"revoked {AGENT}'s key {rebuilt.key_id}" in revoked.stdout
        late_id, late = signed_case(tmp_path, rebuilt, 5)
        assert case_answer(client, b, late, late_id) is None
        assert [c for c, _ in b.case_ids()] == [good_id, new_id]
    finally:
        client.close()
        b.stop()


def test_key_files_from_before_are_imported_once(
    tmp_path: Path, signer: Signer, shared: PostgresConfig | None, caplog: pytest.LogCaptureFixture
) -> None:
    config = receiver_config(tmp_path, "old", 1, shared)
    keys_dir = config.trusted_keys_dir
    (keys_dir / f"{AGENT}.pem").write_bytes(signer.public_pem)
    (keys_dir / "car-2.pem").write_text("not a key")
    (keys_dir / "bad name.pem").write_bytes(signer.public_pem)
    caplog.set_level(logging.INFO, logger="cityplatform.keys")
    store = open_store(config)
    try:
        assert import_key_files(store, keys_dir) == [AGENT]
        assert f"{AGENT}: key {signer.key_id} imported into the store from {keys_dir / f'{AGENT}.pem'}" in caplog.text
        assert "car-2.pem: not a PEM public key; not imported" in caplog.text
        assert "'bad name' is not an agent id; not imported" in caplog.text
        with store.direct() as tx:
            assert tx.agent_key(AGENT) == (signer.public_pem, signer.key_id, False)
            assert tx.agent_key("car-2") is None
        assert import_key_files(store, keys_dir) == []  # known now: not imported again
        revoke(store, AGENT)
        caplog.clear()
        assert import_key_files(store, keys_dir) == []  # the old file does not undo a revocation
        assert f"{AGENT}: the store has it revoked; key file" in caplog.text
        with store.direct() as tx:
            assert tx.agent_key(AGENT).revoked
    finally:
        store.close()
    with pytest.raises(ValueError, match="car-9 has no enrolled key to revoke"):
        store = open_store(config)
        try:
            revoke(store, "car-9")
        finally:
            store.close()

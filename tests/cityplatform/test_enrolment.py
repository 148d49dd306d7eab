"""Whom the reference receiver trusts, on a real mosquitto: only agent keys an operator enrolled
(`edge-agent receive --enrol`), its configuration checked from the command line, and a broker ACL that
keeps each agent to its own topics."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from cityplatform.config import ReceiverConfig
from cityplatform.receiver import Receiver
from protocol.broker import MqttConfig
from protocol.messages import make_ack
from protocol.signing import Signer
from tests.cityplatform.receiver_helpers import Client, signed_case
from tests.conftest import REPO, Broker, agent_cmd, free_port
from tests.upload_fixtures import AGENT, PREFIX, make_cases, make_uploader, start_receiver, wait_until
from uploader import Outbox


def write_receiver_yaml(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "receiver.yaml"
    path.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {port}, topic_prefix: {PREFIX}, retry_cap_s: 1}}\n"
        "store_dir: platform\nclient_id: rx-1\n"
    )
    return path


def test_a_published_key_is_not_trusted_until_the_operator_enrols_it(
    tmp_path: Path, broker: Broker, signer: Signer, caplog
) -> None:
    config_file = write_receiver_yaml(tmp_path, broker.port)
    from agent.config import load_receiver_config

    receiver = Receiver(load_receiver_config(config_file))  # the default configuration: no keys enrolled
    receiver.start()
    assert receiver.connection.connected.wait(10)
    client = Client(broker.port)
    stranger = Signer.load_or_create(tmp_path / "stranger")
    try:
        client.watch(f"{PREFIX}/{AGENT}/ack")
        client.publish(f"{PREFIX}/{AGENT}/key", stranger.public_pem)  # first to claim car-1
        forged_id, forged = signed_case(tmp_path, stranger, 7)
        client.publish(f"{PREFIX}/{AGENT}/cases", forged)
        outbox = Outbox(tmp_path / "outbox")
        (good,) = make_cases(outbox, signer, 1)
        uploader = make_uploader(outbox, broker.port, signer, ack_timeout_s=1)
        uploader.start()
        assert wait_until(lambda: "car-1 is not enrolled" in caplog.text, timeout_s=10)
        assert receiver.case_ids() == [] and client.acks == []  # neither the stranger's case nor the real one
        assert "is not enrolled, so it is not trusted" in caplog.text and "--enrol car-1" in caplog.text
        # the operator checks the key id with the box and enrols it; the backlog then arrives
        key_file = tmp_path / "keys" / "agent_ed25519.pub.pem"
        enrolled = run_cli("receive", "-c", str(config_file), "--enrol", AGENT, "--key", str(key_file))
        assert enrolled.returncode == 0 and f"enrolled {AGENT} with key {signer.key_id}" in enrolled.stdout
        with receiver.db.direct() as tx:
            assert tx.agent_key(AGENT) == (signer.public_pem, signer.key_id, False)  # in the store, no file
        assert not (tmp_path / "platform" / "agent-keys").exists()
        assert wait_until(lambda: outbox.counts().get("acked") == 1, timeout_s=20), outbox.counts()
        assert receiver.case_ids() == [(good, 1)]
        client.publish(f"{PREFIX}/{AGENT}/cases", forged)
        assert wait_until(lambda: client.ack_for("case", forged_id) is not None, timeout_s=10)
        assert client.ack_for("case", forged_id)["status"] == "rejected"
        uploader.stop(0)
    finally:
        receiver.stop()
        client.close()
    # enrolling another key over it needs --replace
    other = tmp_path / "other.pem"
    other.write_bytes(stranger.public_pem)
    replaced = run_cli("receive", "-c", str(config_file), "--enrol", AGENT, "--key", str(other))
    assert replaced.returncode == 2 and "--replace" in replaced.stderr
    bad_id = run_cli("receive", "-c", str(config_file), "--enrol", "../x", "--key", str(other))
    assert bad_id.returncode == 2 and "agent id '../x' is not valid" in bad_id.stderr
    assert not (tmp_path / "platform" / "x.pem").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(agent_cmd(*args), capture_output=True, text=True, timeout=60, cwd=REPO)


def test_receive_with_a_missing_config_says_so_and_exits_2() -> None:
    result = run_cli("receive", "-c", "/missing.yaml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "/missing.yaml" in result.stderr and "configs/receiver.yaml" in result.stderr


def test_the_shipped_receiver_yaml_passes_its_check_and_says_how_in_its_first_lines() -> None:
    path = REPO / "configs" / "receiver.yaml"
    head = "".join(path.read_text().splitlines(keepends=True)[:3])
    assert "edge-agent receive --check -c configs/receiver.yaml" in head
    result = run_cli("receive", "--check", "-c", str(path))
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    # the agent's check-config refuses it, and says which command checks a receiver's file
    wrong = run_cli("check-config", str(path))
    assert wrong.returncode == 2 and "edge-agent receive --check -c" in wrong.stderr, wrong.stderr


def test_trust_stays_explicit_by_default(tmp_path: Path) -> None:
    config = ReceiverConfig(mqtt=MqttConfig(host="h"), store_dir=tmp_path)
    assert config.trust_first_key is False
    assert config.trusted_keys_dir == tmp_path / "agent-keys"
    assert config.case_wait_s > 300  # above the agents' default ack_timeout_s: a lost case comes again first


def test_broker_acl_keeps_each_agent_to_its_own_topics(tmp_path: Path, signer: Signer) -> None:
    """configs/mosquitto-acl.conf as shipped: car-1 cannot publish as car-2 nor read car-2's acks."""
    from uploader import MqttSettings, MqttUploader, Topics, UploadPolicy

    accounts = {"edge-receiver": "rx-pw", "car-1": "car1-pw", "car-2": "car2-pw"}
    passwords = tmp_path / "passwd"
    passwords.touch(mode=0o600)
    for user, password in accounts.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True, timeout=30)
    acl = REPO / "configs" / "mosquitto-acl.conf"
    broker = Broker(
        free_port(), tmp_path, extra_conf=f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"
    )
    broker.start()
    prefix = "edge-agent"
    rx_mqtt = MqttConfig(
        host="127.0.0.1", port=broker.port, topic_prefix=prefix, username="edge-receiver", password="rx-pw"
    )
    receiver = start_receiver(broker.port, tmp_path / "platform", enrolled={AGENT: signer.public_pem}, mqtt=rx_mqtt)
    seen = Client(broker.port, "edge-receiver", "rx-pw")  # what the platform's account can read
    seen.client.on_message = lambda _c, _u, m: seen.ack_topics.append(m.topic)
    seen.watch(f"{prefix}/#")
    intruder = Client(broker.port, AGENT, "car1-pw")
    outbox = Outbox(tmp_path / "outbox")
    settings = MqttSettings("127.0.0.1", broker.port, f"edge-agent-{AGENT}", AGENT, "car1-pw", retry_cap_s=1)
    uploader = MqttUploader(outbox, settings, Topics(prefix, AGENT), UploadPolicy(), signer.public_pem)
    uploader.start()
    try:
        car2 = Client(broker.port, "car-2", "car2-pw")
        car2.watch(f"{prefix}/car-2/ack")
        intruder.watch(f"{prefix}/car-2/ack")  # mosquitto grants the subscription but delivers nothing
        seen.publish(f"{prefix}/car-2/ack", make_ack(str(uuid.uuid4()), 1, "case", "stored"))
        assert wait_until(lambda: len(car2.acks) == 1, timeout_s=5)
        car2.close()
        _forged_id, forged = signed_case(tmp_path, signer, 9)
        for topic in ("car-2/cases", "car-2/key", "car-2/evidence/x/snapshot.jpg", "car-2/status"):
            intruder.publish(f"{prefix}/{topic}", forged)
        (good,) = make_cases(outbox, signer, 1)  # car-1's own topics: its case and snapshot arrive, acknowledged
        assert wait_until(
            lambda: (tmp_path / "outbox" / "cases").exists() and not list((tmp_path / "outbox" / "cases").glob("*/r1")),
            timeout_s=20,
        ), outbox.counts()
        assert receiver.case_ids() == [(good, 1)]
        assert f"{prefix}/{AGENT}/cases" in seen.ack_topics
        intruded = [t for t in seen.ack_topics if t.startswith(f"{prefix}/car-2/") and not t.endswith("/ack")]
        assert intruded == []  # nothing car-1 published as car-2 reached the platform
        assert receiver.rejected == 0 and receiver.dropped == 0
        assert intruder.acks == []  # car-1 never read car-2's acknowledgement
    finally:
        uploader.stop(0)
        receiver.stop()
        seen.close()
        intruder.close()
        broker.stop()

"""The reference receiver against hostile input, on a real mosquitto: it stays up, answers what it can
`rejected` with a reason, writes nothing outside its store, and trusts only enrolled agent keys."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import uuid
from pathlib import Path
from typing import NamedTuple

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.config import MqttConfig
from agent.receiver import Receiver
from agent.receiver_config import ReceiverConfig
from agent.signing import Signer
from tests.conftest import REPO, Broker, agent_cmd, free_port
from tests.upload_fixtures import AGENT, PREFIX, make_cases, make_uploader, start_receiver, wait_until
from uploader import Outbox
from uploader.protocol import Chunk, make_ack


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.load_or_create(tmp_path / "keys")


class Client:
    """A plain MQTT 5 client: publishes whatever a test gives it, and keeps every ack it sees."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None) -> None:
        self.acks: list[dict] = []
        self.ack_topics: list[str] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message) -> None:
        with self.lock:
            self.ack_topics.append(message.topic)
            self.acks.append(json.loads(message.payload))

    def watch(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes, props: dict[str, str] | None = None) -> mqtt.MQTTMessageInfo:
        properties = None
        if props is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.UserProperty = list(props.items())
        info = self.client.publish(topic, payload, qos=1, properties=properties)
        info.wait_for_publish(5)
        return info

    def ack_for(self, kind: str, case_id: str) -> dict | None:
        with self.lock:
            return next((a for a in self.acks if a["kind"] == kind and a["case_id"] == case_id), None)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def chunk_props(data: bytes, case_id: str, name: str = "snapshot.jpg", **overrides: str) -> dict[str, str]:
    """The user properties of a good one-chunk file, with some of them changed."""
    chunk = Chunk(case_id, 1, name, 0, 1, hashlib.sha256(data).hexdigest(), len(data), "image/jpeg", data)
    return dict(chunk.properties().UserProperty) | overrides


def signed_case(tmp_path: Path, signer: Signer, start: int) -> tuple[str, bytes]:
    """A well-formed signed case JSON for AGENT (made as the agent makes it)."""
    outbox = Outbox(tmp_path / f"made-{start}")
    (cid,) = make_cases(outbox, signer, 1, start=start)
    outbox.close()
    return cid, (tmp_path / f"made-{start}" / "cases" / cid / "r1" / "case.json").read_bytes()


class Hostile(NamedTuple):
    what: str
    topic: str  # under the prefix
    payload: bytes
    props: dict[str, str] | None = None
    answer: tuple[str, str] | None = None  # (kind, case id) an ack must name; None: it must not be answered
    reason: str = ""  # in the rejection's reason


def hostile_messages(tmp_path: Path) -> list[Hostile]:
    data = b"\xff\xd8 not really a jpeg"
    stranger = Signer.load_or_create(tmp_path / "stranger-keys")
    forged_id, forged = signed_case(tmp_path, stranger, 50)
    other_id, other_agents = signed_case(tmp_path, stranger, 51)
    ids = [str(uuid.uuid4()) for _ in range(10)]
    big = b"x" * (1 << 20)
    chunk_topic = f"{AGENT}/evidence/{{}}/snapshot.jpg".format
    return [
        Hostile("case: null", f"{AGENT}/cases", b"null"),
        Hostile("case: []", f"{AGENT}/cases", b"[]"),
        Hostile("case: empty", f"{AGENT}/cases", b""),
        Hostile("case: binary", f"{AGENT}/cases", bytes(range(256))),
        Hostile("case: JSON string", f"{AGENT}/cases", b'"a case"'),
        Hostile("case: [ nested 100000 deep", f"{AGENT}/cases", b"[" * 100_000),
        Hostile("case: id ../../x", f"{AGENT}/cases", b'{"id": "../../x", "revision": 1}'),
        Hostile(
            "case: 2 MB", f"{AGENT}/cases", json.dumps({"id": ids[0], "revision": 1, "p": "x" * 2_000_000}).encode()
        ),
        Hostile(
            "case: wrong schema",
            f"{AGENT}/cases",
            json.dumps({"id": ids[1], "revision": 1}).encode(),
            answer=("case", ids[1]),
            reason="schema",
        ),
        Hostile(
            "case: signed by another key",
            f"{AGENT}/cases",
            forged,
            answer=("case", forged_id),
            reason="signed with key",
        ),
        Hostile(
            "case: car-1's case on car-2's topic",
            "car-2/cases",
            other_agents,
            answer=("case", other_id),
            reason="does not match the topic",
        ),
        Hostile("topic: agent id '..'", "../cases", b"null"),
        Hostile("key: not a key", f"{AGENT}/key", b"not a key"),
        Hostile("evidence-status: binary", f"{AGENT}/evidence-status", bytes(range(256))),
        Hostile("chunk: no user properties", chunk_topic(ids[2]), data),
        Hostile("chunk: garbage properties", f"{AGENT}/evidence/x/y", data, {"case_id": "x", "revision": "one"}),
        Hostile("chunk: case_id ../../x", chunk_topic("x"), data, chunk_props(data, "../../x")),
        Hostile(
            "chunk: name ../x.jpg",
            f"{AGENT}/evidence/{ids[3]}/x.jpg",
            data,
            chunk_props(data, ids[3], name="../x.jpg"),
            ("evidence", ids[3]),
            "plain file name",
        ),
        Hostile(
            "chunk: index 5 of 1",
            chunk_topic(ids[4]),
            data,
            chunk_props(data, ids[4], index="5"),
            ("evidence", ids[4]),
            "out of range",
        ),
        Hostile(
            "chunk: 1 MB for a 20-byte file",
            chunk_topic(ids[5]),
            big,
            chunk_props(data, ids[5], chunk_sha256=hashlib.sha256(big).hexdigest()),
            ("evidence", ids[5]),
            "bytes, not",
        ),
        Hostile(
            "chunk: wrong chunk_sha256",
            chunk_topic(ids[6]),
            data,
            chunk_props(data, ids[6], chunk_sha256="0" * 64),
            ("evidence", ids[6]),
            "chunk_sha256",
        ),
        Hostile(
            "chunk: topic names another case",
            chunk_topic(ids[8]),
            data,
            chunk_props(data, ids[7]),
            ("evidence", ids[7]),
            "topic does not name",
        ),
        Hostile(
            "chunk: count 0",
            chunk_topic(ids[9]),
            data,
            chunk_props(data, ids[9], count="0"),
            ("evidence", ids[9]),
            "out of range",
        ),
        Hostile(
            "chunk: a case never sent",
            chunk_topic(forged_id),
            data,
            chunk_props(data, forged_id),
            ("evidence", forged_id),
            "did not arrive",
        ),
        Hostile(
            "chunk: from car-2, not enrolled",
            f"car-2/evidence/{other_id}/snapshot.jpg",
            data,
            chunk_props(data, other_id),
        ),
    ]


def test_no_message_stops_the_receiver_and_each_gets_its_answer(tmp_path: Path, broker: Broker, signer) -> None:
    receiver = start_receiver(broker.port, tmp_path / "platform", enrolled={AGENT: signer.public_pem}, case_wait_s=1)
    client = Client(broker.port)
    client.watch(f"{PREFIX}/+/ack")
    messages = hostile_messages(tmp_path)
    outbox = Outbox(tmp_path / "outbox")
    uploader = make_uploader(outbox, broker.port, signer)
    try:
        for message in messages:
            assert client.publish(f"{PREFIX}/{message.topic}", message.payload, message.props).is_published()
        (good,) = make_cases(outbox, signer, 1)
        uploader.start()
        assert wait_until(lambda: outbox.counts().get("acked") == 1, timeout_s=20), outbox.counts()
        snapshot = tmp_path / "platform" / "cases" / AGENT / good / "r1" / "snapshot.jpg"
        assert wait_until(snapshot.exists, timeout_s=10)
        never_sent = messages[-2].answer
        assert wait_until(lambda: client.ack_for(*never_sent) is not None, timeout_s=10)  # waited, then rejected
        answered = set()
        for message in messages:
            if message.answer is None:
                continue
            ack = client.ack_for(*message.answer)
            assert ack is not None and ack["status"] == "rejected", (message.what, ack)
            assert message.reason in ack["reason"], (message.what, ack["reason"])
            answered.add(message.answer[1])
        for ack in client.acks:  # nothing else was answered (the good case's acks aside)
            assert ack["case_id"] in answered | {good}, ack
        # a chunk of a stored case that its signed case does not list
        extra = b"extra"
        client.publish(f"{PREFIX}/{AGENT}/evidence/{good}/other.jpg", extra, chunk_props(extra, good, "other.jpg"))
        assert wait_until(lambda: any(a.get("name") == "other.jpg" for a in client.acks), timeout_s=10)
        assert "not in the evidence" in next(a for a in client.acks if a.get("name") == "other.jpg")["reason"]
        assert not (snapshot.parent / "other.jpg").exists()
        assert receiver.stored == 1
    finally:
        uploader.stop(0)
        receiver.stop()
    # restarted with the same session: nothing poisonous is delivered again, and it keeps storing
    receiver = start_receiver(broker.port, tmp_path / "platform", enrolled={AGENT: signer.public_pem})
    uploader = make_uploader(outbox, broker.port, signer)
    try:
        (second,) = make_cases(outbox, signer, 1, start=1)
        uploader.start()
        assert wait_until(lambda: (second, 1) in receiver.case_ids(), timeout_s=20)
    finally:
        uploader.stop(0)
        receiver.stop()
        client.close()


def test_paths_from_outside_never_leave_the_store(tmp_path: Path, broker: Broker, signer: Signer) -> None:
    store = tmp_path / "platform"
    receiver = start_receiver(broker.port, store, enrolled={AGENT: signer.public_pem})
    client = Client(broker.port)
    data = b"\xff\xd8 escaped"
    good_id = str(uuid.uuid4())
    before = set(tmp_path.rglob("*"))
    try:
        for case_id, name in (("../../../outside", "snapshot.jpg"), (good_id, "../../../../outside.jpg")):
            topic = f"{PREFIX}/{AGENT}/evidence/{case_id}/{name}"
            client.publish(topic, data, chunk_props(data, case_id, name=name))
        client.publish(f"{PREFIX}/../evidence/{good_id}/snapshot.jpg", data, chunk_props(data, good_id))
        (good,) = make_cases(outbox := Outbox(tmp_path / "outbox"), signer, 1)
        uploader = make_uploader(outbox, broker.port, signer)
        uploader.start()
        try:
            assert wait_until(lambda: (store / "cases" / AGENT / good / "r1" / "snapshot.jpg").exists(), timeout_s=20)
        finally:
            uploader.stop(0)
    finally:
        receiver.stop()
        client.close()
    created = {p for p in set(tmp_path.rglob("*")) - before if not p.is_relative_to(tmp_path / "outbox")}
    outside = sorted(str(p) for p in created if not p.is_relative_to(store))
    assert outside == []
    assert not list(store.rglob("*outside*")) and not (store / good_id).exists()
    assert not list(tmp_path.parent.glob("outside*"))


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
    from agent.receiver_config import load_receiver_config

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
        assert (tmp_path / "platform" / "agent-keys" / f"{AGENT}.pem").read_bytes() == signer.public_pem
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

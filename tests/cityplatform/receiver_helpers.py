"""What the receiver tests share: a plain MQTT client that publishes anything and keeps the acks, a
signed case as an agent makes it, and the agent's key pair."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocol.signing import Signer
from tests.upload_fixtures import make_cases
from uploader import Outbox


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


def signed_case(tmp_path: Path, signer: Signer, start: int) -> tuple[str, bytes]:
    """A well-formed signed case JSON for AGENT (made as the agent makes it)."""
    outbox = Outbox(tmp_path / f"made-{start}")
    (cid,) = make_cases(outbox, signer, 1, start=start)
    outbox.close()
    return cid, (tmp_path / f"made-{start}" / "cases" / cid / "r1" / "case.json").read_bytes()

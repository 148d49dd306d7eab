"""Publishes outbox entries over MQTT 5 (paho-mqtt) at QoS 1 and marks them sent on PUBACK.

Topics, with `{p}` the configured prefix and `{a}` the agent id:
  {p}/{a}/cases                         case JSON (one message per case revision)
  {p}/{a}/evidence/{case_id}/{name}     raw evidence bytes; user properties case_id, revision, sha256
  {p}/{a}/status                        "online" / "offline", retained, "offline" set by the last will
Evidence is published before its case, so that a platform never holds a case whose files it lacks.
A case that was published but not marked sent before a crash is published again: consumers
deduplicate by (case id, revision).
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from uploader.outbox import Outbox, OutboxItem

log = logging.getLogger(__name__)

PUBACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to publish. `password` is a secret: it is never logged."""

    host: str
    port: int
    agent_id: str
    topic_prefix: str = "edge-agent"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    keepalive_s: int = 30

    def topic(self, *parts: str) -> str:
        return "/".join((self.topic_prefix, self.agent_id, *parts))


class MqttUploader:
    """A background thread that drains the outbox whenever the broker is reachable."""

    def __init__(self, outbox: Outbox, settings: MqttSettings, retry_cap_s: float = 30.0) -> None:
        self.outbox = outbox
        self.settings = settings
        self.retry_cap_s = retry_cap_s
        self.published = 0
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_problem = ""
        self._client = self._make_client()
        self._thread = threading.Thread(target=self._run, name="mqtt-uploader", daemon=True)

    def start(self) -> None:
        log.info("uploader: publishing to %s:%d as %s", self.settings.host, self.settings.port, self.settings.agent_id)
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()
        self._thread.start()

    def notify(self) -> None:
        """Tell the uploader that a new case is waiting."""
        self._wake.set()

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Publish what is pending for up to `drain_timeout_s`, then disconnect cleanly."""
        deadline = threading.Event()
        timer = threading.Timer(drain_timeout_s, deadline.set)
        timer.start()
        while not deadline.is_set() and self.outbox.counts()["pending"] and self._thread.is_alive():
            self._wake.set()
            deadline.wait(0.1)
        timer.cancel()
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=PUBACK_TIMEOUT_S)
        if self._connected.is_set():
            self._client.publish(self.settings.topic("status"), b"offline", qos=1, retain=True).wait_for_publish(2)
            self._client.disconnect()
        self._client.loop_stop()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"edge-agent-{s.agent_id}",
            protocol=mqtt.MQTTv5,
        )
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.ca_file:
            client.tls_set(
                ca_certs=str(s.ca_file),
                certfile=str(s.client_cert) if s.client_cert else None,
                keyfile=str(s.client_key) if s.client_key else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.will_set(s.topic("status"), b"offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=int(self.retry_cap_s))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._problem(f"broker refused the connection: {reason_code}")
            return
        self._last_problem = ""
        log.info("uploader: connected to %s:%d", self.settings.host, self.settings.port)
        client.publish(self.settings.topic("status"), b"online", qos=1, retain=True)
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            self._problem(f"disconnected from the broker: {reason_code}")

    def _on_connect_fail(self, client, userdata) -> None:
        self._problem(f"cannot reach the broker at {self.settings.host}:{self.settings.port}")

    def _problem(self, text: str) -> None:
        """Log a connection problem once per change of state, not once per retry."""
        if text != self._last_problem:
            log.warning("uploader: %s; cases stay in the outbox and are retried", text)
            self._last_problem = text

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            if not self._connected.is_set():
                continue
            for item in self.outbox.pending():
                if self._stop.is_set() or not self._publish(item):
                    break

    def _publish(self, item: OutboxItem) -> bool:
        """Publish one case revision with its evidence; True when the broker acknowledged all of it."""
        self.outbox.note_attempt(item)
        messages = [
            (self.settings.topic("evidence", item.case_id, path.name), path.read_bytes(), item)
            for path in item.evidence_paths()
        ]
        messages.append((self.settings.topic("cases"), item.case_path.read_bytes(), item))
        infos = []
        for topic, payload, it in messages:
            info = self._client.publish(topic, payload, qos=1, properties=_properties(it, payload))
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return False
            infos.append(info)
        for info in infos:
            try:
                info.wait_for_publish(timeout=PUBACK_TIMEOUT_S)
            except (RuntimeError, ValueError):
                return False
            if not info.is_published():
                return False
        self.outbox.mark_sent(item)
        self.published += 1
        log.info("uploader: case %s r%d published", item.case_id, item.revision)
        return True


def _properties(item: OutboxItem, payload: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [
        ("case_id", item.case_id),
        ("revision", str(item.revision)),
        ("sha256", hashlib.sha256(payload).hexdigest()),
    ]
    return props

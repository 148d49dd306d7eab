"""Drains the outbox over MQTT 5 at QoS 1, most urgent first, within a bandwidth cap and a daily
byte budget, and applies the platform's acknowledgements. See protocol/messages.py for the topics.

Cases go before evidence (new cases before updates), snapshots before clips. A file is sent in
chunks and its progress is stored after every PUBACK, so a broken link resumes where it stopped.
PUBACK only means the broker has it: a case leaves the box when the platform acknowledges it, and
anything sent but unacknowledged for `ack_timeout_s` is sent again (the platform deduplicates).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from protocol.connection import Connection, MqttSettings
from protocol.messages import CHUNK_BYTES, Chunk, Topics
from uploader.budget import TokenBucket, utc_day
from uploader.outbox import CaseUnit, FileUnit, Outbox

log = logging.getLogger(__name__)

PUBACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class UploadPolicy:
    """How much the link may carry and how long to wait for the platform."""

    kbit_per_s: float | None = None  # None: no cap
    daily_bytes: int | None = None  # None: no budget; case JSON is always sent
    ack_timeout_s: float = 300.0


class MqttUploader:
    """A background sender plus the connection that carries it."""

    def __init__(
        self,
        outbox: Outbox,
        settings: MqttSettings,
        topics: Topics,
        policy: UploadPolicy | None = None,
        public_key_pem: bytes | None = None,
    ) -> None:
        self.outbox = outbox
        self.topics = topics
        self.policy = policy or UploadPolicy()
        self.public_key_pem = public_key_pem
        self.published = 0
        self.bytes_sent = 0
        self._bucket = TokenBucket(self.policy.kbit_per_s, CHUNK_BYTES + 4096)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deferred_notified: set[tuple[str, int, str]] = set()
        self._routes: list[tuple[str, Callable[[mqtt.MQTTMessage], None]]] = []
        self.on_connect_hooks: list[Callable[[mqtt.Client], None]] = []  # run on every (re)connection
        self.connection = Connection(
            settings,
            will=(topics.status, b"offline"),
            on_connected=self._on_connected,
            on_message=self._on_message,
            name="mqtt-network",
        )
        self._thread = threading.Thread(target=self._run, name="mqtt-sender", daemon=True)

    def start(self) -> None:
        log.info(
            "uploader: publishing to %s:%d under %s/%s",
            self.connection.settings.host,
            self.connection.settings.port,
            self.topics.prefix,
            self.topics.agent_id,
        )
        self.connection.start()
        self._thread.start()

    def route(self, topic_filter: str, handler: Callable[[mqtt.MQTTMessage], None]) -> None:
        """Subscribe `topic_filter` on this connection (call before start) and hand its messages to `handler`
        on the network thread: the platform's other messages to the box (updates) share the one link."""
        self._routes.append((topic_filter, handler))

    def notify(self) -> None:
        """Tell the sender that a new case is waiting."""
        self._wake.set()

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Keep sending for up to `drain_timeout_s` while anything is unsent, then disconnect cleanly."""
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline and self.outbox.unsent() and self._thread.is_alive():
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=PUBACK_TIMEOUT_S)
        self.connection.stop(last_words=(self.topics.status, b"offline"))

    # --- connection callbacks (network thread) ------------------------------------------------------

    def _on_connected(self, client: mqtt.Client) -> None:
        client.subscribe(self.topics.ack, qos=1)
        for topic_filter, _handler in self._routes:
            client.subscribe(topic_filter, qos=1)
        client.publish(self.topics.status, b"online", qos=1, retain=True)
        if self.public_key_pem:
            client.publish(self.topics.key, self.public_key_pem, qos=1, retain=True)
        for hook in self.on_connect_hooks:
            hook(client)
        self._wake.set()

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        if message.topic != self.topics.ack:
            for topic_filter, handler in self._routes:
                if mqtt.topic_matches_sub(topic_filter, message.topic):
                    try:
                        handler(message)
                    except Exception:  # a bad message must not stop the network thread that carries the cases
                        log.exception("uploader: the handler of %s failed", message.topic)
            return
        try:
            ack = json.loads(message.payload)
            self.outbox.acknowledge(ack["case_id"], int(ack["revision"]), ack["kind"], ack.get("name"), ack["status"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("uploader: ignored a malformed acknowledgement (%s)", exc)
            return
        if ack["status"] == "rejected":
            log.error(
                "uploader: the platform REJECTED %s %s r%s %s: %s",
                ack["kind"],
                ack["case_id"],
                ack["revision"],
                ack.get("name", ""),
                ack.get("reason", "no reason given"),
            )

    # --- sending (sender thread) --------------------------------------------------------------------

    def _run(self) -> None:
        day = utc_day()
        last_resend_check = 0.0
        while not self._stop.is_set():
            if not self.connection.connected.wait(timeout=0.5):
                continue
            if utc_day() != day:
                day = utc_day()
                self.outbox.release_deferred()
            if time.monotonic() - last_resend_check > min(5.0, self.policy.ack_timeout_s / 4):
                last_resend_check = time.monotonic()
                if n := self.outbox.resend_unacked(self.policy.ack_timeout_s):
                    log.warning(
                        "uploader: %d item(s) unacknowledged for %.0f s; sending again", n, self.policy.ack_timeout_s
                    )
            unit = self.outbox.next_unit(evidence_allowed=self._evidence_allowed(day))
            if unit is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            if isinstance(unit, FileUnit) and not self._file_fits_budget(unit, day):
                continue
            self._send(unit, day)

    def _evidence_allowed(self, day: str) -> bool:
        budget = self.policy.daily_bytes
        return budget is None or self.outbox.bytes_today(day) < budget

    def _file_fits_budget(self, unit: FileUnit, day: str) -> bool:
        budget = self.policy.daily_bytes
        if budget is None:
            return True
        remaining_bytes = unit.bytes - unit.next_chunk * CHUNK_BYTES
        if self.outbox.bytes_today(day) + remaining_bytes <= budget:
            return True
        self.outbox.defer_file(unit)
        key = (unit.case_id, unit.revision, unit.name)
        if key not in self._deferred_notified:
            self._deferred_notified.add(key)
            log.info(
                "uploader: %s of case %s deferred: today's %d-byte budget is spent", unit.name, unit.case_id, budget
            )
            notice = {
                "case_id": unit.case_id,
                "revision": unit.revision,
                "name": unit.name,
                "state": "deferred",
                "reason": f"daily upload budget of {budget} bytes reached; kept on the box",
            }
            self.connection.client.publish(self.topics.evidence_status, json.dumps(notice).encode(), qos=1)
        return False

    def _send(self, unit: CaseUnit | FileUnit, day: str) -> None:
        try:
            if isinstance(unit, CaseUnit):
                topic = self.topics.cleared if unit.kind == "cleared" else self.topics.cases
                payload, props = unit.path.read_bytes(), None
                self.outbox.note_attempt(unit)
            else:
                chunk = _read_chunk(unit)
                payload, topic, props = chunk.data, self.topics.evidence(unit.case_id, unit.name), chunk.properties()
        except FileNotFoundError:
            return  # evicted for lack of disk since it was picked: the outbox no longer offers it
        while (wait := self._bucket.wait_time(len(payload))) > 0:
            if self._stop.wait(wait):
                return
        info = self.connection.client.publish(topic, payload, qos=1, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS or not _wait_puback(info):
            return  # not acknowledged by the broker: the unit stays as it was and goes again
        self._bucket.spend(len(payload))
        self.outbox.add_bytes(day, len(payload))
        self.bytes_sent += len(payload)
        if isinstance(unit, CaseUnit):
            self.outbox.case_sent(unit)
            self.published += 1
            log.info("uploader: case %s r%d sent", unit.case_id, unit.revision)
        else:
            self.outbox.chunk_sent(unit, unit.next_chunk)


def _read_chunk(unit: FileUnit) -> Chunk:
    with open(unit.path, "rb") as fh:
        fh.seek(unit.next_chunk * CHUNK_BYTES)
        data = fh.read(CHUNK_BYTES)
    return Chunk(
        case_id=unit.case_id,
        revision=unit.revision,
        name=unit.name,
        index=unit.next_chunk,
        count=unit.chunks,
        file_sha256=unit.sha256,
        file_bytes=unit.bytes,
        media_type=unit.media_type,
        data=data,
    )


def _wait_puback(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        info.wait_for_publish(timeout=PUBACK_TIMEOUT_S)
        return info.is_published()
    except (RuntimeError, ValueError):
        return False

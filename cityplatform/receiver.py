"""`edge-agent receive`: the reference receiver for the platform side, and the integration example.

It subscribes to every agent's cases and evidence (through an MQTT 5 shared subscription, so that
several receivers share the load), checks each case against the schema and the agent's signature,
reassembles evidence chunks and checks their sha256, stores cases once per (id, revision) in SQLite
and files in a folder, and acknowledges each stored case and file to the agent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import sqlite3
import threading
import time
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field

from protocol import CASE_SCHEMA
from protocol.broker import MqttConfig
from protocol.connection import Connection
from protocol.files import write_atomic
from protocol.messages import Chunk, Topics, make_ack
from protocol.signing import verify_record

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (case_id TEXT, revision INTEGER, agent_id TEXT, received_at REAL, json TEXT,
    PRIMARY KEY (case_id, revision));
CREATE TABLE IF NOT EXISTS chunks (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, idx INTEGER,
    data BLOB, PRIMARY KEY (agent_id, case_id, revision, name, idx));
CREATE TABLE IF NOT EXISTS evidence (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, sha256 TEXT,
    bytes INTEGER, received_at REAL, PRIMARY KEY (agent_id, case_id, revision, name));
"""


class ReceiverConfig(BaseModel):
    """The receiver's YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mqtt: MqttConfig
    store_dir: Path = Field(default=Path("platform-data"), description="SQLite database and evidence files")
    share_group: str | None = Field(default="edge-platform", description="MQTT 5 shared subscription group")
    client_id: str = Field(default_factory=lambda: f"edge-receiver-{socket.gethostname()}", min_length=1)
    keys_dir: Path | None = Field(default=None, description="trusted agent keys, <agent_id>.pem; else first seen")


class Receiver:
    """Stores what agents send, exactly once, and acknowledges it."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.prefix = config.mqtt.topic_prefix
        self.store = config.store_dir
        self.store.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.store / "platform.sqlite3", check_same_thread=False, timeout=30, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # chunks may be lost in a power cut: not yet acked
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._validator = jsonschema.Draft202012Validator(json.loads(CASE_SCHEMA.read_text()))
        self.stored = self.duplicates = self.rejected = 0
        settings = config.mqtt.settings(config.client_id)
        self.connection = Connection(
            settings, on_connected=self._subscribe, on_message=self._handle, name="receiver-network"
        )

    def start(self) -> None:
        self.connection.start()

    def stop(self) -> None:
        self.connection.stop()
        with self._lock:
            self._db.close()

    def _subscribe(self, client: mqtt.Client) -> None:
        share = f"$share/{self.config.share_group}/" if self.config.share_group else ""
        for suffix in ("cases", "evidence/#", "evidence-status"):
            client.subscribe(f"{share}{self.prefix}/+/{suffix}", qos=1)
        client.subscribe(f"{self.prefix}/+/key", qos=1)

    def _handle(self, message: mqtt.MQTTMessage) -> None:
        rest = message.topic[len(self.prefix) + 1 :].split("/")
        agent_id, kind = rest[0], rest[1] if len(rest) > 1 else ""
        try:
            if kind == "key":
                self._keys.setdefault(agent_id, message.payload)
            elif kind == "cases":
                self._case(agent_id, message.payload)
            elif kind == "evidence":
                self._chunk(agent_id, Chunk.from_message(message.payload, message.properties))
            elif kind == "evidence-status":
                log.info("%s: evidence kept on the box: %s", agent_id, message.payload.decode(errors="replace"))
        except ValueError as exc:
            log.warning("%s: dropped a message on %s: %s", agent_id, message.topic, exc)

    def _case(self, agent_id: str, payload: bytes) -> None:
        record = json.loads(payload)
        case_id, revision = str(record.get("id")), int(record.get("revision", 0))
        problem = self._check(agent_id, record)
        if problem == "unknown key":
            log.warning("%s: no public key yet for case %s; not acknowledged, the agent will resend", agent_id, case_id)
            return
        if problem:
            self.rejected += 1
            log.error("%s: REJECTED case %s r%d: %s", agent_id, case_id, revision, problem)
            self._ack(agent_id, make_ack(case_id, revision, "case", "rejected", reason=problem))
            return
        with self._lock:
            inserted = self._store(
                "INSERT OR IGNORE INTO cases VALUES (?, ?, ?, ?, ?)",
                (case_id, revision, agent_id, time.time(), payload.decode()),
            )
        status = "stored" if inserted else "duplicate"
        self.stored += bool(inserted)
        self.duplicates += not inserted
        if inserted:
            log.info("%s: case %s r%d %s stored", agent_id, case_id, revision, record.get("type"))
        self._ack(agent_id, make_ack(case_id, revision, "case", status))

    def _check(self, agent_id: str, record: dict) -> str:
        errors = sorted(self._validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            return f"schema: {'/'.join(map(str, errors[0].path))}: {errors[0].message}"
        if record["agent_id"] != agent_id:
            return f"agent_id {record['agent_id']!r} does not match the topic's {agent_id!r}"
        key = self._trusted_key(agent_id)
        if key is None:
            return "unknown key"
        return verify_record(record, key) or ""

    def _trusted_key(self, agent_id: str) -> bytes | None:
        if self.config.keys_dir is not None:
            path = self.config.keys_dir / f"{agent_id}.pem"
            return path.read_bytes() if path.is_file() else None
        return self._keys.get(agent_id)  # trust on first use of the key the agent published

    def _chunk(self, agent_id: str, chunk: Chunk) -> None:
        key = (agent_id, chunk.case_id, chunk.revision, chunk.name)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?, ?)", (*key, chunk.index, chunk.data))
            have = self._db.execute(
                "SELECT COUNT(*) FROM chunks WHERE agent_id = ? AND case_id = ? AND revision = ? AND name = ?", key
            ).fetchone()[0]
        if have < chunk.count:
            return
        status = self._assemble(agent_id, chunk)
        if status:
            self._ack(agent_id, make_ack(chunk.case_id, chunk.revision, "evidence", status, name=chunk.name))

    def _assemble(self, agent_id: str, chunk: Chunk) -> str:
        """Join the chunks of a complete file once; '' when it is not (or no longer) complete.

        The whole check-join-store runs in one IMMEDIATE transaction, so that receivers sharing a
        store (a shared subscription spreads one file's chunks over several of them) store it once."""
        key = (agent_id, chunk.case_id, chunk.revision, chunk.name)
        where = "agent_id = ? AND case_id = ? AND revision = ? AND name = ?"
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")  # stored means on disk before the ack goes out
            self._db.execute("BEGIN IMMEDIATE")
            try:
                status, size = self._assemble_locked(key, where, chunk)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")
        if status == "stored":
            log.info("%s: evidence %s of case %s stored (%d bytes)", agent_id, chunk.name, chunk.case_id, size)
        return status

    def _assemble_locked(self, key: tuple, where: str, chunk: Chunk) -> tuple[str, int]:
        if self._db.execute(f"SELECT 1 FROM evidence WHERE {where}", key).fetchone():
            return "duplicate", 0
        rows = self._db.execute(f"SELECT data FROM chunks WHERE {where} ORDER BY idx", key).fetchall()
        if len(rows) < chunk.count:
            return "", 0  # another receiver is assembling it
        data = b"".join(row[0] for row in rows)
        if hashlib.sha256(data).hexdigest() != chunk.file_sha256 or len(data) != chunk.file_bytes:
            log.error(
                "%s: evidence %s of case %s does not match its sha256; waiting for it again",
                key[0],
                chunk.name,
                chunk.case_id,
            )
            self._db.execute(f"DELETE FROM chunks WHERE {where}", key)
            return "", 0
        target = self.store / "cases" / key[0] / chunk.case_id / f"r{chunk.revision}"
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(target / chunk.name, data)
        self._db.execute(
            "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, chunk.file_sha256, len(data), time.time())
        )
        self._db.execute(f"DELETE FROM chunks WHERE {where}", key)
        return "stored", len(data)

    def _store(self, sql: str, params: tuple) -> int:
        """A write that must reach the disk before the acknowledgement goes out (caller holds the lock)."""
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            return self._db.execute(sql, params).rowcount
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _ack(self, agent_id: str, ack: bytes) -> None:
        self.connection.client.publish(Topics(self.prefix, agent_id).ack, ack, qos=1)

    def case_ids(self) -> list[tuple[str, int]]:
        with self._lock:
            return self._db.execute("SELECT case_id, revision FROM cases ORDER BY received_at").fetchall()

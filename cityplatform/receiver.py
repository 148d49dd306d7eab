"""`edge-agent receive`: the reference receiver for the platform side, and the integration example.

It subscribes to every agent's cases and evidence (through an MQTT 5 shared subscription, so that
several receivers share the load), checks each case against the schema and the signature of the
agent's ENROLLED key (cityplatform/keys.py), reassembles evidence chunks, checks each file against
the sha256 its signed case lists, stores cases once per (id, revision) in SQLite and files in a
folder, and acknowledges each stored case and file to the agent.

No message can stop it: anything it cannot use is answered `rejected` with the reason when the
message names a valid case and revision, and otherwise logged and dropped (acknowledged at the MQTT
level, so that the broker does not deliver it again forever). Every value that becomes a path or a
key matches the strict patterns of protocol/messages.py. A complete file whose case has not arrived
(yet) waits up to case_wait_s for it, then is rejected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import NamedTuple

import jsonschema
import paho.mqtt.client as mqtt

from cityplatform.config import ReceiverConfig
from cityplatform.keys import AgentKeys
from protocol import CASE_SCHEMA
from protocol.connection import Connection
from protocol.files import write_atomic
from protocol.messages import AGENT_ID, FILE_NAME, MAX_REVISION, BadMessage, Chunk, Topics, make_ack, valid_case_ref
from protocol.signing import verify_record

log = logging.getLogger(__name__)

MAX_CASE_BYTES = 1 << 20  # a case JSON is about 2 kB; a bigger one is not even parsed
MAX_WAITING_BYTES = 256 << 20  # per agent: chunks of files whose case has not arrived

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (case_id TEXT, revision INTEGER, agent_id TEXT, received_at REAL, json TEXT,
    PRIMARY KEY (case_id, revision));
CREATE TABLE IF NOT EXISTS chunks (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, idx INTEGER,
    data BLOB, PRIMARY KEY (agent_id, case_id, revision, name, idx));
CREATE TABLE IF NOT EXISTS evidence (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, sha256 TEXT,
    bytes INTEGER, received_at REAL, PRIMARY KEY (agent_id, case_id, revision, name));
CREATE TABLE IF NOT EXISTS waiting (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, count INTEGER,
    sha256 TEXT, bytes INTEGER, since REAL, PRIMARY KEY (agent_id, case_id, revision, name));
"""
_FILE_WHERE = "agent_id = ? AND case_id = ? AND revision = ? AND name = ?"


class _File(NamedTuple):
    """One evidence file of one case revision, as its chunks describe it."""

    agent_id: str
    case_id: str
    revision: int
    name: str
    count: int
    sha256: str
    size: int


class Receiver:
    """Stores what enrolled agents send, exactly once, and acknowledges it."""

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
        self.keys = AgentKeys(config.trusted_keys_dir, config.trust_first_key)
        self._validator = jsonschema.Draft202012Validator(json.loads(CASE_SCHEMA.read_text()))
        self.stored = self.duplicates = self.rejected = self.dropped = 0
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="receiver-sweep", daemon=True)
        settings = config.mqtt.settings(config.client_id)
        self.connection = Connection(
            settings, on_connected=self._subscribe, on_message=self._handle, name="receiver-network"
        )

    def start(self) -> None:
        self.connection.start()
        self._sweeper.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=10)
        self.connection.stop()
        with self._lock:
            self._db.close()

    def _subscribe(self, client: mqtt.Client) -> None:
        share = f"$share/{self.config.share_group}/" if self.config.share_group else ""
        for suffix in ("cases", "evidence/#", "evidence-status"):
            client.subscribe(f"{share}{self.prefix}/+/{suffix}", qos=1)
        client.subscribe(f"{self.prefix}/+/key", qos=1)

    # --- one message: answered, or logged and dropped; never raised into the network thread -----------

    def _handle(self, message: mqtt.MQTTMessage) -> None:
        try:
            parts = message.topic[len(self.prefix) + 1 :].split("/")
            agent_id, kind = parts[0], parts[1] if len(parts) > 1 else ""
            if not AGENT_ID.fullmatch(agent_id):
                self.dropped += 1
                log.warning("dropped a message on a topic whose agent id %s is not valid", repr(agent_id)[:80])
                return
            try:
                self._dispatch(agent_id, kind, parts[2:], message)
            except BadMessage as exc:
                self._refuse(agent_id, kind, exc)
        except Exception:  # a bug or a full disk must not stop the receiver; the agent sends again
            self.dropped += 1
            log.exception("a message on %s could not be handled; dropped", repr(message.topic)[:120])

    def _dispatch(self, agent_id: str, kind: str, rest: list[str], message: mqtt.MQTTMessage) -> None:
        if kind == "key":
            self.keys.published(agent_id, message.payload)
        elif kind == "cases":
            self._case(agent_id, message.payload)
        elif kind == "evidence":
            self._evidence(agent_id, rest, message)
        elif kind == "evidence-status":
            text = message.payload[:300].decode(errors="replace")
            log.info("%s: evidence kept on the box: %r", agent_id, text)

    def _refuse(self, agent_id: str, kind: str, exc: BadMessage) -> None:
        if exc.case_id is None or exc.revision is None:
            self.dropped += 1
            log.warning("%s: dropped a message on %s, which names no case to answer: %s", agent_id, kind, exc.reason)
            return
        self.rejected += 1
        what = "evidence" if kind == "evidence" else "case"
        name = exc.name if what == "evidence" else None
        shown = f" {name}" if name else ""
        log.error("%s: REJECTED %s %s r%d%s: %s", agent_id, what, exc.case_id, exc.revision, shown, exc.reason)
        self._ack(agent_id, make_ack(exc.case_id, exc.revision, what, "rejected", name=name, reason=exc.reason))

    # --- cases ---------------------------------------------------------------------------------------

    def _case(self, agent_id: str, payload: bytes) -> None:
        record = _case_record(payload)
        case_id, revision = record["id"], record["revision"]
        problem = self._check(agent_id, record)
        if problem:
            raise BadMessage(problem, case_id, revision)
        key = self.keys.trusted(agent_id)
        if key is None:
            self.keys.note_unenrolled(agent_id)
            return
        if problem := verify_record(record, key) or "":
            raise BadMessage(problem, case_id, revision)
        with self._lock:
            owner = self._db.execute("SELECT agent_id FROM cases WHERE case_id = ? LIMIT 1", (case_id,)).fetchone()
            if owner and owner[0] != agent_id:
                raise BadMessage(f"case id {case_id} is already another agent's", case_id, revision)
            inserted = self._store(
                "INSERT OR IGNORE INTO cases VALUES (?, ?, ?, ?, ?)",
                (case_id, revision, agent_id, time.time(), payload.decode()),
            )
        self.stored += bool(inserted)
        self.duplicates += not inserted
        if inserted:
            log.info("%s: case %s r%d %s stored", agent_id, case_id, revision, record.get("type"))
        self._ack(agent_id, make_ack(case_id, revision, "case", "stored" if inserted else "duplicate"))
        self._settle(agent_id, case_id, revision)

    def _check(self, agent_id: str, record: dict) -> str:
        errors = sorted(self._validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            return f"schema: {'/'.join(map(str, errors[0].path))}: {errors[0].message}"[:300]
        if record["agent_id"] != agent_id:
            return f"agent_id {record['agent_id']!r:.80} does not match the topic's {agent_id!r}"
        for item in record["evidence"]:
            if not FILE_NAME.fullmatch(item["name"]):
                return f"evidence name {item['name']!r:.80} is not a plain file name like snapshot.jpg"
        return ""

    def _listed(self, file: _File) -> dict[str, tuple[str, int]] | None:
        """name -> (sha256, bytes) of the files the stored, signed case lists; None if it is not stored."""
        row = self._db.execute(
            "SELECT json FROM cases WHERE agent_id = ? AND case_id = ? AND revision = ?", file[:3]
        ).fetchone()
        if row is None:
            return None
        return {e["name"]: (e["sha256"], e["bytes"]) for e in json.loads(row[0])["evidence"]}

    # --- evidence ------------------------------------------------------------------------------------

    def _evidence(self, agent_id: str, rest: list[str], message: mqtt.MQTTMessage) -> None:
        chunk = Chunk.from_message(message.payload, message.properties)
        if rest != [chunk.case_id, chunk.name]:
            raise BadMessage("the topic does not name the chunk's case_id and name", *_ref(chunk))
        if self.keys.trusted(agent_id) is None:
            self.keys.note_unenrolled(agent_id)
            return
        file = _File(
            agent_id, chunk.case_id, chunk.revision, chunk.name, chunk.count, chunk.file_sha256, chunk.file_bytes
        )
        with self._lock:
            listed = self._listed(file)
            if listed is not None and (problem := _mismatch(file, listed)):
                raise BadMessage(problem, *_ref(chunk))
            if listed is None and self._waiting_bytes(agent_id) + len(chunk.data) > MAX_WAITING_BYTES:
                raise BadMessage(f"over {MAX_WAITING_BYTES} bytes of evidence wait for cases never sent", *_ref(chunk))
            self._db.execute(
                "INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?, ?)", (*file[:4], chunk.index, chunk.data)
            )
            have = self._db.execute(f"SELECT COUNT(*) FROM chunks WHERE {_FILE_WHERE}", file[:4]).fetchone()[0]
        if have >= chunk.count:
            self._finish(file)

    def _waiting_bytes(self, agent_id: str) -> int:
        return self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM chunks c WHERE agent_id = ? AND NOT EXISTS (SELECT 1 FROM "
            "cases k WHERE k.case_id = c.case_id AND k.revision = c.revision AND k.agent_id = c.agent_id)",
            (agent_id,),
        ).fetchone()[0]

    def _finish(self, file: _File, give_up: bool = False) -> None:
        """Assemble a complete file and answer the agent, or keep it waiting for its case."""
        status, reason = self._assemble(file, give_up)
        if status == "rejected":
            self._refuse(file.agent_id, "evidence", BadMessage(reason, file.case_id, file.revision, file.name))
        elif status in ("stored", "duplicate"):
            self._ack(file.agent_id, make_ack(file.case_id, file.revision, "evidence", status, name=file.name))

    def _settle(self, agent_id: str, case_id: str, revision: int) -> None:
        """The case is here: finish the files that were waiting for it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, count, sha256, bytes FROM waiting WHERE agent_id = ? AND case_id = ? AND revision = ?",
                (agent_id, case_id, revision),
            ).fetchall()
        for row in rows:
            self._finish(_File(agent_id, case_id, revision, *row))

    def _sweep_loop(self) -> None:
        while not self._stop.wait(min(5.0, self.config.case_wait_s / 2)):
            try:
                cutoff = time.time() - self.config.case_wait_s
                with self._lock:
                    rows = self._db.execute(
                        "SELECT agent_id, case_id, revision, name, count, sha256, bytes FROM waiting WHERE since < ?",
                        (cutoff,),
                    ).fetchall()
                for row in rows:
                    self._finish(_File(*row), give_up=True)
            except Exception:
                log.exception("the check for evidence whose case never came failed; trying again")

    def _assemble(self, file: _File, give_up: bool) -> tuple[str, str]:
        """(status, reason) once the file is settled; ('waiting' or '', '') while it is not.

        The whole check-join-store runs in one IMMEDIATE transaction, so that receivers sharing a
        store (a shared subscription spreads one file's chunks over several of them) store it once."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")  # stored means on disk before the ack goes out
            self._db.execute("BEGIN IMMEDIATE")
            try:
                status, reason = self._assemble_locked(file, give_up)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")
        if status == "stored":
            log.info("%s: evidence %s of case %s stored (%d bytes)", file.agent_id, file.name, file.case_id, file.size)
        elif status == "waiting":
            log.info(
                "%s: evidence %s of case %s r%d waits for its case",
                file.agent_id,
                file.name,
                file.case_id,
                file.revision,
            )
        return status, reason

    def _assemble_locked(self, file: _File, give_up: bool) -> tuple[str, str]:
        key = file[:4]
        if self._db.execute(f"SELECT 1 FROM evidence WHERE {_FILE_WHERE}", key).fetchone():
            self._drop_chunks(key)
            return "duplicate", ""
        listed = self._listed(file)
        if listed is None and not give_up:
            self._db.execute("INSERT OR IGNORE INTO waiting VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*file, time.time()))
            return "waiting", ""
        problem = (
            _mismatch(file, listed)
            if listed is not None
            else f"its case r{file.revision} did not arrive within {self.config.case_wait_s:g} s: send the case first"
        )
        if problem:
            self._drop_chunks(key)
            return "rejected", problem
        rows = self._db.execute(f"SELECT data FROM chunks WHERE {_FILE_WHERE} ORDER BY idx", key).fetchall()
        if len(rows) < file.count:
            return "", ""  # another receiver is assembling it
        data = b"".join(row[0] for row in rows)
        if hashlib.sha256(data).hexdigest() != file.sha256 or len(data) != file.size:
            log.error(
                "%s: evidence %s of case %s does not match its sha256; waiting for it again",
                file.agent_id,
                file.name,
                file.case_id,
            )
            self._drop_chunks(key)
            return "", ""
        target = self._folder(file)
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(target / file.name, data)
        self._db.execute(
            "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, file.sha256, file.size, time.time())
        )
        self._drop_chunks(key)
        return "stored", ""

    def _folder(self, file: _File) -> Path:
        """store/cases/<agent>/<case>/r<n>: each part already matched a strict pattern; checked again here."""
        target = self.store / "cases" / file.agent_id / file.case_id / f"r{file.revision}"
        if not target.resolve().is_relative_to(self.store.resolve()) or not 1 <= file.revision <= MAX_REVISION:
            raise ValueError(f"refusing to write outside {self.store}: {target}")
        return target

    def _drop_chunks(self, key: tuple) -> None:
        self._db.execute(f"DELETE FROM chunks WHERE {_FILE_WHERE}", key)
        self._db.execute(f"DELETE FROM waiting WHERE {_FILE_WHERE}", key)

    def _store(self, sql: str, params: tuple) -> int:
        """A write that must reach the disk before the acknowledgement goes out (caller holds the lock)."""
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            return self._db.execute(sql, params).rowcount
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _ack(self, agent_id: str, ack: bytes) -> None:
        self.connection.client.publish(Topics(self.prefix, agent_id).ack, ack, qos=1)

    def evidence_files(self, agent_id: str, case_id: str, revision: int) -> dict[str, Path]:
        """The files a stored case revision lists that have arrived, by name, each found by sha256 in
        whichever revision of the case brought it: an agent sends unchanged bytes once per case."""
        found: dict[str, Path] = {}
        with self._lock:
            for name, (sha256, _size) in (self._listed(_File(agent_id, case_id, revision, "", 0, "", 0)) or {}).items():
                held = self._db.execute(
                    "SELECT revision, name FROM evidence WHERE agent_id = ? AND case_id = ? AND sha256 = ?",
                    (agent_id, case_id, sha256),
                ).fetchone()
                if held:
                    found[name] = self.store / "cases" / agent_id / case_id / f"r{held[0]}" / held[1]
        return found

    def case_ids(self) -> list[tuple[str, int]]:
        with self._lock:
            return self._db.execute("SELECT case_id, revision FROM cases ORDER BY received_at").fetchall()


def _case_record(payload: bytes) -> dict:
    """The case JSON object, with a valid id and revision; BadMessage (no one to answer) otherwise."""
    if len(payload) > MAX_CASE_BYTES:
        raise BadMessage(f"a case message of {len(payload)} bytes, over the {MAX_CASE_BYTES}-byte limit; not read")
    try:
        record = json.loads(payload)
    except (ValueError, RecursionError):
        raise BadMessage(f"a case message that is not JSON ({len(payload)} bytes)") from None
    if not isinstance(record, dict):
        raise BadMessage(f"a case message that is JSON {type(record).__name__}, not an object")
    if not valid_case_ref(record.get("id"), record.get("revision")):
        raise BadMessage(f"a case without a UUID id and a revision 1..{MAX_REVISION} (id {record.get('id')!r:.80})")
    return record


def _mismatch(file: _File, listed: dict[str, tuple[str, int]]) -> str:
    """What is wrong with a file against its signed case, or ''."""
    if file.name not in listed:
        return f"{file.name} is not in the evidence of case {file.case_id} r{file.revision}"
    if listed[file.name] != (file.sha256, file.size):
        return f"{file.name}'s sha256 or size differs from what case {file.case_id} r{file.revision} lists"
    return ""


def _ref(chunk: Chunk) -> tuple[str, int, str]:
    return chunk.case_id, chunk.revision, chunk.name

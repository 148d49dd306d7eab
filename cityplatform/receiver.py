"""`edge-agent receive`: the reference receiver for the platform side, and the integration example.

It subscribes to every agent's cases and evidence (through an MQTT 5 shared subscription, so that
several receivers share the load), checks each case against the schema and the signature of the
agent's ENROLLED key (in the store: cityplatform/keys.py), reassembles evidence chunks, checks each file against
the sha256 its signed case lists, stores cases once per (id, revision) in its store (SQLite on one
box, PostgreSQL shared by several receivers: cityplatform/store.py) and files in a folder, and
acknowledges each stored case and file to the agent.

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
import threading
import time
from datetime import datetime
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt

from cityplatform.config import ReceiverConfig
from cityplatform.keys import AgentKeys, import_key_files
from cityplatform.store import EvidenceFile, Store, Tx
from cityplatform.store_sqlite import SqliteStore
from protocol import CASE_SCHEMA, CLEARED_SCHEMA
from protocol.connection import Connection
from protocol.files import write_atomic
from protocol.messages import AGENT_ID, FILE_NAME, MAX_REVISION, BadMessage, Chunk, Topics, make_ack, valid_case_ref
from protocol.signing import verify_record

log = logging.getLogger(__name__)

MAX_CASE_BYTES = 1 << 20  # a case JSON is about 2 kB; a bigger one is not even parsed
MAX_WAITING_BYTES = 256 << 20  # per agent: chunks of files whose case has not arrived


def open_store(config: ReceiverConfig) -> Store:
    """The PostgreSQL store when the configuration has a postgres section, else store_dir's SQLite file."""
    if config.postgres is None:
        return SqliteStore(config.store_dir / "platform.sqlite3")
    from cityplatform.store_postgres import PostgresStore  # psycopg: only with the platform extra

    return PostgresStore(config.postgres, config.platform)


class Receiver:
    """Stores what enrolled agents send, exactly once, and acknowledges it."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.prefix = config.mqtt.topic_prefix
        self.store = config.store_dir
        self.store.mkdir(parents=True, exist_ok=True)
        self.db = open_store(config)
        import_key_files(self.db, config.trusted_keys_dir)  # key files of receivers from before the store held keys
        self.keys = AgentKeys(self.db, config.trust_first_key)
        self._validator = jsonschema.Draft202012Validator(json.loads(CASE_SCHEMA.read_text()))
        self._cleared_validator = jsonschema.Draft202012Validator(json.loads(CLEARED_SCHEMA.read_text()))
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
        self.db.close()

    def _subscribe(self, client: mqtt.Client) -> None:
        share = f"$share/{self.config.share_group}/" if self.config.share_group else ""
        for suffix in ("cases", "cleared", "evidence/#", "evidence-status"):
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
        elif kind == "cleared":
            self._cleared(agent_id, message.payload)
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
        what = kind if kind in ("evidence", "cleared") else "case"
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
        with self.db.transaction(f"case:{case_id}") as tx:
            owner = tx.owner(case_id)
            if owner and owner != agent_id:
                raise BadMessage(f"case id {case_id} is already another agent's", case_id, revision)
            received_at = time.time()
            inserted = tx.insert_case(case_id, revision, agent_id, received_at, payload.decode())
            if inserted:
                self.db.case_stored(tx, record, received_at)
        self.stored += bool(inserted)
        self.duplicates += not inserted
        if inserted:
            log.info("%s: case %s r%d %s stored", agent_id, case_id, revision, record.get("type"))
        self._ack(agent_id, make_ack(case_id, revision, "case", "stored" if inserted else "duplicate"))
        self._settle(agent_id, case_id, revision)

    def _cleared(self, agent_id: str, payload: bytes) -> None:
        """A `cleared` observation: checked and verified like a case, stored once, acknowledged. One whose
        case is not stored (yet: another receiver may be storing it) is not answered: the agent sends it
        again after its ack timeout."""
        record = _case_record(payload)
        obs_id, revision = record["id"], record["revision"]
        if problem := self._check(agent_id, record, self._cleared_validator):
            raise BadMessage(problem, obs_id, revision)
        key = self.keys.trusted(agent_id)
        if key is None:
            self.keys.note_unenrolled(agent_id)
            return
        if problem := verify_record(record, key, "the cleared observation (it was altered)") or "":
            raise BadMessage(problem, obs_id, revision)
        case_id = record["case_id"]
        with self.db.transaction(f"case:{case_id}") as tx:
            owner = tx.owner(case_id)
            if owner is None:
                log.warning("%s: cleared %s names case %s, not stored (yet); not answered", agent_id, obs_id, case_id)
                return
            if owner != agent_id:
                raise BadMessage(f"case id {case_id} is another agent's", obs_id, revision)
            until = datetime.fromisoformat(record["clear_until"].replace("Z", "+00:00")).timestamp()
            inserted = tx.insert_cleared(record, until, time.time(), payload.decode())
            if inserted:
                self.db.cleared_stored(tx, record)
        self.stored += bool(inserted)
        self.duplicates += not inserted
        if inserted:
            log.info("%s: cleared %s of case %s stored", agent_id, obs_id, case_id)
        self._ack(agent_id, make_ack(obs_id, revision, "cleared", "stored" if inserted else "duplicate"))
        self._settle(agent_id, obs_id, revision)

    def _check(self, agent_id: str, record: dict, validator: jsonschema.Draft202012Validator | None = None) -> str:
        errors = sorted((validator or self._validator).iter_errors(record), key=lambda e: list(e.path))
        if errors:
            return f"schema: {'/'.join(map(str, errors[0].path))}: {errors[0].message}"[:300]
        if record["agent_id"] != agent_id:
            return f"agent_id {record['agent_id']!r:.80} does not match the topic's {agent_id!r}"
        for item in record["evidence"]:
            if not FILE_NAME.fullmatch(item["name"]):
                return f"evidence name {item['name']!r:.80} is not a plain file name like snapshot.jpg"
        return ""

    # --- evidence ------------------------------------------------------------------------------------

    def _evidence(self, agent_id: str, rest: list[str], message: mqtt.MQTTMessage) -> None:
        chunk = Chunk.from_message(message.payload, message.properties)
        if rest != [chunk.case_id, chunk.name]:
            raise BadMessage("the topic does not name the chunk's case_id and name", *_ref(chunk))
        if self.keys.trusted(agent_id) is None:
            self.keys.note_unenrolled(agent_id)
            return
        file = EvidenceFile(
            agent_id, chunk.case_id, chunk.revision, chunk.name, chunk.count, chunk.file_sha256, chunk.file_bytes
        )
        with self.db.direct() as tx:  # chunks may be lost in a power cut: they are not acknowledged yet
            listed = tx.listed(*file[:3])
            if listed is not None and (problem := _mismatch(file, listed)):
                raise BadMessage(problem, *_ref(chunk))
            if listed is None and tx.waiting_bytes(agent_id) + len(chunk.data) > MAX_WAITING_BYTES:
                raise BadMessage(f"over {MAX_WAITING_BYTES} bytes of evidence wait for cases never sent", *_ref(chunk))
            have = tx.add_chunk(file, chunk.index, chunk.data)
        if have >= chunk.count:
            self._finish(file)

    def _finish(self, file: EvidenceFile, give_up: bool = False) -> None:
        """Assemble a complete file and answer the agent, or keep it waiting for its case."""
        status, reason = self._assemble(file, give_up)
        if status == "rejected":
            self._refuse(file.agent_id, "evidence", BadMessage(reason, file.case_id, file.revision, file.name))
        elif status in ("stored", "duplicate"):
            self._ack(file.agent_id, make_ack(file.case_id, file.revision, "evidence", status, name=file.name))

    def _settle(self, agent_id: str, case_id: str, revision: int) -> None:
        """The case is here: finish the files that were waiting for it."""
        with self.db.direct() as tx:
            files = tx.waiting_for(agent_id, case_id, revision)
        for file in files:
            self._finish(file)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(min(5.0, self.config.case_wait_s / 2)):
            try:
                cutoff = time.time() - self.config.case_wait_s
                with self.db.direct() as tx:
                    files = tx.waiting_since(cutoff)
                for file in files:
                    self._finish(file, give_up=True)
            except Exception:
                log.exception("the check for evidence whose case never came failed; trying again")

    def _assemble(self, file: EvidenceFile, give_up: bool) -> tuple[str, str]:
        """(status, reason) once the file is settled; ('waiting' or '', '') while it is not.

        The whole check-join-store runs in one transaction locked on the file, so that receivers sharing
        a store (a shared subscription spreads one file's chunks over several of them) store it once."""
        with self.db.transaction(f"file:{file.agent_id}/{file.case_id}/{file.revision}/{file.name}") as tx:
            status, reason = self._assemble_locked(tx, file, give_up)
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

    def _assemble_locked(self, tx: Tx, file: EvidenceFile, give_up: bool) -> tuple[str, str]:
        if tx.evidence_stored(file):
            tx.drop_chunks(file)
            return "duplicate", ""
        listed = tx.listed(*file[:3])
        if listed is None and not give_up:
            tx.wait_for_case(file, time.time())
            return "waiting", ""
        problem = (
            _mismatch(file, listed)
            if listed is not None
            else f"its case r{file.revision} did not arrive within {self.config.case_wait_s:g} s: send the case first"
        )
        if problem:
            tx.drop_chunks(file)
            return "rejected", problem
        chunks = tx.chunks(file)
        if len(chunks) < file.count:
            return "", ""  # another receiver is assembling it
        data = b"".join(chunks)
        if hashlib.sha256(data).hexdigest() != file.sha256 or len(data) != file.size:
            log.error(
                "%s: evidence %s of case %s does not match its sha256; waiting for it again",
                file.agent_id,
                file.name,
                file.case_id,
            )
            tx.drop_chunks(file)
            return "", ""
        target = self._folder(file)
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(target / file.name, data)
        tx.add_evidence(file, time.time())
        tx.drop_chunks(file)
        return "stored", ""

    def _folder(self, file: EvidenceFile) -> Path:
        """store/cases/<agent>/<case>/r<n>: each part already matched a strict pattern; checked again here."""
        target = self.store / "cases" / file.agent_id / file.case_id / f"r{file.revision}"
        if not target.resolve().is_relative_to(self.store.resolve()) or not 1 <= file.revision <= MAX_REVISION:
            raise ValueError(f"refusing to write outside {self.store}: {target}")
        return target

    def _ack(self, agent_id: str, ack: bytes) -> None:
        self.connection.client.publish(Topics(self.prefix, agent_id).ack, ack, qos=1)

    def evidence_files(self, agent_id: str, case_id: str, revision: int) -> dict[str, Path]:
        """The files a stored case revision lists that have arrived, by name, each found by sha256 in
        whichever revision of the case brought it: an agent sends unchanged bytes once per case."""
        found: dict[str, Path] = {}
        with self.db.direct() as tx:
            for name, (sha256, _size) in (tx.listed(agent_id, case_id, revision) or {}).items():
                if held := tx.held(agent_id, case_id, sha256):
                    found[name] = self.store / "cases" / agent_id / case_id / f"r{held[0]}" / held[1]
        return found

    def case_ids(self) -> list[tuple[str, int]]:
        with self.db.direct() as tx:
            return tx.case_ids()


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


def _mismatch(file: EvidenceFile, listed: dict[str, tuple[str, int]]) -> str:
    """What is wrong with a file against its signed case, or ''."""
    if file.name not in listed:
        return f"{file.name} is not in the evidence of case {file.case_id} r{file.revision}"
    if listed[file.name] != (file.sha256, file.size):
        return f"{file.name}'s sha256 or size differs from what case {file.case_id} r{file.revision} lists"
    return ""


def _ref(chunk: Chunk) -> tuple[str, int, str]:
    return chunk.case_id, chunk.revision, chunk.name

"""The wire protocol between agents and the platform: topics, evidence chunks and acknowledgements.

Topics, with `{p}` the prefix and `{a}` the agent id:
  {p}/{a}/cases                          case JSON, QoS 1
  {p}/{a}/cleared                        cleared observation JSON (schemas/cleared-v1), QoS 1: a case's place
                                         seen clear; its evidence chunks name the observation's id
  {p}/{a}/evidence/{case_id}/{name}      one chunk of an evidence file, QoS 1; MQTT 5 user properties:
                                         case_id, revision, name, index, count, file_sha256, file_bytes,
                                         chunk_sha256, media_type
  {p}/{a}/evidence-status                JSON: evidence deliberately kept on the box (budget, quota)
  {p}/{a}/key                            the agent's Ed25519 public key (PEM), retained
  {p}/{a}/status                         "online" / "offline", retained; "offline" is the last will
  {p}/{a}/sources/{source_id}/status     JSON: one source's state (live, stalled, ...), retained, QoS 1
  {p}/{a}/stats                          JSON: a small periodic heartbeat of counters, retained, QoS 1
  {p}/{a}/ack                            JSON from the platform: a case or file stored (or rejected)
  {p}/{a}/updates/...                    signed configuration and model updates: see protocol/updates.py
Chunks are numbered, so a transfer broken by a bad link resumes from the last chunk the broker
acknowledged instead of starting again; the platform acknowledges a file only once it has every
chunk and the whole file's sha256 matches. A file is sent once per case: a revision listing a
sha256 that an earlier revision of the case sent gets no chunks of its own (the platform finds the
bytes by case id and sha256).

Every value that a receiver turns into a path or a key must match a strict pattern below, derived
from what the agent produces; each chunk but the last of a file is exactly CHUNK_BYTES long.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CHUNK_BYTES = 16 * 1024  # about 1.4 s at 93 kbit/s, a 30 GB/month SIM: short enough to finish between 4G drops
ACK_SCHEMA_VERSION = "1.1"  # 1.1: kind `cleared`
AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # as agent_id in agent/config/sources.py
CASE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # str(uuid5): agent/cases/case.py
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.[A-Za-z0-9]{1,8}")  # snapshot.jpg, crop.jpg, clip.mp4
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_REVISION = 999
MAX_FILE_BYTES = 1 << 30  # far above a clip; bounds what one file may make a receiver hold
_NUMBER = re.compile(r"\d{1,12}")


class BadMessage(ValueError):
    """A message that cannot be used. `case_id` and `revision` are set when they are valid, so
    that the platform can answer `rejected` with the reason; otherwise there is no one to answer."""

    def __init__(self, reason: str, case_id: str | None = None, revision: int | None = None, name: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.case_id = case_id
        self.revision = revision
        self.name = name


def valid_case_ref(case_id: object, revision: object) -> bool:
    """A case id and revision fit to name a folder and an acknowledgement."""
    return (
        isinstance(case_id, str)
        and CASE_ID.fullmatch(case_id) is not None
        and type(revision) is int
        and 1 <= revision <= MAX_REVISION
    )


@dataclass(frozen=True)
class Topics:
    prefix: str
    agent_id: str

    def _t(self, *parts: str) -> str:
        return "/".join((self.prefix, self.agent_id, *parts))

    @property
    def cases(self) -> str:
        return self._t("cases")

    @property
    def cleared(self) -> str:
        return self._t("cleared")

    @property
    def status(self) -> str:
        return self._t("status")

    @property
    def ack(self) -> str:
        return self._t("ack")

    @property
    def key(self) -> str:
        return self._t("key")

    @property
    def evidence_status(self) -> str:
        return self._t("evidence-status")

    def evidence(self, case_id: str, name: str) -> str:
        return self._t("evidence", case_id, name)

    @property
    def updates_manifest(self) -> str:
        return self._t("updates", "manifest")

    def updates_chunk(self, update_id: str) -> str:
        return self._t("updates", "chunks", update_id)

    @property
    def updates_chunks(self) -> str:
        """The subscription filter for every update's chunks."""
        return self._t("updates", "chunks", "+")

    @property
    def updates_ack(self) -> str:
        return self._t("updates", "ack")

    def source_status(self, source_id: str) -> str:
        """Retained latest state of one source; the id is a config id (no '/', '+' or '#')."""
        if not AGENT_ID.fullmatch(source_id):
            raise ValueError(f"source id {source_id!r} cannot be part of a topic")
        return self._t("sources", source_id, "status")

    @property
    def stats(self) -> str:
        return self._t("stats")


def agent_of(topic: str, prefix: str) -> str:
    """The agent id in a topic under `prefix` (the part after the prefix)."""
    return topic[len(prefix) + 1 :].split("/", 1)[0]


@dataclass(frozen=True)
class Chunk:
    """One piece of an evidence file, as carried in a PUBLISH."""

    case_id: str
    revision: int
    name: str
    index: int
    count: int
    file_sha256: str
    file_bytes: int
    media_type: str
    data: bytes

    def properties(self) -> Properties:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [
            ("case_id", self.case_id),
            ("revision", str(self.revision)),
            ("name", self.name),
            ("index", str(self.index)),
            ("count", str(self.count)),
            ("file_sha256", self.file_sha256),
            ("file_bytes", str(self.file_bytes)),
            ("chunk_sha256", hashlib.sha256(self.data).hexdigest()),
            ("media_type", self.media_type),
        ]
        return props

    @classmethod
    def from_message(cls, payload: bytes, properties: Properties | None) -> Chunk:
        """Parse and check a received chunk; raises BadMessage saying what is wrong."""
        user = {str(k): str(v) for k, v in getattr(properties, "UserProperty", None) or []}
        case_id, name, revision = user.get("case_id"), user.get("name", ""), _number(user.get("revision"))
        if case_id is None or revision is None or not valid_case_ref(case_id, revision):
            raise BadMessage(f"evidence chunk without a valid case_id and revision (case_id={_short(case_id)})")
        ref = {"case_id": case_id, "revision": revision, "name": name[:64]}
        if not FILE_NAME.fullmatch(name):
            raise BadMessage(f"evidence name {_short(name)} is not a plain file name like snapshot.jpg", **ref)
        index, count, file_bytes = (_number(user.get(key)) for key in ("index", "count", "file_bytes"))
        if index is None or count is None or file_bytes is None:
            raise BadMessage("evidence chunk without integer index, count and file_bytes properties", **ref)
        if file_bytes > MAX_FILE_BYTES or count != chunk_count(file_bytes) or index >= count:
            raise BadMessage(
                f"evidence chunk {index}/{count} of a {file_bytes}-byte file is out of range "
                f"({CHUNK_BYTES}-byte chunks, at most {MAX_FILE_BYTES} bytes)",
                **ref,
            )
        expected = min(CHUNK_BYTES, file_bytes - index * CHUNK_BYTES)
        if len(payload) != expected:
            raise BadMessage(f"evidence chunk {index} is {len(payload)} bytes, not {expected}", **ref)
        file_sha256 = user.get("file_sha256", "")
        if not SHA256.fullmatch(file_sha256):
            raise BadMessage("evidence chunk without a valid file_sha256", **ref)
        if hashlib.sha256(payload).hexdigest() != user.get("chunk_sha256"):
            raise BadMessage(f"evidence chunk {index} does not match its chunk_sha256", **ref)
        media_type = user.get("media_type", "application/octet-stream")[:100]
        return cls(case_id, revision, name, index, count, file_sha256, file_bytes, media_type, payload)


def _number(text: str | None) -> int | None:
    """A non-negative integer written plainly (int() would also take ' 5', '5_0' and '+5')."""
    return int(text) if text is not None and _NUMBER.fullmatch(text) else None


def _short(value: object) -> str:
    """A value from outside, cut and quoted for a log line or a reason."""
    return repr(value)[:80]


def chunk_count(file_bytes: int) -> int:
    return max(1, -(-file_bytes // CHUNK_BYTES))


def make_ack(case_id: str, revision: int, kind: str, status: str, name: str | None = None, reason: str = "") -> bytes:
    """An acknowledgement the platform sends: kind 'case', 'cleared' or 'evidence'; status stored/duplicate/rejected."""
    ack: dict[str, Any] = {
        "schema_version": ACK_SCHEMA_VERSION,
        "case_id": case_id,
        "revision": revision,
        "kind": kind,
        "status": status,
    }
    if name is not None:
        ack["name"] = name
    if reason:
        ack["reason"] = reason
    return json.dumps(ack).encode()

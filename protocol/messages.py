"""The wire protocol between agents and the platform: topics, evidence chunks and acknowledgements.

Topics, with `{p}` the prefix and `{a}` the agent id:
  {p}/{a}/cases                          case JSON, QoS 1
  {p}/{a}/evidence/{case_id}/{name}      one chunk of an evidence file, QoS 1; MQTT 5 user properties:
                                         case_id, revision, name, index, count, file_sha256, file_bytes,
                                         chunk_sha256, media_type
  {p}/{a}/evidence-status                JSON: evidence deliberately kept on the box (budget, quota)
  {p}/{a}/key                            the agent's Ed25519 public key (PEM), retained
  {p}/{a}/status                         "online" / "offline", retained; "offline" is the last will
  {p}/{a}/ack                            JSON from the platform: a case or file stored (or rejected)
Chunks are numbered, so a transfer broken by a bad link resumes from the last chunk the broker
acknowledged instead of starting again; the platform acknowledges a file only once it has every
chunk and the whole file's sha256 matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CHUNK_BYTES = 16 * 1024  # about 1.4 s at 93 kbit/s, a 30 GB/month SIM: short enough to finish between 4G drops
ACK_SCHEMA_VERSION = "1.0"


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
        """Parse a received chunk; raises ValueError when it is malformed or damaged."""
        user = dict(getattr(properties, "UserProperty", []) or [])
        try:
            chunk = cls(
                case_id=user["case_id"],
                revision=int(user["revision"]),
                name=user["name"],
                index=int(user["index"]),
                count=int(user["count"]),
                file_sha256=user["file_sha256"],
                file_bytes=int(user["file_bytes"]),
                media_type=user.get("media_type", "application/octet-stream"),
                data=payload,
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"evidence chunk without valid properties ({exc})") from exc
        if not 0 <= chunk.index < chunk.count or "/" in chunk.name or chunk.name.startswith("."):
            raise ValueError(f"evidence chunk {chunk.name!r} {chunk.index}/{chunk.count} is out of range")
        if hashlib.sha256(payload).hexdigest() != user.get("chunk_sha256"):
            raise ValueError(f"evidence chunk {chunk.name} {chunk.index} does not match its sha256")
        return chunk


def chunk_count(file_bytes: int) -> int:
    return max(1, -(-file_bytes // CHUNK_BYTES))


def make_ack(case_id: str, revision: int, kind: str, status: str, name: str | None = None, reason: str = "") -> bytes:
    """An acknowledgement the platform sends: kind 'case' or 'evidence'; status stored/duplicate/rejected."""
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

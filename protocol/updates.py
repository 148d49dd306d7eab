"""Remote updates, platform -> box: a signed manifest, then the bytes in chunks, then the box's answer.

  {p}/{a}/updates/manifest               JSON (update-manifest-v1), QoS 1: what comes (a configuration
                                         or a model), its sha256 and size, signed Ed25519 by the
                                         platform's key (the `signature` of protocol/signing.py)
  {p}/{a}/updates/chunks/{update_id}     one chunk of the bytes, QoS 1; MQTT 5 user properties:
                                         index, count, chunk_sha256; each but the last CHUNK_BYTES long
  {p}/{a}/updates/ack                    JSON (update-ack-v1) from the box: accepted (the manifest's
                                         signature holds: send the chunks), applied, rejected or
                                         rolled_back, with a reason
A manifest with `local_path` names a file already on the box (inside `updates.local_dir`) instead of
chunks. The manifest names the agent, so an update signed for one box is refused by another.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocol.messages import CHUNK_BYTES, SHA256, chunk_count
from protocol.signing import verify_record

UPDATE_SCHEMA_VERSION = "1.0"
UPDATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
UPDATE_KINDS = ("config", "model")
ACK_STATUSES = ("accepted", "applied", "rejected", "rolled_back")
MAX_UPDATE_BYTES = 256 * 1024 * 1024  # far above a model of this project (a few MB); bounds the box's disk use
_NUMBER = re.compile(r"\d{1,12}")


class BadUpdate(ValueError):
    """An update that must be refused; `update_id` is set when it is valid, so that the box can answer."""

    def __init__(self, reason: str, update_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.update_id = update_id


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: its signature held for the trusted key and it names this agent."""

    update_id: str
    kind: str
    sha256: str
    bytes: int
    version: str
    local_path: str | None

    @property
    def chunks(self) -> int:
        return chunk_count(self.bytes)


def make_manifest(
    agent_id: str, update_id: str, kind: str, data: bytes, version: str = "", local_path: str | None = None
) -> dict[str, Any]:
    """The platform's manifest for `data`, unsigned (sign it with protocol.signing.Signer.sign)."""
    manifest: dict[str, Any] = {
        "schema_version": UPDATE_SCHEMA_VERSION,
        "agent_id": agent_id,
        "update_id": update_id,
        "kind": kind,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "version": version,
    }
    if local_path is not None:
        manifest["local_path"] = local_path
    return manifest


def parse_manifest(payload: bytes, agent_id: str, platform_pem: bytes) -> Manifest:
    """Check a received manifest: shape, addressee and the platform's signature; BadUpdate says why not."""
    try:
        record = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadUpdate("the manifest is not JSON") from None
    if not isinstance(record, dict):
        raise BadUpdate("the manifest is not a JSON object")
    update_id = record.get("update_id")
    ref = update_id if isinstance(update_id, str) and UPDATE_ID.fullmatch(update_id) else None
    if ref is None:
        raise BadUpdate(f"update_id {repr(update_id)[:80]} is not a plain id like cfg-2026-12-01.1")
    problem = verify_record(record, platform_pem, what="the manifest (it was altered after signing)")
    if problem:
        raise BadUpdate(f"refused: {problem}; only updates signed by updates.platform_key are applied", ref)
    if record.get("agent_id") != agent_id:
        raise BadUpdate(f"the manifest is for agent {repr(record.get('agent_id'))[:80]}, not {agent_id}", ref)
    kind, sha, size = record.get("kind"), record.get("sha256"), record.get("bytes")
    if kind not in UPDATE_KINDS:
        raise BadUpdate(f"kind {repr(kind)[:40]} is not one of {', '.join(UPDATE_KINDS)}", ref)
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        raise BadUpdate("sha256 is not 64 lower-case hex digits", ref)
    if type(size) is not int or not 0 < size <= MAX_UPDATE_BYTES:
        raise BadUpdate(f"bytes must be an integer from 1 to {MAX_UPDATE_BYTES}", ref)
    version, local_path = record.get("version", ""), record.get("local_path")
    if not isinstance(version, str) or len(version) > 64:
        raise BadUpdate("version must be a string of at most 64 characters", ref)
    if local_path is not None and (not isinstance(local_path, str) or not 0 < len(local_path) <= 4096):
        raise BadUpdate("local_path must be a file path string", ref)
    return Manifest(ref, kind, sha, size, version, local_path)


def update_chunks(data: bytes) -> list[tuple[bytes, Properties]]:
    """The chunks the platform publishes for `data`, with their user properties."""
    count = chunk_count(len(data))
    chunks = []
    for index in range(count):
        piece = data[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [
            ("index", str(index)),
            ("count", str(count)),
            ("chunk_sha256", hashlib.sha256(piece).hexdigest()),
        ]
        chunks.append((piece, props))
    return chunks


def parse_chunk(payload: bytes, properties: Properties | None, manifest: Manifest) -> int:
    """Check one chunk of `manifest`'s bytes; returns its index, or raises BadUpdate."""
    user = {str(k): str(v) for k, v in getattr(properties, "UserProperty", None) or []}
    index, count = (int(v) if (v := user.get(k)) and _NUMBER.fullmatch(v) else None for k in ("index", "count"))
    if index is None or count != manifest.chunks or index >= count:
        raise BadUpdate(f"chunk {index}/{count} does not fit a {manifest.bytes}-byte update", manifest.update_id)
    expected = min(CHUNK_BYTES, manifest.bytes - index * CHUNK_BYTES)
    if len(payload) != expected:
        raise BadUpdate(f"chunk {index} is {len(payload)} bytes, not {expected}", manifest.update_id)
    if hashlib.sha256(payload).hexdigest() != user.get("chunk_sha256"):
        raise BadUpdate(f"chunk {index} does not match its chunk_sha256", manifest.update_id)
    return index


def make_update_ack(update_id: str, kind: str | None, status: str, reason: str = "", **extra: Any) -> bytes:
    """The box's answer to an update (update-ack-v1); `kind` is None when the manifest did not say."""
    ack: dict[str, Any] = {"schema_version": UPDATE_SCHEMA_VERSION, "update_id": update_id, "status": status}
    if kind is not None:
        ack["kind"] = kind
    if reason:
        ack["reason"] = reason
    return json.dumps(ack | extra).encode()

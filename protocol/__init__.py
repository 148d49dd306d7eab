"""What the agent and the platform must agree on, in one place both import: topics, evidence chunks
and acknowledgements (`messages`), signed remote updates (`updates`), the signature over the case
JSON (`signing`), the JSON schemas, the broker connection (`connection`) and its YAML section
(`broker`), durable writes behind an ack (`files`). It imports nothing else of this project."""

from pathlib import Path

from protocol.broker import MqttConfig
from protocol.connection import Connection, MqttSettings
from protocol.files import write_atomic
from protocol.messages import CHUNK_BYTES, Chunk, Topics, chunk_count, make_ack
from protocol.signing import Signer, canonical_json, verify_record

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
CASE_SCHEMA = SCHEMA_DIR / "case-v1.schema.json"
CLEARED_SCHEMA = SCHEMA_DIR / "cleared-v1.schema.json"
ACK_SCHEMA = SCHEMA_DIR / "ack-v1.schema.json"
EVIDENCE_STATUS_SCHEMA = SCHEMA_DIR / "evidence-status-v1.schema.json"
UPDATE_MANIFEST_SCHEMA = SCHEMA_DIR / "update-manifest-v1.schema.json"
UPDATE_ACK_SCHEMA = SCHEMA_DIR / "update-ack-v1.schema.json"
SOURCE_STATUS_SCHEMA = SCHEMA_DIR / "source-status-v1.schema.json"
STATS_SCHEMA = SCHEMA_DIR / "stats-v1.schema.json"

__all__ = [
    "ACK_SCHEMA",
    "CASE_SCHEMA",
    "CHUNK_BYTES",
    "CLEARED_SCHEMA",
    "EVIDENCE_STATUS_SCHEMA",
    "SCHEMA_DIR",
    "SOURCE_STATUS_SCHEMA",
    "STATS_SCHEMA",
    "UPDATE_ACK_SCHEMA",
    "UPDATE_MANIFEST_SCHEMA",
    "Chunk",
    "Connection",
    "MqttConfig",
    "MqttSettings",
    "Signer",
    "Topics",
    "canonical_json",
    "chunk_count",
    "make_ack",
    "verify_record",
    "write_atomic",
]

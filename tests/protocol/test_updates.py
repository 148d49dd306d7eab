"""Update manifests and chunks: what the box accepts from the platform and what it refuses, and why."""

from __future__ import annotations

import json

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import CHUNK_BYTES, UPDATE_ACK_SCHEMA, UPDATE_MANIFEST_SCHEMA
from protocol.signing import Signer
from protocol.updates import BadUpdate, make_manifest, make_update_ack, parse_chunk, parse_manifest, update_chunks

PLATFORM = Signer(Ed25519PrivateKey.generate())
DATA = bytes(range(256)) * 200  # 51200 bytes: four chunks, the last one short


def signed(**changes) -> dict:
    manifest = make_manifest("car-1", "cfg-1", "config", DATA, version="v2") | changes
    return PLATFORM.sign(manifest)


def test_a_signed_manifest_for_this_agent_is_accepted_and_matches_its_schema() -> None:
    record = signed()
    jsonschema.Draft202012Validator(json.loads(UPDATE_MANIFEST_SCHEMA.read_text())).validate(record)
    manifest = parse_manifest(json.dumps(record).encode(), "car-1", PLATFORM.public_pem)
    assert (manifest.update_id, manifest.kind, manifest.bytes, manifest.chunks) == ("cfg-1", "config", len(DATA), 4)


@pytest.mark.parametrize(
    "record, reason",
    [
        # signed by a key the box does not trust
        (Signer(Ed25519PrivateKey.generate()).sign(make_manifest("car-1", "cfg-1", "config", DATA)), "signed with key"),
        # a field changed after signing
        (signed() | {"sha256": "0" * 64}, "signature does not match the manifest"),
        # no signature at all
        (make_manifest("car-1", "cfg-1", "config", DATA), "no Ed25519 signature"),
        # signed for another box: cannot be replayed to this one
        (signed(agent_id="car-2"), "for agent 'car-2', not car-1"),
        # a kind the box does not know
        (signed(kind="firmware"), "kind 'firmware' is not one of config, model"),
        # more bytes than the box will hold
        (signed(bytes=1 << 40), "bytes must be an integer"),
    ],
)
def test_a_bad_manifest_is_refused_with_the_reason(record: dict, reason: str) -> None:
    with pytest.raises(BadUpdate, match=reason) as caught:
        parse_manifest(json.dumps(record).encode(), "car-1", PLATFORM.public_pem)
    assert caught.value.update_id == "cfg-1"  # so that the box can answer on the ack topic


def test_an_update_id_that_could_be_a_path_is_refused_before_anything_else() -> None:
    with pytest.raises(BadUpdate, match="not a plain id") as caught:
        parse_manifest(json.dumps(signed(update_id="../../etc")).encode(), "car-1", PLATFORM.public_pem)
    assert caught.value.update_id is None


def test_chunks_rebuild_the_bytes_and_a_changed_chunk_is_refused() -> None:
    manifest = parse_manifest(json.dumps(signed()).encode(), "car-1", PLATFORM.public_pem)
    chunks = update_chunks(DATA)
    assert [parse_chunk(payload, props, manifest) for payload, props in chunks] == [0, 1, 2, 3]
    assert b"".join(payload for payload, _ in chunks) == DATA and len(chunks[0][0]) == CHUNK_BYTES
    payload, props = chunks[1]
    with pytest.raises(BadUpdate, match="chunk 1 does not match its chunk_sha256"):
        parse_chunk(b"x" + payload[1:], props, manifest)
    with pytest.raises(BadUpdate, match="chunk 3 is 5 bytes, not 2048"):
        parse_chunk(b"short", chunks[3][1], manifest)


def test_the_box_answers_in_the_ack_schema() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(UPDATE_ACK_SCHEMA.read_text()))
    validator.validate(json.loads(make_update_ack("cfg-1", "config", "rolled_back", "cam: error", version="v2")))
    validator.validate(json.loads(make_update_ack("cfg-1", None, "rejected", "signed with key 1234")))

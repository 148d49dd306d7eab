"""Ed25519 signatures over a canonical form of the case JSON, so that evidence cannot change unseen.

The case lists each evidence file's sha256; the signature covers the case, so it covers the files.
The key pair is made on first run in the state folder (private key mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PRIVATE_KEY_FILE = "agent_ed25519.pem"
PUBLIC_KEY_FILE = "agent_ed25519.pub.pem"


def canonical_json(record: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same content on every machine."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Signer:
    """Signs case records with this agent's key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = key_id(self.public_pem)

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> Signer:
        keys_dir.mkdir(parents=True, exist_ok=True)
        private_path = keys_dir / PRIVATE_KEY_FILE
        if private_path.exists():
            key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{private_path} is not an Ed25519 key")
        else:
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
        signer = cls(key)
        (keys_dir / PUBLIC_KEY_FILE).write_bytes(signer.public_pem)
        return signer

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with a `signature` over everything else in it."""
        body = {k: v for k, v in record.items() if k != "signature"}
        value = self._key.sign(canonical_json(body))
        return body | {
            "signature": {"alg": "Ed25519", "key_id": self.key_id, "value": base64.b64encode(value).decode()}
        }


def key_id(public_pem: bytes) -> str:
    return hashlib.sha256(public_pem).hexdigest()[:16]


def verify_record(
    record: dict[str, Any], public_pem: bytes, what: str = "the case JSON (the case was altered)"
) -> str | None:
    """None when the signature holds, else what is wrong (`what` names the record in that answer)."""
    signature = record.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519":
        return "no Ed25519 signature"
    if signature.get("key_id") != key_id(public_pem):
        return f"signed with key {signature.get('key_id')}, not with the given public key {key_id(public_pem)}"
    public = serialization.load_pem_public_key(public_pem)
    if not isinstance(public, Ed25519PublicKey):
        return "the public key is not an Ed25519 key"
    body = {k: v for k, v in record.items() if k != "signature"}
    try:
        public.verify(base64.b64decode(signature.get("value", "")), canonical_json(body))
    except (InvalidSignature, ValueError):
        return f"signature does not match {what}"
    return None

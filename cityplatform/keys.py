"""Which agents the receiver trusts: Ed25519 public keys enrolled by an operator in keys_dir.

A key an agent publishes on {prefix}/{agent}/key is only a claim: anyone who can publish there
could send it first. The platform trusts `keys_dir/<agent_id>.pem`, put there by
`edge-agent receive --enrol AGENT --key PEM -c FILE` after checking the key id with the box
(`edge-agent verify --print-key` prints the same PEM).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.files import write_atomic
from protocol.messages import AGENT_ID
from protocol.signing import key_id

log = logging.getLogger(__name__)


def public_key_pem(data: bytes) -> bytes:
    """The key in the exact PEM form the agent signs with (so key ids agree); ValueError if it is none."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class AgentKeys:
    """Enrolled keys in `keys_dir`, and, only when `trust_first_key` is on (a lab), first-seen keys."""

    def __init__(self, keys_dir: Path, trust_first_key: bool = False) -> None:
        self.keys_dir = keys_dir
        self.trust_first_key = trust_first_key
        self._first_seen: dict[str, bytes] = {}
        self._noted: set[str] = set()

    def trusted(self, agent_id: str) -> bytes | None:
        """The key to check `agent_id`'s signatures with, or None while it is not enrolled."""
        path = self.keys_dir / f"{agent_id}.pem"  # agent_id matches AGENT_ID: a plain file name
        if path.is_file():
            return path.read_bytes()
        return self._first_seen.get(agent_id) if self.trust_first_key else None

    def published(self, agent_id: str, payload: bytes) -> None:
        """An agent published its key: pin it only in lab mode; otherwise say how to enrol it."""
        try:
            pem = public_key_pem(payload)
        except ValueError as exc:
            log.warning("%s: its key topic holds %s; ignored", agent_id, exc)
            return
        path = self.keys_dir / f"{agent_id}.pem"
        if path.is_file():
            enrolled = path.read_bytes()
            if key_id(pem) != key_id(enrolled):
                log.warning(
                    "%s: published key %s, not its enrolled key %s; the enrolled key stays (a rebuilt box? "
                    "enrol the new key with --replace)",
                    agent_id,
                    key_id(pem),
                    key_id(enrolled),
                )
        elif self.trust_first_key:
            if agent_id not in self._first_seen:
                self._first_seen[agent_id] = pem
                log.warning(
                    "%s: trusting the first key it published, %s (trust_first_key: lab only)", agent_id, key_id(pem)
                )
        else:
            log.warning(
                "%s: published key %s but is not enrolled, so it is not trusted; check that id on the box "
                "(edge-agent verify --print-key) and run: edge-agent receive --enrol %s --key FILE -c CONFIG",
                agent_id,
                key_id(pem),
                agent_id,
            )

    def note_unenrolled(self, agent_id: str) -> None:
        """Once per agent: its messages are left unacknowledged, so they stay on the box until enrolment."""
        if agent_id in self._noted:
            return
        self._noted.add(agent_id)
        log.warning(
            "%s is not enrolled: its cases and evidence are not acknowledged and stay on the box (it sends them "
            "again) until you run: edge-agent receive --enrol %s --key PEM -c CONFIG",
            agent_id,
            agent_id,
        )


def enrol(keys_dir: Path, agent_id: str, pem_file: Path, replace: bool = False) -> str:
    """Install `agent_id`'s public key as trusted; returns what was done. ValueError says what is wrong."""
    if not AGENT_ID.fullmatch(agent_id):
        raise ValueError(
            f"agent id {agent_id[:80]!r} is not valid: 1-64 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit (the agent_id in the box's configuration)"
        )
    try:
        pem = public_key_pem(pem_file.read_bytes())
    except OSError as exc:
        raise ValueError(f"--key {pem_file}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"--key {pem_file}: {exc}; give the PEM that `edge-agent verify --print-key` prints") from None
    target = keys_dir / f"{agent_id}.pem"
    if target.is_file():
        old = target.read_bytes()
        if old == pem:
            return f"{agent_id} is already enrolled with key {key_id(pem)} ({target})"
        if not replace:
            raise ValueError(
                f"{agent_id} is enrolled with another key ({key_id(old)}, in {target}); "
                "add --replace to trust the new one instead (a rebuilt box)"
            )
    keys_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(target, pem)
    return f"enrolled {agent_id} with key {key_id(pem)} in {target}"

"""Which agents the receiver trusts: Ed25519 public keys enrolled by an operator, kept in the store's
`agent_keys` table, so that every receiver sharing one database verifies against the same key set.

A key an agent publishes on {prefix}/{agent}/key is only a claim: anyone who can publish there could
send it first. The platform trusts a key enrolled with `edge-agent receive --enrol AGENT --key PEM -c
FILE` after checking the key id with the box (`edge-agent verify --print-key` prints the same PEM);
`--enrol --replace` rotates it, `--revoke AGENT` stops trusting it. Enrolment and revocation take effect
at once: every message looks its key up in the store. Key files of receivers from before
(`keys_dir/<agent_id>.pem`) are imported on start for agents the store does not know yet, so an upgrade
loses no enrolment and a revoked agent is not brought back by its old file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cityplatform.store import Store
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
    """Enrolled keys in the store, and, only when `trust_first_key` is on (a lab), first-seen keys."""

    def __init__(self, store: Store, trust_first_key: bool = False) -> None:
        self.store = store
        self.trust_first_key = trust_first_key
        self._first_seen: dict[str, bytes] = {}
        self._noted: set[str] = set()

    def _enrolled(self, agent_id: str) -> bytes | None:
        with self.store.direct() as tx:
            row = tx.agent_key(agent_id)
        return row.pem if row and not row.revoked else None

    def trusted(self, agent_id: str) -> bytes | None:
        """The key to check `agent_id`'s signatures with, or None while it is not enrolled."""
        enrolled = self._enrolled(agent_id)
        if enrolled is not None:
            return enrolled
        return self._first_seen.get(agent_id) if self.trust_first_key else None

    def published(self, agent_id: str, payload: bytes) -> None:
        """An agent published its key: pin it only in lab mode; otherwise say how to enrol it."""
        try:
            pem = public_key_pem(payload)
        except ValueError as exc:
            log.warning("%s: its key topic holds %s; ignored", agent_id, exc)
            return
        enrolled = self._enrolled(agent_id)
        if enrolled is not None:
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


def import_key_files(store: Store, keys_dir: Path) -> list[str]:
    """Enrol the agents of `keys_dir/<agent_id>.pem` files (receivers from before keys were in the store)
    that the store does not know yet, enrolled or revoked; the agent ids imported. Logged, each file."""
    imported = []
    for path in sorted(keys_dir.glob("*.pem")) if keys_dir.is_dir() else []:
        agent_id = path.stem
        if not AGENT_ID.fullmatch(agent_id):
            log.warning("key file %s: %r is not an agent id; not imported", path, agent_id[:80])
            continue
        try:
            pem = public_key_pem(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("key file %s: %s; not imported", path, getattr(exc, "strerror", None) or exc)
            continue
        with store.transaction(f"agent-key:{agent_id}") as tx:
            known = tx.agent_key(agent_id)
            if known is None:
                tx.put_agent_key(agent_id, pem, key_id(pem), time.time(), f"file {path}"[:300])
        if known is None:
            log.info("%s: key %s imported into the store from %s", agent_id, key_id(pem), path)
            imported.append(agent_id)
        elif known.key_id != key_id(pem) or known.revoked:
            state = "revoked" if known.revoked else f"enrolled with key {known.key_id}"
            log.warning("%s: the store has it %s; key file %s (key %s) ignored", agent_id, state, path, key_id(pem))
    return imported


def enrol(store: Store, agent_id: str, pem_file: Path, replace: bool = False) -> str:
    """Trust `agent_id`'s public key in the store; returns what was done. ValueError says what is wrong."""
    _check_agent_id(agent_id)
    try:
        pem = public_key_pem(pem_file.read_bytes())
    except OSError as exc:
        raise ValueError(f"--key {pem_file}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"--key {pem_file}: {exc}; give the PEM that `edge-agent verify --print-key` prints") from None
    with store.transaction(f"agent-key:{agent_id}") as tx:
        known = tx.agent_key(agent_id)
        if known is not None and not known.revoked:
            if known.pem == pem:
                return f"{agent_id} is already enrolled with key {key_id(pem)}"
            if not replace:
                raise ValueError(
                    f"{agent_id} is enrolled with another key ({known.key_id}); "
                    "add --replace to trust the new one instead (a rebuilt box)"
                )
        tx.put_agent_key(agent_id, pem, key_id(pem), time.time(), "enrol")
    return f"enrolled {agent_id} with key {key_id(pem)} in the store"


def revoke(store: Store, agent_id: str) -> str:
    """Stop trusting `agent_id`'s key; its messages are then left unacknowledged, as an unenrolled agent's."""
    _check_agent_id(agent_id)
    with store.transaction(f"agent-key:{agent_id}") as tx:
        known = tx.agent_key(agent_id)
        if known is None or not tx.revoke_agent_key(agent_id, time.time()):
            raise ValueError(f"{agent_id} has no enrolled key to revoke")
    return f"revoked {agent_id}'s key {known.key_id}: its messages are no longer trusted"


def _check_agent_id(agent_id: str) -> None:
    if not AGENT_ID.fullmatch(agent_id):
        raise ValueError(
            f"agent id {agent_id[:80]!r} is not valid: 1-64 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit (the agent_id in the box's configuration)"
        )

"""The receiver's store, behind one interface: SQLite for a single box (store_sqlite.py), PostgreSQL +
PostGIS for a city's receivers sharing one database (store_postgres.py).

The receiver's rules (what is stored, refused, acknowledged) live in receiver.py and run inside a
store's transactions: `Tx` holds every query once, in SQL that both databases speak."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol


class EvidenceFile(NamedTuple):
    """One evidence file of one case revision, as its chunks describe it."""

    agent_id: str
    case_id: str
    revision: int
    name: str
    count: int
    sha256: str
    size: int


class AgentKey(NamedTuple):
    """An enrolled agent's key as the store keeps it."""

    pem: bytes
    key_id: str
    revoked: bool


_FILE_WHERE = "agent_id = ? AND case_id = ? AND revision = ? AND name = ?"

Run = Callable[[str, tuple], Any]  # runs one statement with ? placeholders, returns a cursor


class Tx:
    """The receiver's queries, inside a store's transaction or direct session."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def owner(self, case_id: str) -> str | None:
        row = self.run("SELECT agent_id FROM cases WHERE case_id = ? LIMIT 1", (case_id,)).fetchone()
        return row[0] if row else None

    def insert_case(self, case_id: str, revision: int, agent_id: str, at: float, payload: str) -> bool:
        """True when this (case_id, revision) was new: the unique key makes a second insert a no-op."""
        cursor = self.run(
            "INSERT INTO cases VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (case_id, revision, agent_id, at, payload),
        )
        return cursor.rowcount == 1

    def insert_cleared(self, record: dict, clear_until: float, received_at: float, payload: str) -> bool:
        """True when this `cleared` observation was new (its id is its key)."""
        cursor = self.run(
            "INSERT INTO cleared VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (record["id"], record["agent_id"], record["case_id"], record["case_revision"], clear_until, received_at,
             payload),
        )  # fmt: skip
        return cursor.rowcount == 1

    def listed(self, agent_id: str, case_id: str, revision: int) -> dict[str, tuple[str, int]] | None:
        """name -> (sha256, bytes) of the files the stored, signed case lists; None if it is not stored."""
        row = self.run(  # a `cleared` observation's files name its id, revision 1
            "SELECT json FROM cases WHERE agent_id = ? AND case_id = ? AND revision = ? UNION ALL "
            "SELECT json FROM cleared WHERE agent_id = ? AND id = ? AND 1 = ?",
            (agent_id, case_id, revision) * 2,
        ).fetchone()
        if row is None:
            return None
        return {e["name"]: (e["sha256"], e["bytes"]) for e in json.loads(row[0])["evidence"]}

    def add_chunk(self, file: EvidenceFile, index: int, data: bytes) -> int:
        """Keep one chunk (once); how many chunks of its file are here."""
        self.run("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (*file[:4], index, data))
        return self.run(f"SELECT COUNT(*) FROM chunks WHERE {_FILE_WHERE}", file[:4]).fetchone()[0]

    def waiting_bytes(self, agent_id: str) -> int:
        """Bytes of `agent_id`'s chunks whose case has not arrived."""
        return self.run(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM chunks c WHERE agent_id = ? AND NOT EXISTS (SELECT 1 FROM "
            "cases k WHERE k.case_id = c.case_id AND k.revision = c.revision AND k.agent_id = c.agent_id) "
            "AND NOT EXISTS (SELECT 1 FROM cleared o WHERE o.id = c.case_id AND o.agent_id = c.agent_id)",
            (agent_id,),
        ).fetchone()[0]

    def chunks(self, file: EvidenceFile) -> list[bytes]:
        rows = self.run(f"SELECT data FROM chunks WHERE {_FILE_WHERE} ORDER BY idx", file[:4]).fetchall()
        return [bytes(row[0]) for row in rows]

    def evidence_stored(self, file: EvidenceFile) -> bool:
        return self.run(f"SELECT 1 FROM evidence WHERE {_FILE_WHERE}", file[:4]).fetchone() is not None

    def add_evidence(self, file: EvidenceFile, at: float) -> None:
        self.run("INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?)", (*file[:4], file.sha256, file.size, at))

    def wait_for_case(self, file: EvidenceFile, since: float) -> None:
        self.run("INSERT INTO waiting VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (*file, since))

    def drop_chunks(self, file: EvidenceFile) -> None:
        self.run(f"DELETE FROM chunks WHERE {_FILE_WHERE}", file[:4])
        self.run(f"DELETE FROM waiting WHERE {_FILE_WHERE}", file[:4])

    def waiting_for(self, agent_id: str, case_id: str, revision: int) -> list[EvidenceFile]:
        rows = self.run(
            "SELECT name, count, sha256, bytes FROM waiting WHERE agent_id = ? AND case_id = ? AND revision = ?",
            (agent_id, case_id, revision),
        ).fetchall()
        return [EvidenceFile(agent_id, case_id, revision, *row) for row in rows]

    def waiting_since(self, cutoff: float) -> list[EvidenceFile]:
        rows = self.run(
            "SELECT agent_id, case_id, revision, name, count, sha256, bytes FROM waiting WHERE since < ?", (cutoff,)
        ).fetchall()
        return [EvidenceFile(*row) for row in rows]

    def held(self, agent_id: str, case_id: str, sha256: str) -> tuple[int, str] | None:
        """(revision, name) of a stored file of this case with these bytes, whichever revision brought it."""
        row = self.run(
            "SELECT revision, name FROM evidence WHERE agent_id = ? AND case_id = ? AND sha256 = ? LIMIT 1",
            (agent_id, case_id, sha256),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def agent_key(self, agent_id: str) -> AgentKey | None:
        """The agent's enrolled key row (trusted or revoked); None if it was never enrolled."""
        row = self.run("SELECT pem, key_id, revoked_at FROM agent_keys WHERE agent_id = ?", (agent_id,)).fetchone()
        return AgentKey(row[0].encode(), row[1], row[2] is not None) if row else None

    def put_agent_key(self, agent_id: str, pem: bytes, key_id: str, at: float, origin: str) -> None:
        """Trust `pem` for the agent from now on: a new row, or the row's key replaced and un-revoked."""
        self.run(
            "INSERT INTO agent_keys VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (agent_id) DO UPDATE SET "
            "key_id = excluded.key_id, pem = excluded.pem, enrolled_at = excluded.enrolled_at, "
            "origin = excluded.origin, revoked_at = NULL",
            (agent_id, key_id, pem.decode(), at, origin),
        )

    def revoke_agent_key(self, agent_id: str, at: float) -> bool:
        """Stop trusting the agent's key; False when it had no trusted key."""
        cursor = self.run(
            "UPDATE agent_keys SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL", (at, agent_id)
        )
        return cursor.rowcount == 1

    def case_ids(self) -> list[tuple[str, int]]:
        return [tuple(r) for r in self.run("SELECT case_id, revision FROM cases ORDER BY received_at", ()).fetchall()]


class Store(Protocol):
    """Transactions over the receiver's tables. `transaction(lock)` serialises, across every receiver
    sharing the store, the transactions that name the same lock (a case id, a file)."""

    def transaction(self, lock: str) -> AbstractContextManager[Tx]: ...

    def direct(self) -> AbstractContextManager[Tx]:
        """Statements outside a transaction, each committed alone (reads, chunks not yet acknowledged)."""

    def case_stored(self, tx: Tx, record: dict, received_at: float) -> None:
        """A new case revision was inserted in `tx`: what else the store keeps of it (platform cases)."""

    def cleared_stored(self, tx: Tx, record: dict) -> None:
        """A new `cleared` observation was inserted in `tx`: its platform case is verified fixed."""

    def close(self) -> None: ...

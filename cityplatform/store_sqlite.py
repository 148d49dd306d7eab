"""The single-box store: one SQLite file in store_dir (WAL). Receivers sharing the file (one machine)
serialise their writes with BEGIN IMMEDIATE; there are no platform cases here (they need PostGIS)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cityplatform.store import Tx

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (case_id TEXT, revision INTEGER, agent_id TEXT, received_at REAL, json TEXT,
    PRIMARY KEY (case_id, revision));
CREATE TABLE IF NOT EXISTS chunks (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, idx INTEGER,
    data BLOB, PRIMARY KEY (agent_id, case_id, revision, name, idx));
CREATE TABLE IF NOT EXISTS evidence (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, sha256 TEXT,
    bytes INTEGER, received_at REAL, PRIMARY KEY (agent_id, case_id, revision, name));
CREATE TABLE IF NOT EXISTS waiting (agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, count INTEGER,
    sha256 TEXT, bytes INTEGER, since REAL, PRIMARY KEY (agent_id, case_id, revision, name));
CREATE TABLE IF NOT EXISTS cleared (id TEXT PRIMARY KEY, agent_id TEXT, case_id TEXT, case_revision INTEGER,
    clear_until REAL, received_at REAL, json TEXT);
CREATE INDEX IF NOT EXISTS cleared_case ON cleared (case_id);
CREATE TABLE IF NOT EXISTS agent_keys (agent_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, pem TEXT NOT NULL,
    enrolled_at REAL NOT NULL, origin TEXT NOT NULL, revoked_at REAL);
"""


class SqliteStore:
    """store_dir/platform.sqlite3; every transaction is IMMEDIATE and synchronous=FULL (stored means on disk
    before the ack goes out); chunks are written with synchronous=NORMAL (not yet acknowledged)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self, lock: str) -> Iterator[Tx]:
        """One file: BEGIN IMMEDIATE locks all of it, whatever `lock` names."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._db.execute)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def direct(self) -> Iterator[Tx]:
        with self._lock:
            yield Tx(self._db.execute)

    def case_stored(self, tx: Tx, record: dict, received_at: float) -> None:
        """A single box keeps each agent's cases apart: platform cases need the PostgreSQL store."""

    def cleared_stored(self, tx: Tx, record: dict) -> None:
        """Kept in the `cleared` table only: verifying platform cases needs the PostgreSQL store."""

    def close(self) -> None:
        with self._lock:
            self._db.close()

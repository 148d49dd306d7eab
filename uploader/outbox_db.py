"""The outbox's SQLite database, `outbox.sqlite3` in the outbox's folder: its tables, and the two ways
to open it: the outbox's own connection (WAL, synchronous=FULL, the schema brought up to date) and the
read-only ones of `outbox_stats` and `outbox_cases`, which never take the outbox's lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

DB_FILE = "outbox.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT NOT NULL, revision INTEGER NOT NULL, state TEXT NOT NULL,
    accepted_at REAL NOT NULL, sent_at REAL, acked_at REAL, attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (case_id, revision)
);
CREATE TABLE IF NOT EXISTS files (
    case_id TEXT NOT NULL, revision INTEGER NOT NULL, name TEXT NOT NULL, media_type TEXT NOT NULL,
    bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, priority INTEGER NOT NULL, chunks INTEGER NOT NULL,
    chunks_sent INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, sent_at REAL, accepted_at REAL NOT NULL,
    PRIMARY KEY (case_id, revision, name)
);
CREATE TABLE IF NOT EXISTS daily_bytes (day TEXT PRIMARY KEY, bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cases_state ON cases (state, accepted_at);
CREATE INDEX IF NOT EXISTS files_state ON files (state, priority, accepted_at);
"""


def open_outbox_db(root: Path) -> sqlite3.Connection:
    """The outbox's connection: autocommit (transactions are explicit), WAL, and every commit on disk."""
    db = sqlite3.connect(root / DB_FILE, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    if "kind" not in {row[1] for row in db.execute("PRAGMA table_info(cases)")}:  # before `cleared`
        db.execute("ALTER TABLE cases ADD COLUMN kind TEXT NOT NULL DEFAULT 'case'")
    return db


def open_reader(root: Path) -> sqlite3.Connection:
    """A query-only connection beside the outbox's: WAL lets it read while the outbox writes."""
    db = sqlite3.connect(root / DB_FILE, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA query_only=ON")
    return db

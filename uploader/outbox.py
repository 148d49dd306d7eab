"""A durable outbox: case JSON and evidence files on disk, their upload state in SQLite (WAL).

A case counts as accepted only when `accept` returns: its files are written to a temporary name,
fsynced and renamed, and its row is committed with synchronous=FULL. A crash at any point either
leaves no trace of the case or leaves it complete; `case.json` is renamed last, so a folder with a
case.json but no row (a crash between the rename and the commit) is adopted on the next start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CASE_FILE = "case.json"
PENDING, SENT = "pending", "sent"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    case_id     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    sent_at     REAL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (case_id, revision)
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, accepted_at);
"""


@dataclass(frozen=True)
class OutboxItem:
    """One accepted case revision and where its files are."""

    case_id: str
    revision: int
    folder: Path

    @property
    def case_path(self) -> Path:
        return self.folder / CASE_FILE

    def evidence_paths(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.name != CASE_FILE and not p.name.endswith(".tmp"))


class Outbox:
    """Cases waiting for upload. Safe to use from several threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases_dir = root / "cases"
        self.cases_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "outbox.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._recover()

    def accept(self, case_id: str, revision: int, case_json: bytes, evidence: dict[str, bytes]) -> bool:
        """Store a case durably. Returns False when this case revision was accepted before."""
        if "/" in case_id or case_id.startswith("."):
            raise ValueError(f"case id {case_id!r} cannot be a folder name")
        with self._lock:
            if self._row(case_id, revision):
                return False
            folder = self._folder(case_id, revision)
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in evidence.items():
                _write_atomic(folder / name, data)
            _write_atomic(folder / CASE_FILE, case_json)
            _fsync_dir(folder)
            _fsync_dir(folder.parent)
            self._db.execute(
                "INSERT INTO outbox (case_id, revision, state, accepted_at) VALUES (?, ?, ?, ?)",
                (case_id, revision, PENDING, time.time()),
            )
            return True

    def pending(self, limit: int = 50) -> list[OutboxItem]:
        """Unsent revisions, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id, revision FROM outbox WHERE state = ? ORDER BY accepted_at LIMIT ?",
                (PENDING, limit),
            ).fetchall()
        return [OutboxItem(cid, rev, self._folder(cid, rev)) for cid, rev in rows]

    def mark_sent(self, item: OutboxItem) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state = ?, sent_at = ? WHERE case_id = ? AND revision = ?",
                (SENT, time.time(), item.case_id, item.revision),
            )

    def note_attempt(self, item: OutboxItem) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE case_id = ? AND revision = ?",
                (item.case_id, item.revision),
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        return {PENDING: 0, SENT: 0} | dict(rows)

    def items(self) -> list[OutboxItem]:
        """Every accepted revision, in order of acceptance."""
        with self._lock:
            rows = self._db.execute("SELECT case_id, revision FROM outbox ORDER BY accepted_at").fetchall()
        return [OutboxItem(cid, rev, self._folder(cid, rev)) for cid, rev in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _folder(self, case_id: str, revision: int) -> Path:
        return self.cases_dir / case_id / f"r{revision}"

    def _row(self, case_id: str, revision: int) -> tuple | None:
        return self._db.execute(
            "SELECT state FROM outbox WHERE case_id = ? AND revision = ?", (case_id, revision)
        ).fetchone()

    def _recover(self) -> None:
        """Remove half-written files; adopt complete case folders that have no row yet."""
        for folder in self.cases_dir.glob("*/r*"):
            for tmp in folder.glob("*.tmp"):
                tmp.unlink()
            case_id, revision = folder.parent.name, int(folder.name[1:])
            if self._row(case_id, revision):
                continue
            case_file = folder / CASE_FILE
            if case_file.exists() and _is_json(case_file):
                log.warning("outbox: adopting case %s r%d written before a crash", case_id, revision)
                self._db.execute(
                    "INSERT INTO outbox (case_id, revision, state, accepted_at) VALUES (?, ?, ?, ?)",
                    (case_id, revision, PENDING, case_file.stat().st_mtime),
                )
            else:
                log.warning("outbox: removing incomplete case folder %s", folder)
                shutil.rmtree(folder)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
        return True
    except ValueError:
        return False

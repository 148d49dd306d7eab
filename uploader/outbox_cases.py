"""A read-only listing of the outbox's recent case revisions and their files' upload states, for the
box's page. Its own SQLite connection (query_only), as `outbox_stats`: a page never holds the outbox's
lock while the sender writes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from uploader.outbox_db import open_reader


@dataclass(frozen=True)
class OutboxCase:
    """One case revision: its upload state, when it was accepted, its folder and each file's state."""

    case_id: str
    revision: int
    state: str
    accepted_at: float
    folder: Path
    files: dict[str, str] = field(default_factory=dict)


class OutboxCases:
    """Reads `outbox.sqlite3` under `root` (the folder an `Outbox` owns)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._db = open_reader(root)
        self._lock = threading.Lock()

    def recent(self, limit: int = 200, since: float = 0.0, until: float | None = None) -> list[OutboxCase]:
        """The newest case revisions accepted between `since` and `until` (epoch seconds), newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id, revision, state, accepted_at FROM cases WHERE accepted_at >= ? AND accepted_at <= ?"
                " ORDER BY accepted_at DESC LIMIT ?",
                (since, until if until is not None else float("inf"), limit),
            ).fetchall()
        return [self._case(*row) for row in rows]

    def get(self, case_id: str, revision: int) -> OutboxCase | None:
        with self._lock:
            row = self._db.execute(
                "SELECT case_id, revision, state, accepted_at FROM cases WHERE case_id = ? AND revision = ?",
                (case_id, revision),
            ).fetchone()
        return self._case(*row) if row else None

    def _case(self, case_id: str, revision: int, state: str, accepted_at: float) -> OutboxCase:
        with self._lock:
            files = self._db.execute(
                "SELECT name, state FROM files WHERE case_id = ? AND revision = ?", (case_id, revision)
            ).fetchall()
        folder = self.root / "cases" / case_id / f"r{revision}"
        return OutboxCase(case_id, revision, state, accepted_at, folder, dict(files))

    def close(self) -> None:
        with self._lock:
            self._db.close()

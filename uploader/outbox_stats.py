"""A read-only view of the outbox's database for metrics and heartbeats.

It has its own SQLite connection (query_only), so a scrape never holds the outbox's lock while the
sender and the decoder threads write; WAL lets it read while they do.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from uploader.outbox_db import open_reader
from uploader.revisions import ACKED, PENDING, SENT


@dataclass(frozen=True)
class OutboxDepth:
    """Case revisions and evidence files by upload state, and how long the oldest waits for its ack."""

    cases: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    file_bytes: dict[str, int] = field(default_factory=dict)
    oldest_unacked_s: float | None = None  # None: nothing is waiting


class OutboxStats:
    """Reads `outbox.sqlite3` under `root` (the folder an `Outbox` owns)."""

    def __init__(self, root: Path) -> None:
        self._db = open_reader(root)
        self._lock = threading.Lock()

    def depth(self) -> OutboxDepth:
        base = dict.fromkeys((PENDING, SENT, ACKED), 0)
        with self._lock:
            cases = self._db.execute("SELECT state, COUNT(*) FROM cases GROUP BY state").fetchall()
            files = self._db.execute("SELECT state, COUNT(*), SUM(bytes) FROM files GROUP BY state").fetchall()
            oldest = self._db.execute(
                "SELECT MIN(t) FROM (SELECT MIN(accepted_at) AS t FROM cases WHERE state IN (?, ?) "
                "UNION ALL SELECT MIN(accepted_at) FROM files WHERE state IN (?, ?))",
                (PENDING, SENT, PENDING, SENT),
            ).fetchone()[0]
        return OutboxDepth(
            cases=base | dict(cases),
            files=base | {state: n for state, n, _ in files},
            file_bytes=base | {state: int(b or 0) for state, _, b in files},
            oldest_unacked_s=None if oldest is None else max(0.0, time.time() - oldest),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

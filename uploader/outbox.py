"""A durable outbox: case JSON and evidence files on disk, their upload state in SQLite (WAL).

A case counts as accepted only when `accept` returns: its files are written to a temporary name,
fsynced and renamed, and its rows are committed with synchronous=FULL. A crash at any point either
leaves no trace of the case or leaves it complete; `case.json` is renamed last, so a folder with a
case.json but no row (a crash between the rename and the commit) is adopted on the next start.

Each case revision and each of its files moves pending -> sent (broker PUBACK) -> acked (the
platform's acknowledgement). A case leaves the disk only when it and all its files are acked, or
when a newer revision replaces it (uploader/revisions.py: which files a revision need not send
again, and when an older revision's folder may go); its row stays, so that the same case accepted
again (a re-run of the same footage) is not sent again. `cleared` observations are kept as cases, sent after them.

Beside it: `outbox_units` (what it hands the sender), `outbox_db` (its tables and connections) and
`quota` (what goes when the disk is full).
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from protocol.files import complete_folder, fsync_dir, remove_partial_files, tree_bytes, write_atomic
from protocol.messages import chunk_count
from uploader import revisions
from uploader.outbox_db import open_outbox_db
from uploader.outbox_units import CASE_FILE, PRIORITY_VIDEO, CaseUnit, FileUnit, OutboxItem, file_priority
from uploader.quota import enforce_quota
from uploader.revisions import ACKED, DEFERRED, EVICTED, PENDING, REJECTED, SENT

log = logging.getLogger(__name__)


class Outbox:
    """Cases waiting for upload. Safe to use from several threads."""

    def __init__(self, root: Path, quota_bytes: int | None = None, hard_limit_bytes: int | None = None) -> None:
        self.root = root
        self.quota_bytes = quota_bytes
        self.hard_limit_bytes = hard_limit_bytes or quota_bytes
        self.cases_dir = root / "cases"
        self.cases_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = open_outbox_db(root)
        self._recover()

    # --- accepting -----------------------------------------------------------------------------

    def accept(
        self, case_id: str, revision: int, case_json: bytes, evidence: dict[str, bytes], kind: str = "case"
    ) -> bool:
        """Store a case (or a `cleared` observation) durably. Returns False when it was accepted before."""
        if "/" in case_id or case_id.startswith("."):
            raise ValueError(f"case id {case_id!r} cannot be a folder name")
        with self._lock:
            if self._case_state(case_id, revision):
                return False
            folder = self._folder(case_id, revision)
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in evidence.items():
                write_atomic(folder / name, data)
            write_atomic(folder / CASE_FILE, case_json)
            fsync_dir(folder)
            fsync_dir(folder.parent)
            self._insert(case_id, revision, evidence, time.time(), kind)
            self._remove_done(case_id)  # older revisions this one replaced before they were sent
        if self.quota_bytes is not None:
            enforce_quota(self, self.quota_bytes, self.hard_limit_bytes or self.quota_bytes)
        return True

    def _insert(self, case_id: str, revision: int, files: dict[str, bytes], accepted_at: float, kind: str) -> None:
        """The rows of a case whose files are on disk; `files` are their bytes (hashed here, not read again)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO cases (case_id, revision, state, accepted_at, kind) VALUES (?, ?, ?, ?, ?)",
                (case_id, revision, PENDING, accepted_at, kind),
            )
            for name, data in sorted(files.items()):
                media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
                sha256 = hashlib.sha256(data).hexdigest()
                state = revisions.state_for_new_file(self._db, case_id, revision, sha256)  # sent before?
                row = (case_id, revision, name, media_type, len(data), sha256, file_priority(media_type))
                self._db.execute(
                    "INSERT INTO files (case_id, revision, name, media_type, bytes, sha256, priority, chunks, state,"
                    " accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row, chunk_count(len(data)), state, accepted_at),
                )
            revisions.supersede_older(self._db, case_id, revision)

    # --- sending ---------------------------------------------------------------------------------

    def next_unit(self, evidence_allowed: bool = True) -> CaseUnit | FileUnit | None:
        """The most urgent thing to send: case JSONs (new before updates, `cleared` last), then files by priority."""
        with self._lock:
            row = self._db.execute(
                "SELECT case_id, revision, kind FROM cases WHERE state = ? "
                "ORDER BY kind = 'cleared', revision > 1, accepted_at LIMIT 1",
                (PENDING,),
            ).fetchone()
            if row:
                return CaseUnit(row[0], row[1], self._folder(row[0], row[1]) / CASE_FILE, row[2])
            if not evidence_allowed:
                return None
            row = self._db.execute(
                "SELECT case_id, revision, name, media_type, bytes, sha256, chunks, chunks_sent, priority FROM files"
                " WHERE state = ? ORDER BY priority, accepted_at, name LIMIT 1",
                (PENDING,),
            ).fetchone()
        if not row:
            return None
        cid, rev, name, media_type, size, sha, chunks, sent, priority = row
        return FileUnit(cid, rev, name, media_type, self._folder(cid, rev) / name, size, sha, chunks, sent, priority)

    def case_sent(self, unit: CaseUnit) -> None:
        self._update_case(unit.case_id, unit.revision, SENT, "sent_at", only_from=(PENDING,))

    def chunk_sent(self, unit: FileUnit, index: int) -> None:
        """Record a chunk the broker acknowledged, so that a broken transfer resumes after it.

        Written without waiting for the disk (synchronous=NORMAL): a power cut may forget the last
        few chunks' progress, which only means sending them again; accepted cases are always FULL."""
        state_after = SENT if index + 1 >= unit.chunks else PENDING
        with self._lock, self._relaxed():
            self._db.execute(
                "UPDATE files SET chunks_sent = ?, state = ?, sent_at = ? WHERE case_id = ? AND revision = ? "
                "AND name = ? AND state = ?",
                (index + 1, state_after, time.time(), unit.case_id, unit.revision, unit.name, PENDING),
            )

    def note_attempt(self, unit: CaseUnit) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE cases SET attempts = attempts + 1 WHERE case_id = ? AND revision = ?",
                (unit.case_id, unit.revision),
            )

    def defer_file(self, unit: FileUnit) -> None:
        """Keep a file on the box for now (budget exhausted); `release_deferred` queues it again."""
        with self._lock:
            self._db.execute(
                "UPDATE files SET state = ? WHERE case_id = ? AND revision = ? AND name = ? AND state = ?",
                (DEFERRED, unit.case_id, unit.revision, unit.name, PENDING),
            )

    def release_deferred(self) -> int:
        with self._lock:
            return self._db.execute("UPDATE files SET state = ? WHERE state = ?", (PENDING, DEFERRED)).rowcount

    def resend_unacked(self, older_than_s: float) -> int:
        """Sent long ago and never acknowledged (the broker may have lost it): send again."""
        cutoff = time.time() - older_than_s
        with self._lock, self._db:
            n = self._db.execute(
                "UPDATE cases SET state = ? WHERE state = ? AND sent_at < ?", (PENDING, SENT, cutoff)
            ).rowcount
            n += self._db.execute(
                "UPDATE files SET state = ?, chunks_sent = 0 WHERE state = ? AND sent_at < ?", (PENDING, SENT, cutoff)
            ).rowcount
        return n

    # --- acknowledgements --------------------------------------------------------------------------

    def acknowledge(self, case_id: str, revision: int, kind: str, name: str | None, status: str) -> None:
        """Apply a platform acknowledgement; delete the folders of the case that nothing needs any more."""
        new_state = REJECTED if status == "rejected" else ACKED
        with self._lock:
            with self._db:  # one transaction: a file and the revisions that carry it change together
                self._db.execute("BEGIN IMMEDIATE")
                if kind in ("case", "cleared"):
                    self._db.execute(
                        "UPDATE cases SET state = ?, acked_at = ? WHERE case_id = ? AND revision = ? AND state != ?",
                        (new_state, time.time(), case_id, revision, ACKED),
                    )
                    if new_state == ACKED:
                        revisions.case_acknowledged(self._db, case_id, revision)
                else:
                    changed = self._db.execute(
                        "UPDATE files SET state = ? WHERE case_id = ? AND revision = ? AND name = ? AND state != ?",
                        (new_state, case_id, revision, name, ACKED),
                    ).rowcount
                    if changed:
                        revisions.file_settled(self._db, case_id, revision, name or "", new_state)
            self._remove_done(case_id)

    # --- budgets and quota --------------------------------------------------------------------------

    def bytes_today(self, day: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT bytes FROM daily_bytes WHERE day = ?", (day,)).fetchone()
        return row[0] if row else 0

    def add_bytes(self, day: str, n: int) -> None:
        with self._lock, self._relaxed():
            self._db.execute(
                "INSERT INTO daily_bytes (day, bytes) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET bytes = bytes + ?",
                (day, n, n),
            )

    def disk_bytes(self) -> int:
        return tree_bytes(self.cases_dir)

    def clips_oldest_first(self) -> list[tuple[str, int, str, int]]:
        """(case id, revision, name, bytes) of every clip still on disk and not yet acknowledged."""
        with self._lock:
            return self._db.execute(
                "SELECT case_id, revision, name, bytes FROM files WHERE priority = ? AND state IN (?, ?, ?) "
                "ORDER BY accepted_at",
                (PRIORITY_VIDEO, PENDING, DEFERRED, SENT),
            ).fetchall()

    def evict_file(self, case_id: str, revision: int, name: str) -> None:
        """Drop a file for lack of disk; a later revision that carried its bytes sends its own copy."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE files SET state = ? WHERE case_id = ? AND revision = ? AND name = ?",
                (EVICTED, case_id, revision, name),
            )
            revisions.file_settled(self._db, case_id, revision, name, EVICTED)
        (self._folder(case_id, revision) / name).unlink(missing_ok=True)

    def evict_case(self, case_id: str, revision: int) -> None:
        """Drop a whole revision for lack of disk (the rows first: a crash leaves no sendable unit without
        its file)."""
        with self._lock:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                revisions.evict_revision(self._db, case_id, revision)
            self._delete_folder(case_id, revision)

    def obsolete_items(self) -> list[OutboxItem]:
        """Revisions on disk that a newer revision of their case replaces, oldest first."""
        with self._lock:
            rows = revisions.obsolete_revisions(self._db)
        return [OutboxItem(cid, rev, self._folder(cid, rev)) for cid, rev in rows if self._folder(cid, rev).exists()]

    # --- inspection ---------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM cases GROUP BY state").fetchall()
        return {PENDING: 0, SENT: 0, ACKED: 0} | dict(rows)

    def unsent(self) -> int:
        """Case revisions and files the broker has not yet acknowledged (PUBACK)."""
        with self._lock:
            cases = self._db.execute("SELECT COUNT(*) FROM cases WHERE state = ?", (PENDING,)).fetchone()
            files = self._db.execute("SELECT COUNT(*) FROM files WHERE state = ?", (PENDING,)).fetchone()
        return cases[0] + files[0]

    def items(self) -> list[OutboxItem]:
        """Case revisions still on disk (not yet fully acknowledged), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id, revision FROM cases WHERE state IN (?, ?, ?) ORDER BY accepted_at",
                (PENDING, SENT, REJECTED),
            ).fetchall()
        return [OutboxItem(cid, rev, self._folder(cid, rev)) for cid, rev in rows]

    def file_state(self, case_id: str, revision: int, name: str) -> tuple[str, int] | None:
        with self._lock:
            return self._db.execute(
                "SELECT state, chunks_sent FROM files WHERE case_id = ? AND revision = ? AND name = ?",
                (case_id, revision, name),
            ).fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- internals ------------------------------------------------------------------------------------

    @contextmanager
    def _relaxed(self) -> Iterator[None]:
        """Progress bookkeeping that may be lost in a power cut without losing a case."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def _folder(self, case_id: str, revision: int) -> Path:
        return self.cases_dir / case_id / f"r{revision}"

    def _remove_done(self, case_id: str) -> None:
        """Delete the folders of the case's revisions that nothing needs any more (caller holds the lock)."""
        for revision in revisions.removable_revisions(self._db, case_id):
            self._delete_folder(case_id, revision)

    def _delete_folder(self, case_id: str, revision: int) -> None:
        """A revision's folder, and its case's folder once that is empty (caller holds the lock)."""
        shutil.rmtree(self._folder(case_id, revision), ignore_errors=True)
        with suppress(OSError):  # another revision is still there (or the folder went before)
            (self.cases_dir / case_id).rmdir()

    def _case_state(self, case_id: str, revision: int) -> str | None:
        row = self._db.execute(
            "SELECT state FROM cases WHERE case_id = ? AND revision = ?", (case_id, revision)
        ).fetchone()
        return row[0] if row else None

    def _update_case(self, case_id: str, revision: int, state: str, stamp: str, only_from: tuple[str, ...]) -> None:
        marks = ",".join("?" * len(only_from))
        with self._lock:
            self._db.execute(
                f"UPDATE cases SET state = ?, {stamp} = ? WHERE case_id = ? AND revision = ? AND state IN ({marks})",
                (state, time.time(), case_id, revision, *only_from),
            )

    def _recover(self) -> None:
        """Remove half-written files; adopt complete case folders that have no row yet; delete what a
        crash kept from being deleted (folders of revisions nothing needs, empty case folders)."""
        for folder in self.cases_dir.glob("*/r*"):
            remove_partial_files(folder)
            case_id, revision = folder.parent.name, int(folder.name[1:])
            if self._case_state(case_id, revision):
                continue
            if (files := complete_folder(folder, CASE_FILE)) is not None:
                log.warning("outbox: adopting case %s r%d written before a crash", case_id, revision)
                kind = "cleared" if "case_revision" in json.loads((folder / CASE_FILE).read_bytes()) else "case"
                self._insert(case_id, revision, files, (folder / CASE_FILE).stat().st_mtime, kind)
            else:
                log.warning("outbox: removing incomplete case folder %s", folder)
                shutil.rmtree(folder)
        for case_folder in self.cases_dir.iterdir():
            self._remove_done(case_folder.name)
            if case_folder.is_dir() and not any(case_folder.iterdir()):
                case_folder.rmdir()

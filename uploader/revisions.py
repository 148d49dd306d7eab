"""How the revisions of one case share their files and leave the disk, as rows of the outbox's tables.

A case's revision 2 (its clip) repeats revision 1's snapshot and crop byte for byte. The platform
finds a revision's evidence by (case id, sha256), whichever revision carried the bytes, so a file
whose sha256 an earlier revision of the case has already sent (or is sending) is not sent again: its
row is `carried` and follows that earlier row (acked with it; sent itself if that one is evicted or
rejected, from its own copy, which stays on disk until then).

A revision's folder goes once nothing still needs it: its case JSON acknowledged, or a newer
revision's (the platform has the case's current state), and none of its files still owed to the
platform from that folder. Only acknowledged or replaced-and-settled revisions are deleted, so a
power cut at any moment keeps every accepted case; a replaced revision still waiting may go earlier
when the disk is short (uploader/quota.py), as its newer revision holds the case's current evidence.
"""

from __future__ import annotations

import sqlite3

PENDING, SENT, ACKED = "pending", "sent", "acked"
SUPERSEDED, REJECTED, DEFERRED, EVICTED = "superseded", "rejected", "deferred", "evicted"
CARRIED = "carried"  # the same bytes go (or went) with an earlier revision of the case
DONE = (ACKED, EVICTED, SUPERSEDED)  # file states that need nothing more from the revision's folder

# an earlier file that the platform has or is receiving: sent, acknowledged, or part-way through
_CARRIER = "(state IN ('sent', 'acked') OR (state = 'pending' AND chunks_sent > 0))"


def state_for_new_file(db: sqlite3.Connection, case_id: str, revision: int, sha256: str) -> str:
    """The state a new revision's file starts in: acked or carried when an earlier revision has it."""
    row = db.execute(
        f"SELECT state FROM files WHERE case_id = ? AND revision < ? AND sha256 = ? AND {_CARRIER} "
        "ORDER BY state = 'acked' DESC LIMIT 1",
        (case_id, revision, sha256),
    ).fetchone()
    if row is None:
        return PENDING
    return ACKED if row[0] == ACKED else CARRIED


def supersede_older(db: sqlite3.Connection, case_id: str, revision: int) -> None:
    """A newer revision replaces older ones that were never sent, and their files not yet on their way;
    a file that is part-way through and that the new revision carries goes on."""
    db.execute(
        "UPDATE cases SET state = ? WHERE case_id = ? AND revision < ? AND state = ?",
        (SUPERSEDED, case_id, revision, PENDING),
    )
    db.execute(
        "UPDATE files SET state = ? WHERE case_id = ? AND revision < ? AND state IN (?, ?, ?) AND NOT ("
        "state = ? AND chunks_sent > 0 AND sha256 IN "
        "(SELECT sha256 FROM files WHERE case_id = ? AND revision = ? AND state = ?))",
        (SUPERSEDED, case_id, revision, PENDING, DEFERRED, CARRIED, PENDING, case_id, revision, CARRIED),
    )


def file_settled(db: sqlite3.Connection, case_id: str, revision: int, name: str, state: str) -> None:
    """A file reached `state`: the later revisions that carry its bytes follow it. Acknowledged: they
    are too. Evicted or rejected: the newest of them sends its own copy, the older ones are not needed."""
    row = db.execute(
        "SELECT sha256 FROM files WHERE case_id = ? AND revision = ? AND name = ?", (case_id, revision, name)
    ).fetchone()
    if row is None:
        return
    carried = "case_id = ? AND revision > ? AND sha256 = ? AND state = ?"
    params = (case_id, revision, row[0], CARRIED)
    if state == ACKED:
        db.execute(f"UPDATE files SET state = ? WHERE {carried}", (ACKED, *params))
        return
    newest = db.execute(f"SELECT MAX(revision) FROM files WHERE {carried}", params).fetchone()[0]
    if newest is None:
        return
    db.execute(
        f"UPDATE files SET state = CASE WHEN revision = ? THEN ? ELSE ? END, chunks_sent = 0 WHERE {carried}",
        (newest, PENDING, SUPERSEDED, *params),
    )


def case_acknowledged(db: sqlite3.Connection, case_id: str, revision: int) -> None:
    """The platform has this revision's record: an older one still awaiting its acknowledgement is not
    worth sending again (its unacknowledged files still are)."""
    db.execute(
        "UPDATE cases SET state = ? WHERE case_id = ? AND revision < ? AND state IN (?, ?)",
        (SUPERSEDED, case_id, revision, PENDING, SENT),
    )


def removable_revisions(db: sqlite3.Connection, case_id: str) -> list[int]:
    """Revisions of the case whose folders nothing needs any more: the record acknowledged, or a newer
    revision's acknowledged (the platform has the case's current state), and no file owed from them."""
    marks = ",".join("?" * len(DONE))
    rows = db.execute(
        "SELECT c.revision FROM cases c WHERE c.case_id = ? AND (c.state = ? OR EXISTS (SELECT 1 FROM cases n"
        "  WHERE n.case_id = c.case_id AND n.revision > c.revision AND n.state = ?))"
        f" AND NOT EXISTS (SELECT 1 FROM files f WHERE f.case_id = c.case_id AND f.revision = c.revision"
        f"  AND f.state NOT IN ({marks}))",
        (case_id, ACKED, ACKED, *DONE),
    ).fetchall()
    return [r[0] for r in rows]


def obsolete_revisions(db: sqlite3.Connection) -> list[tuple[str, int]]:
    """(case id, revision) of revisions a newer revision of their case replaces, oldest first: the first
    to go when the disk is short, since the newer revision holds the case's current evidence."""
    return db.execute(
        "SELECT c.case_id, c.revision FROM cases c WHERE c.state != ? AND EXISTS (SELECT 1 FROM cases n"
        " WHERE n.case_id = c.case_id AND n.revision > c.revision AND n.state != ?) ORDER BY c.accepted_at",
        (EVICTED, EVICTED),
    ).fetchall()


def evict_revision(db: sqlite3.Connection, case_id: str, revision: int) -> None:
    """Mark a revision whose folder is about to go: what it still owed is evicted, later revisions that
    carried its bytes send their own."""
    owed = db.execute(
        f"SELECT name FROM files WHERE case_id = ? AND revision = ? AND state NOT IN ({','.join('?' * len(DONE))})",
        (case_id, revision, *DONE),
    ).fetchall()
    for (name,) in owed:
        db.execute(
            "UPDATE files SET state = ? WHERE case_id = ? AND revision = ? AND name = ?",
            (EVICTED, case_id, revision, name),
        )
        file_settled(db, case_id, revision, name, EVICTED)
    db.execute(
        "UPDATE cases SET state = ? WHERE case_id = ? AND revision = ? AND state IN (?, ?, ?)",
        (EVICTED, case_id, revision, PENDING, SENT, REJECTED),
    )

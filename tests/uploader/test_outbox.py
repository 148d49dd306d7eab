"""The outbox keeps every accepted case across crashes and never stores one twice."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from uploader import Outbox


def accept(outbox: Outbox, case_id: str, revision: int = 1) -> bool:
    record = json.dumps({"id": case_id, "revision": revision}).encode()
    return outbox.accept(case_id, revision, record, {"snapshot.jpg": b"\xff\xd8jpeg" + case_id.encode()})


def test_accept_is_durable_and_idempotent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    assert accept(outbox, "c1")
    assert not accept(outbox, "c1")  # the same revision again is not stored twice
    assert accept(outbox, "c1", revision=2)
    outbox.close()
    reopened = Outbox(tmp_path)
    items = reopened.pending()
    assert [(i.case_id, i.revision) for i in items] == [("c1", 1), ("c1", 2)]
    assert items[0].evidence_paths()[0].read_bytes() == b"\xff\xd8jpegc1"
    assert json.loads(items[0].case_path.read_bytes())["id"] == "c1"
    assert sqlite3.connect(tmp_path / "outbox.sqlite3").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sent_items_leave_pending(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    for n in range(3):
        accept(outbox, f"c{n}")
    outbox.mark_sent(outbox.pending()[0])
    assert [i.case_id for i in outbox.pending()] == ["c1", "c2"]
    assert outbox.counts() == {"pending": 2, "sent": 1}


def test_recovery_adopts_complete_folders_and_drops_partial_ones(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "kept")
    outbox.close()
    # a crash after case.json was renamed into place but before the row was committed
    done = tmp_path / "cases" / "adopted" / "r1"
    done.mkdir(parents=True)
    (done / "snapshot.jpg").write_bytes(b"jpeg")
    (done / "case.json").write_text('{"id": "adopted"}')
    # a crash while the evidence was still being written
    partial = tmp_path / "cases" / "partial" / "r1"
    partial.mkdir(parents=True)
    (partial / "snapshot.jpg.tmp").write_bytes(b"jp")
    recovered = Outbox(tmp_path)
    assert sorted(i.case_id for i in recovered.pending()) == ["adopted", "kept"]
    assert not partial.exists()

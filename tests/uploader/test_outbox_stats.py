"""The outbox's depth by state as metrics read it, from a real outbox in SQLite."""

from __future__ import annotations

import time
from pathlib import Path

from protocol.signing import Signer
from tests.upload_fixtures import make_cases
from uploader import Outbox
from uploader.outbox_stats import OutboxStats


def test_depth_counts_cases_and_evidence_bytes_by_state_and_the_oldest_wait(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    stats = OutboxStats(outbox.root)
    empty = stats.depth()
    assert empty.cases == {"pending": 0, "sent": 0, "acked": 0} and empty.oldest_unacked_s is None
    signer = Signer.load_or_create(tmp_path / "keys")
    ids = make_cases(outbox, signer, 3, clip_bytes=40_000)
    time.sleep(0.05)
    unit = outbox.next_unit()
    outbox.case_sent(unit)
    outbox.acknowledge(ids[0], 1, "case", None, "stored")
    depth = stats.depth()
    assert depth.cases["pending"] == 2 and depth.cases["acked"] == 1
    assert depth.files["pending"] == 6  # a snapshot and a clip each
    on_disk = sum(p.stat().st_size for p in outbox.cases_dir.rglob("*") if p.is_file() and p.name != "case.json")
    assert depth.file_bytes["pending"] == on_disk
    assert depth.oldest_unacked_s is not None and 0.05 <= depth.oldest_unacked_s < 30
    stats.close()
    outbox.close()

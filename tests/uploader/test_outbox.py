"""The outbox keeps every accepted case across crashes, never stores one twice, and hands out the
most urgent unit first."""

from __future__ import annotations

import json
from pathlib import Path

from protocol.messages import CHUNK_BYTES
from uploader import Outbox
from uploader.outbox import CaseUnit, FileUnit


def accept(outbox: Outbox, case_id: str, revision: int = 1, **files: bytes) -> bool:
    record = json.dumps({"id": case_id, "revision": revision}).encode()
    evidence = {name.replace("_", "."): data for name, data in files.items()} or {
        "snapshot.jpg": b"\xff\xd8" + case_id.encode()
    }
    return outbox.accept(case_id, revision, record, evidence)


def drain(outbox: Outbox) -> list[str]:
    """Send everything as a perfect broker and platform would; returns the order of units."""
    order = []
    while unit := outbox.next_unit():
        if isinstance(unit, CaseUnit):
            order.append(f"case {unit.case_id} r{unit.revision}")
            outbox.case_sent(unit)
            outbox.acknowledge(unit.case_id, unit.revision, "case", None, "stored")
        else:
            order.append(f"{unit.name} {unit.case_id} #{unit.next_chunk}")
            outbox.chunk_sent(unit, unit.next_chunk)
            if unit.next_chunk + 1 == unit.chunks:
                outbox.acknowledge(unit.case_id, unit.revision, "evidence", unit.name, "stored")
    return order


def test_accept_is_durable_and_idempotent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    assert accept(outbox, "c1")
    assert not accept(outbox, "c1")  # the same revision again is not stored twice
    outbox.close()
    reopened = Outbox(tmp_path)
    unit = reopened.next_unit()
    assert isinstance(unit, CaseUnit) and json.loads(unit.path.read_bytes())["id"] == "c1"


def test_priorities_new_cases_then_updates_then_snapshots_then_clips(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    clip = b"v" * (CHUNK_BYTES + 10)  # two chunks
    accept(outbox, "old", clip_mp4=clip, snapshot_jpg=b"j")
    outbox.case_sent(outbox.next_unit())  # "old" r1 went out before the rest arrived
    accept(outbox, "old", revision=2, clip_mp4=clip, snapshot_jpg=b"j2")  # its files replace r1's unsent ones
    accept(outbox, "new", clip_mp4=clip, snapshot_jpg=b"j3")
    assert drain(outbox) == [
        "case new r1",
        "case old r2",
        "snapshot.jpg old #0",
        "snapshot.jpg new #0",
        "clip.mp4 old #0",
        "clip.mp4 old #1",
        "clip.mp4 new #0",
        "clip.mp4 new #1",
    ]
    assert outbox.file_state("old", 1, "clip.mp4") == ("superseded", 0)


def test_newer_revision_supersedes_unsent_older_one(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "c1")
    accept(outbox, "c1", revision=2)
    assert [u for u in drain(outbox) if u.startswith("case")] == ["case c1 r2"]


def test_acknowledged_case_leaves_the_disk_but_is_remembered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "c1")
    drain(outbox)
    assert not (tmp_path / "cases" / "c1" / "r1").exists()
    assert outbox.counts()["acked"] == 1
    assert not accept(outbox, "c1")  # the same footage processed again sends nothing


def test_transfer_resumes_from_the_last_acknowledged_chunk(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "c1", clip_mp4=b"x" * (3 * CHUNK_BYTES))
    outbox.case_sent(outbox.next_unit())
    unit = outbox.next_unit()
    assert isinstance(unit, FileUnit) and unit.chunks == 3
    outbox.chunk_sent(unit, 0)
    outbox.close()  # the link (or the agent) dies here
    unit = Outbox(tmp_path).next_unit()
    assert unit.name == "clip.mp4" and unit.next_chunk == 1


def test_unacknowledged_items_are_sent_again(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "c1")
    outbox.case_sent(outbox.next_unit())
    assert isinstance(outbox.next_unit(), FileUnit)
    assert outbox.resend_unacked(older_than_s=0) == 1
    assert isinstance(outbox.next_unit(), CaseUnit)


def test_recovery_adopts_complete_folders_and_drops_partial_ones(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "kept")
    outbox.close()
    # a crash after case.json was renamed into place but before the rows were committed
    done = tmp_path / "cases" / "adopted" / "r1"
    done.mkdir(parents=True)
    (done / "snapshot.jpg").write_bytes(b"jpeg")
    (done / "case.json").write_text('{"id": "adopted"}')
    # a crash while the evidence was still being written
    partial = tmp_path / "cases" / "partial" / "r1"
    partial.mkdir(parents=True)
    (partial / "snapshot.jpg.tmp").write_bytes(b"jp")
    recovered = Outbox(tmp_path)
    assert sorted(i.case_id for i in recovered.items()) == ["adopted", "kept"]
    assert recovered.file_state("adopted", 1, "snapshot.jpg") == ("pending", 0)
    assert not partial.exists()


def test_disk_quota_evicts_oldest_clips_first_and_keeps_cases(tmp_path: Path, caplog) -> None:
    clip = b"c" * 100_000
    outbox = Outbox(tmp_path, quota_bytes=350_000, hard_limit_bytes=10_000_000)
    for n in range(5):
        accept(outbox, f"c{n}", clip_mp4=clip, snapshot_jpg=b"j" * 1000)
    evicted = [n for n in range(5) if outbox.file_state(f"c{n}", 1, "clip.mp4")[0] == "evicted"]
    assert evicted == [0, 1]  # the oldest clips went; the newest three fit
    assert all((tmp_path / "cases" / f"c{n}" / "r1" / "case.json").exists() for n in range(5))
    assert all((tmp_path / "cases" / f"c{n}" / "r1" / "snapshot.jpg").exists() for n in range(5))
    assert outbox.disk_bytes() <= 350_000
    assert "evicted clip" in caplog.text


def test_hard_limit_drops_oldest_cases_loudly(tmp_path: Path, caplog) -> None:
    outbox = Outbox(tmp_path, quota_bytes=1_000, hard_limit_bytes=25_000)
    for n in range(4):
        accept(outbox, f"c{n}", snapshot_jpg=b"j" * 10_000)
    assert [i.case_id for i in outbox.items()] == ["c2", "c3"]
    assert "OUTBOX FULL" in caplog.text and "DROPPED unacknowledged case c0" in caplog.text


def send_all_but_acks(outbox: Outbox) -> None:
    """Everything pending reaches the broker (PUBACK); the platform has acknowledged none of it yet."""
    while unit := outbox.next_unit():
        if isinstance(unit, CaseUnit):
            outbox.case_sent(unit)
        else:
            outbox.chunk_sent(unit, unit.next_chunk)


def test_a_file_in_flight_is_not_sent_again_with_the_next_revision(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "c1", snapshot_jpg=b"same")
    send_all_but_acks(outbox)  # r1 and its snapshot are at the broker, not yet acknowledged
    accept(outbox, "c1", revision=2, snapshot_jpg=b"same", clip_mp4=b"clip")
    assert outbox.file_state("c1", 2, "snapshot.jpg") == ("carried", 0)
    assert drain(outbox) == ["case c1 r2", "clip.mp4 c1 #0"]
    assert (tmp_path / "cases" / "c1" / "r2").exists()  # its snapshot is not acknowledged yet
    outbox.acknowledge("c1", 1, "evidence", "snapshot.jpg", "stored")
    assert outbox.file_state("c1", 2, "snapshot.jpg")[0] == "acked"  # the platform has the bytes
    outbox.acknowledge("c1", 1, "case", None, "stored")
    assert not (tmp_path / "cases" / "c1").exists()  # both revisions done: no folder left, not even the case's


def test_a_carried_file_is_sent_itself_when_the_earlier_copy_is_evicted(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "c1", snapshot_jpg=b"same")
    send_all_but_acks(outbox)
    accept(outbox, "c1", revision=2, snapshot_jpg=b"same")
    outbox.evict_file("c1", 1, "snapshot.jpg")
    assert drain(outbox) == ["case c1 r2", "snapshot.jpg c1 #0"]


def test_a_replaced_revision_leaves_the_disk_once_safe(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "never-sent")
    accept(outbox, "never-sent", revision=2, snapshot_jpg=b"new")
    assert (tmp_path / "cases" / "never-sent" / "r1").exists()  # superseded unsent, kept until r2 is acked
    drain(outbox)
    assert not (tmp_path / "cases" / "never-sent").exists()
    accept(outbox, "sent", snapshot_jpg=b"old")
    send_all_but_acks(outbox)  # r1 out, its acknowledgement lost
    accept(outbox, "sent", revision=2, snapshot_jpg=b"new")
    assert (tmp_path / "cases" / "sent" / "r1").exists()  # its snapshot is still owed to the platform
    outbox.acknowledge("sent", 1, "evidence", "snapshot.jpg", "stored")
    assert (tmp_path / "cases" / "sent" / "r1").exists()  # its record is not acknowledged, nor a newer one
    drain(outbox)  # r2 acknowledged: r1's record will not be needed again
    assert outbox.resend_unacked(older_than_s=0) == 0 and outbox.next_unit() is None
    assert not list((tmp_path / "cases").iterdir())


def test_a_restart_removes_what_a_crash_left_and_keeps_what_is_owed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    accept(outbox, "c1")
    accept(outbox, "c1", revision=2, snapshot_jpg=b"new")
    drain(outbox)
    accept(outbox, "c1", revision=3, snapshot_jpg=b"newer")
    accept(outbox, "c2")
    outbox.close()
    # a power cut after r2 was committed, before r1's folder went; and a case folder left empty
    (tmp_path / "cases" / "c1" / "r1").mkdir()
    (tmp_path / "cases" / "c1" / "r1" / "case.json").write_text('{"id": "c1", "revision": 1}')
    (tmp_path / "cases" / "gone").mkdir()
    reopened = Outbox(tmp_path)
    assert sorted(p.name for p in (tmp_path / "cases").iterdir()) == ["c1", "c2"]
    assert [p.name for p in (tmp_path / "cases" / "c1").iterdir()] == ["r3"]
    assert sorted((i.case_id, i.revision) for i in reopened.items()) == [("c1", 3), ("c2", 1)]


def test_disk_quota_evicts_replaced_revisions_before_clips(tmp_path: Path, caplog) -> None:
    outbox = Outbox(tmp_path, quota_bytes=260_000, hard_limit_bytes=10_000_000)
    accept(outbox, "c1", snapshot_jpg=b"o" * 100_000)
    send_all_but_acks(outbox)  # r1's snapshot is owed, so r1 stays on disk until the platform has it
    accept(outbox, "c1", revision=2, snapshot_jpg=b"n" * 100_000)
    accept(outbox, "c2", clip_mp4=b"c" * 100_000, snapshot_jpg=b"j" * 1000)  # over the quota now
    assert not (tmp_path / "cases" / "c1" / "r1").exists()
    assert outbox.file_state("c2", 1, "clip.mp4")[0] == "pending"  # the current clip stayed
    assert "evicted case c1 r1" in caplog.text and outbox.disk_bytes() <= 260_000


def test_a_unit_evicted_after_it_was_picked_is_skipped_not_fatal(tmp_path: Path) -> None:
    """The quota may evict a revision (a replaced one first) between the sender picking a unit and
    reading it: the sender thread must live on, and the outbox no longer offers the unit."""
    from uploader import MqttSettings, MqttUploader, Topics

    outbox = Outbox(tmp_path)
    accept(outbox, "old")
    accept(outbox, "old", revision=2, snapshot_jpg=b"new")
    sender = MqttUploader(outbox, MqttSettings("127.0.0.1", 1, client_id="t"), Topics("city", "a"))
    unit = outbox.next_unit()
    assert isinstance(unit, CaseUnit) and unit.revision == 2
    outbox.evict_case("old", 2)
    sender._send(unit, "2026-11-20")  # reads a file that is gone: skipped
    assert outbox.next_unit() is None

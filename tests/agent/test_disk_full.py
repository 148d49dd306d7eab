"""A full disk under the state folder: the source goes on, the refused cases are stored once there is
room again, and the summary counts what was stored and what was not. The disk is a real, small tmpfs
(mounting needs root; elsewhere the test is skipped with the reason)."""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import backlog
from agent.config import PrivacyConfig, default_config
from agent.runner import run_agent


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root is needed): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Write a ballast file until the OS says ENOSPC: the disk is then truly full."""
    ballast = disk / "ballast"
    with open(ballast, "wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return ballast


def stored_revisions(state: Path) -> list[tuple[str, int]]:
    return sorted(
        (p.parent.parent.name, int(p.parent.name[1:])) for p in (state / "outbox" / "cases").glob("*/r*/case.json")
    )


def run_with_disk(disk: Path, free_after_frames: int | None):
    """The demo clip with its state on `disk`; the disk fills once the first case is stored and, with
    `free_after_frames`, is freed that many analysed frames later. Returns the run's result and what the
    outbox held, frame by frame, after the disk was freed."""
    state = disk / "state"
    # nothing masked: clips go into the outbox as revision 2 (local clips: tests/agent/evidence/test_privacy.py)
    config = default_config().model_copy(update={"state_dir": state, "privacy": PrivacyConfig(faces=False)})
    ballast: list[Path] = []
    frames_full = 0
    seen_after_free: list[int] = []

    def on_frame(video, frame) -> None:
        nonlocal frames_full
        if not ballast and stored_revisions(state):
            ballast.append(fill(disk))
        elif ballast and ballast[0].exists():
            frames_full += 1
            if free_after_frames is not None and frames_full >= free_after_frames:
                ballast[0].unlink()
        elif ballast:
            seen_after_free.append(len(stored_revisions(state)))

    result = run_agent(config, on_frame_factory=lambda source_id: on_frame)
    assert ballast, "no case was stored before the disk filled"
    return result, state, seen_after_free


def test_a_full_disk_is_logged_once_and_the_cases_are_stored_when_there_is_room(
    small_disk: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(backlog, "RETRY_S", 0.0)  # try again at every frame, so the test needs no waiting
    caplog.set_level(logging.INFO)
    result, state, seen_after_free = run_with_disk(
        small_disk, free_after_frames=20
    )  # after the post-roll: the first clip was refused
    summary = result.summaries[0]
    assert summary.error == "" and summary.unstored == 0 and summary.problem == ""
    refusals = [r for r in caplog.records if "disk full (" in r.getMessage()]
    assert len(refusals) == 1  # once for the outage, not once per frame or per case
    assert any("takes writes again" in r.getMessage() for r in caplog.records)
    stored = stored_revisions(state)
    assert summary.cases == len(summary.case_ids) == len({c for c, _ in stored})
    # the waiting cases were written while the source was still running, not only at its end
    assert seen_after_free and seen_after_free[0] > 1
    assert result.outbox_counts["pending"] == summary.cases


def test_a_disk_that_stays_full_reports_what_was_stored_and_what_was_not(small_disk: Path, caplog) -> None:
    result, state, _ = run_with_disk(small_disk, free_after_frames=None)
    summary = result.summaries[0]
    stored = stored_revisions(state)
    first_revisions = {c for c, r in stored if r == 1}
    assert summary.error == ""  # the source ran to the end of its video
    assert summary.frames_decoded == 240
    assert summary.cases == len(first_revisions) >= 1  # the truth: what is in the outbox
    # every case has a revision 1 and a revision 2 (its clip): those not in the outbox are counted as not stored
    assert summary.unstored == 2 * len(summary.case_ids) - len(stored) >= 1
    assert summary.problem == f"disk full: {summary.unstored} case revision(s) not stored"
    assert len([r for r in caplog.records if "disk full (" in r.getMessage()]) == 1

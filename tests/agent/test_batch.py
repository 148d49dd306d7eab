"""Recorded files on worker processes: the cases of one-at-a-time runs, progress per file and in all,
and a worker killed in the middle of a file costs that file only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from agent.batch import BatchPool, files_fill_the_cores
from agent.config import AgentConfig, PrivacyConfig, SourceConfig, default_config
from agent.evidence.verify import verify_path
from agent.progress import BatchProgress
from agent.runner import run_agent, run_batch
from tests.conftest import agent_cmd
from uploader import Outbox


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three real H.264 files cut from the sample street clip, each with its own cases."""
    folder = tmp_path_factory.mktemp("footage")
    sample = default_config().sources[0].url
    files = []
    for name, start, seconds in (("north", 0, 24), ("east", 6, 18), ("south", 0, 12)):
        out = folder / f"{name}.mp4"
        cut = ["-ss", str(start), "-t", str(seconds), "-i", sample]
        encode = ["-c:v", "libx264", "-preset", "veryfast", "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p"]
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *cut, *encode, str(out)], check=True)
        files.append(out)
    return files


def batch_config(state: Path) -> AgentConfig:
    """The demo's detector and rules with no sources of its own and nothing masked (faster: no face model)."""
    config = default_config()
    return config.model_copy(
        update={"state_dir": state, "sources": [], "inbox": None, "privacy": PrivacyConfig(faces=False)}
    )


def file_source(video: Path) -> SourceConfig:
    return SourceConfig(id=video.stem, kind="fixed", url=str(video), sample_fps=2.0)


def case_records(state: Path) -> dict[tuple[str, int], dict]:
    """Every case revision in the outbox without its signature (each state folder signs with its own key)."""
    records = {}
    for path in (state / "outbox" / "cases").glob("*/r*/case.json"):
        record = json.loads(path.read_bytes())
        record.pop("signature")
        records[record["id"], record["revision"]] = record
    return records


def test_files_on_two_workers_give_the_cases_of_one_at_a_time_runs(tmp_path: Path, footage: list[Path]) -> None:
    alone = tmp_path / "alone"
    for video in footage:  # what `edge-agent process VIDEO` does for each file in turn
        config = batch_config(alone)
        run_agent(config.model_copy(update={"sources": [file_source(video)]}))
    progress = BatchProgress([video.stem for video in footage])
    result = run_batch(batch_config(tmp_path / "batch"), [file_source(v) for v in footage], 2, progress.update)
    progress.close()
    assert [s.source_id for s in result.summaries] == ["north", "east", "south"]
    assert not any(s.problem for s in result.summaries)
    expected, got = case_records(alone), case_records(tmp_path / "batch")
    assert len({case_id for case_id, _ in expected}) >= 3
    assert got.keys() == expected.keys()
    for key, record in expected.items():  # ids, types, boxes (the tracks), times, scores, evidence hashes
        assert got[key] == record
    assert sorted(i for s in result.summaries for i in s.case_ids) == sorted({i for i, _ in expected})
    assert verify_path(tmp_path / "batch" / "outbox", None) == ([], len(got))
    assert progress.done == {"north": 24.0, "east": 18.0, "south": 12.0}  # each file to its end
    assert progress.durations == progress.done and progress.total == 54.0


def test_a_worker_killed_in_the_middle_of_a_file_costs_that_file_only(tmp_path: Path, footage: list[Path]) -> None:
    config = batch_config(tmp_path / "state")
    outbox = Outbox(tmp_path / "state" / "outbox")
    pool = BatchPool(config, outbox, 2)
    killed: list[int] = []

    def kill_east(source_id: str, media_s: float, duration_s: float | None) -> None:
        if source_id == "east" and not killed and media_s < 10:
            killed.append(pool.busy["east"])
            os.kill(killed[0], signal.SIGKILL)  # as the OOM killer does

    try:
        summaries = pool.run([file_source(v) for v in footage], threading.Event(), kill_east)
    finally:
        pool.close()
    north, east, south = summaries
    assert killed and "worker process ended during the file" in east.error and "-9" in east.error
    assert not north.problem and not south.problem and north.cases >= 1 and south.cases >= 1
    stored = {item.case_id for item in outbox.items()}
    assert set(north.case_ids) | set(south.case_ids) <= stored  # no case of the others is lost
    outbox.close()
    assert verify_path(tmp_path / "state" / "outbox", None)[0] == []  # what east stored before is whole


@pytest.mark.parametrize(
    "files_at_once, cores, one_thread",
    [(1, 2, False), (2, 2, True), (3, 2, True), (2, 8, False), (8, 8, True), (1, 1, False)],
)
def test_files_decode_on_one_thread_only_when_they_fill_the_cores(files_at_once: int, cores: int, one_thread) -> None:
    """FFmpeg's frame threads cost CPU that files decoded side by side leave no room for; a file alone, or a
    few files on a large box, keep them (tests/streams/test_files.py: the frames are the same)."""
    assert files_fill_the_cores(files_at_once, cores) is one_thread


def test_the_largest_files_start_first_and_summaries_keep_the_given_order(tmp_path: Path, footage: list[Path]) -> None:
    """A long file given last would run alone at the end of a batch, the other cores idle: files start
    largest first (size stands for length), while the summaries stay in the order given."""
    given = sorted(footage, key=lambda video: video.stat().st_size)  # the shortest (south, 12 s) first
    started: list[str] = []

    def first_reports(source_id: str, media_s: float, duration_s: float | None) -> None:
        if source_id not in started:
            started.append(source_id)

    outbox = Outbox(tmp_path / "state" / "outbox")
    pool = BatchPool(batch_config(tmp_path / "state"), outbox, 1)
    try:
        summaries = pool.run([file_source(v) for v in given], threading.Event(), first_reports)
    finally:
        pool.close()
        outbox.close()
    assert [s.source_id for s in summaries] == [v.stem for v in given] == ["south", "east", "north"]
    assert started == ["north", "east", "south"] and not any(s.problem for s in summaries)


def test_process_refuses_several_videos_it_cannot_tell_apart(tmp_path: Path, footage: list[Path]) -> None:
    other = tmp_path / "copy"
    other.mkdir()
    (other / "north.mp4").write_bytes(footage[0].read_bytes())
    for args, message in (
        ([str(footage[0]), str(other / "north.mp4")], "same source id ['north']"),
        ([str(footage[0]), str(footage[1]), "--telemetry", str(footage[0])], "--telemetry goes with one video"),
        ([str(footage[0]), "--workers", "0"], "--workers 0"),
    ):
        done = subprocess.run(agent_cmd("process", *args), capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_process_runs_several_videos_and_prints_one_table(tmp_path: Path, footage: list[Path]) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent_id: box-1\nstate_dir: {tmp_path / 'state'}\ndetector: {{model: builtin:garbage}}\n"
        f"sources: [{{id: x, kind: fixed, url: {footage[0]}}}]\nprivacy: {{faces: false}}\n"
    )
    args = ("process", str(footage[1]), str(footage[2]), "--kind", "fixed", "--workers", "2", "-c", str(config))
    done = subprocess.run(agent_cmd(*args), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("east ", "south "))]
    assert [(r[0], r[-2], r[-1]) for r in rows] == [("east", "18.0", "ok"), ("south", "12.0", "ok")]
    assert "30.0 s of video in" in done.stdout and "Traceback" not in done.stderr

"""Drone footage as it arrives: KLV inside the MPEG-TS without a sidecar, times from the telemetry's
clock when the file has no creation_time, a sidecar without positions, cut uploads in the inbox."""

from __future__ import annotations

import io
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import AgentConfig, InboxConfig, SourceConfig, default_config, source_id_for
from agent.detector_setup import build_detector
from agent.inbox import Inbox
from agent.pipeline import Pipeline, state_paths
from agent.runner import print_summary, run_agent
from protocol.signing import Signer
from streams import Frame
from tests.agent.test_cli import run_cli
from tests.conftest import make_clip, need_shared
from tests.streams.test_files import cut_upload
from uploader import Outbox

KLV_START = datetime(2008, 10, 24, 0, 13, 29, 913000, tzinfo=UTC)  # tag 2 of h264_klv.ts's first packet


def drone_config(tmp_path: Path, video: Path, telemetry: Path | None = None) -> AgentConfig:
    source = SourceConfig(id=source_id_for(video), kind="drone", url=str(video), telemetry=telemetry, sample_fps=30)
    return default_config().model_copy(update={"state_dir": tmp_path / "state", "sources": [source]})


def frames_of(config: AgentConfig) -> tuple[list[Frame], object]:
    frames: list[Frame] = []
    result = run_agent(config, on_frame_factory=lambda source_id: lambda video, frame: frames.append(frame))
    return frames, result


@pytest.mark.parametrize("name", ["h264_klv.ts", "aphill_short.ts"])
def test_klv_inside_the_video_gives_positions_and_times_without_a_sidecar(tmp_path: Path, name: str) -> None:
    video = need_shared(f"telemetry/mpegts-klv/{name}")
    frames, result = frames_of(drone_config(tmp_path, video))
    summary = result.summaries[0]
    assert summary.error == "" and summary.time_source == "klv" and frames
    assert all(f.fix is not None and f.fix.source.startswith("klv") for f in frames)
    if name == "h264_klv.ts":  # ST 0601: sensor position of tag 13/14, time of tag 2
        assert (frames[0].fix.lat, frames[0].fix.lon) == pytest.approx((60.176822966978335, 128.42675904204452))
        for frame in frames:
            assert frame.utc == KLV_START + timedelta(seconds=frame.media_s)
    else:  # EG 0104: the start is the first packet's timestamp less its offset into the video
        first = frames[0].fix
        assert abs((frames[0].utc - first.utc).total_seconds()) < 0.04


def test_process_uses_the_klv_in_the_file_and_says_where_its_times_came_from(tmp_path: Path) -> None:
    video = need_shared("telemetry/mpegts-klv/h264_klv.ts")
    done = run_cli("process", str(video), "--kind", "drone", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "h264_klv: no creation_time in the file: times from its klv telemetry" in done.stdout
    assert "30 positions from the KLV embedded in the video" in done.stderr


def test_srt_clock_times_a_file_without_creation_time(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "DJI_0001.mp4", seconds=3, size="320x180", rate=10)  # no creation_time
    srt = need_shared("telemetry/dji-srt/mavic_pro.SRT")  # 2017.08.05 14:11:51 at 00:00:01,000
    config = drone_config(tmp_path, clip, srt)
    frames, result = frames_of(config)
    local = datetime(2017, 8, 5, 14, 11, 50, tzinfo=config.cases.tz)
    assert result.summaries[0].time_source == "srt"
    assert [f.utc for f in frames] == [local + timedelta(seconds=f.media_s) for f in frames]
    assert frames[-1].fix is not None and frames[-1].fix.lat == pytest.approx(-20.2533)


def test_a_file_with_neither_creation_time_nor_a_clock_falls_back_to_its_mtime(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "plain.mp4", seconds=2, size="320x180", rate=10)
    frames, result = frames_of(drone_config(tmp_path, clip))
    mtime = datetime.fromtimestamp(clip.stat().st_mtime, UTC)
    assert result.summaries[0].time_source == "file mtime" and frames[0].fix is None
    assert abs((frames[0].utc - (mtime - timedelta(seconds=2))).total_seconds()) < 0.2
    table = io.StringIO()
    print_summary(result, table)
    assert "plain: no creation_time and no telemetry clock: times from the file's mtime" in table.getvalue()


@pytest.mark.parametrize("name", ["broken_empty.SRT", "broken_empty2.SRT", "mavic_air.SRT"])
def test_a_sidecar_without_positions_is_a_warning_not_a_failed_video(tmp_path: Path, name: str) -> None:
    clip = make_clip(tmp_path / "flight.mp4", seconds=2, size="320x180", rate=10, creation_time="2026-11-20T02:30:00Z")
    frames, result = frames_of(drone_config(tmp_path, clip, need_shared(f"telemetry/dji-srt/{name}")))
    summary = result.summaries[0]
    assert summary.error == "" and summary.problem == "" and summary.frames_analysed > 0
    assert len(summary.warnings) == 1 and "no position found" in summary.warnings[0]
    assert "processed without positions" in summary.warnings[0]
    assert frames and all(f.fix is None for f in frames)
    table = io.StringIO()
    print_summary(result, table)
    assert f"flight: warning: telemetry {need_shared('telemetry/dji-srt/' + name)}: no position" in table.getvalue()


def test_process_of_a_truncated_file_says_so_and_fails(tmp_path: Path) -> None:
    _, cut = cut_upload(tmp_path, 0.4)
    done = run_cli("process", str(cut), cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("cut "))
    decoded = int(row.split()[1])
    assert 0 < decoded < 120
    assert f"truncated: decoded {decoded} of 120 frames" in row


def run_inbox(tmp_path: Path, folder: Path, settle_s: float, until) -> tuple[Inbox, list[SourceConfig]]:
    """A real inbox and pipeline in this process, scanning until `until()` is true (at most 60 s)."""
    config = default_config().model_copy(update={"state_dir": tmp_path / "state"})
    outbox_dir, keys_dir = state_paths(config)
    outbox = Outbox(outbox_dir)
    pipeline = Pipeline(config, build_detector(config.detector), outbox, Signer.load_or_create(keys_dir))
    stop = threading.Event()
    taken: list[SourceConfig] = []

    def process(source: SourceConfig):
        taken.append(source)
        return pipeline.run_source(source, stop)

    inbox = Inbox(InboxConfig(folder=folder, kind="drone", settle_s=settle_s, scan_every_s=0.1), process)
    thread = threading.Thread(target=inbox.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if until():
                break
            stop.wait(0.1)
    finally:
        stop.set()
        thread.join(30)
        outbox.close()
    return inbox, taken


def test_inbox_takes_klv_from_the_ts_files_a_broken_sidecar_and_rejects_cut_uploads(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(need_shared("telemetry/mpegts-klv/h264_klv.ts"), folder / "sortie.ts")
    clip = make_clip(
        tmp_path / "DJI_0002.mp4", seconds=2, size="320x180", rate=10, creation_time="2026-11-20T02:30:00Z"
    )
    shutil.copy(clip, folder / "DJI_0002.mp4")
    shutil.copy(need_shared("telemetry/dji-srt/broken_empty.SRT"), folder / "DJI_0002.SRT")
    _, cut = cut_upload(tmp_path, 0.5)
    shutil.copy(cut, folder / "broke_off.mp4")
    done, failed = folder / "done", folder / "failed"
    inbox, taken = run_inbox(
        tmp_path, folder, 0.5, lambda: len(list(done.glob("*"))) == 3 and (failed / "broke_off.mp4.reason.txt").exists()
    )
    assert sorted(p.name for p in done.iterdir()) == ["DJI_0002.SRT", "DJI_0002.mp4", "sortie.ts"]
    assert (failed / "broke_off.mp4").exists()
    reason = (failed / "broke_off.mp4.reason.txt").read_text()
    assert reason.startswith("truncated: holds ") and "of 120 frames" in reason and "upload the whole file" in reason
    assert "broke_off" not in [s.id for s in taken]  # not worth a detector pass
    by_id = {s.source_id: s for s in inbox.summaries}
    assert by_id["sortie"].time_source == "klv" and by_id["sortie"].problem == ""
    assert "no position found" in by_id["DJI_0002"].warnings[0]


def test_inbox_waits_for_a_growing_upload_to_settle(tmp_path: Path) -> None:
    """An upload that pauses longer than a scan but shorter than settle_s is taken whole, not cut."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    whole, _ = cut_upload(tmp_path, 1.0)
    data = whole.read_bytes()
    upload = folder / "slow.mp4"
    upload.write_bytes(data[: len(data) // 3])
    appended = threading.Event()

    def finish_upload() -> None:
        threading.Event().wait(1.0)
        with open(upload, "ab") as fh:
            fh.write(data[len(data) // 3 :])
        appended.set()

    threading.Thread(target=finish_upload, daemon=True).start()
    inbox, _ = run_inbox(tmp_path, folder, 1.5, lambda: (folder / "done" / "slow.mp4").exists())
    assert appended.is_set() and (folder / "done" / "slow.mp4").read_bytes() == data
    assert [s.frames_decoded for s in inbox.summaries] == [120] and inbox.summaries[0].problem == ""

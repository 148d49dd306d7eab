"""Clips without re-encoding: cut from a real RTSP stream and from real files, checked with ffprobe and
PyAV; the ring's memory cap at 1080p 8 Mb/s; revision 2 of the demo's cases; tampering with a clip."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from agent.cases.case import Case
from agent.config import EvidenceConfig, PrivacyConfig, SourceConfig, default_config
from agent.evidence.clip_jobs import ClipJobs
from agent.evidence.clips import Clip, cut_from_file, cut_from_ring
from agent.evidence.verify import verify_path
from agent.runner import run_agent
from streams.live import LiveOptions
from streams.packets import EncodedPacket, PacketRing
from streams.video import VideoSource
from tests.agent.test_cli import ENV
from tests.case_records import make_case
from tests.conftest import agent_cmd, make_clip
from tests.streams.conftest import RtspServer, rtsp_factory, rtsp_server  # noqa: F401 (fixtures)
from uploader import Outbox


def probe(data: bytes, tmp_path: Path) -> dict:
    """ffprobe's view of an MP4: its streams, its duration and the flags of every packet."""
    path = tmp_path / f"probe-{time.monotonic_ns()}.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration:packet=flags",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def clip_payloads(data: bytes) -> list[bytes]:
    """The clip's packets as PyAV reads them back, in file (decode) order."""
    with av.open(io.BytesIO(data)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def nal_units(data: bytes) -> list[bytes]:
    """NAL units of an H.264 access unit, Annex B (start codes, as RTSP delivers) or AVCC (MP4's lengths)."""
    if data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return [u for u in re.split(b"\x00\x00\x00\x01|\x00\x00\x01", data) if u]
    units, at = [], 0
    while at + 4 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        units.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return units


def check_clip(clip: Clip, source: list[EncodedPacket], t_s: float, pre_s: float, post_s: float, gop_s: float,
               tmp_path: Path) -> None:  # fmt: skip
    """Plays, starts on a keyframe, covers [t - pre, t + post] within a keyframe interval, same packets."""
    info = probe(clip.data, tmp_path)
    assert [s["codec_type"] for s in info["streams"]] == ["video"]
    duration = float(info["format"]["duration"])
    assert info["packets"][0]["flags"].startswith("K")
    assert t_s - pre_s - gop_s - 1e-6 <= clip.start_s <= t_s - pre_s + 1e-6
    frame_s = 0.2  # one frame at 5 fps or more
    assert clip.end_s >= t_s + post_s - frame_s
    assert pre_s + post_s - frame_s <= duration <= pre_s + post_s + gop_s + 2 * frame_s
    got = clip_payloads(clip.data)
    first = next(i for i, p in enumerate(source) if p.keyframe and abs(p.media_s - clip.start_s) < 1e-6)
    want = [p.data for p in source[first : first + clip.packets]]
    assert len(got) == len(want) == clip.packets
    assert [nal_units(g) for g in got] == [nal_units(w) for w in want]  # the camera's own NAL units, unchanged


def test_clip_from_a_file_and_from_its_ring(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "street.mp4", seconds=12, rate=15)  # keyframe every second, no B-frames
    ring = PacketRing(max_s=60, max_bytes=64 << 20)
    video = VideoSource("cam", str(path), sample_fps=5, packets=ring)
    frames = list(video.frames())
    held = ring.snapshot()
    assert len(held) == 180 and held[0].keyframe
    # each sampled Frame's media time is a packet's media time: one clock for frames and packets
    times = {round(p.media_s, 6) for p in held}
    assert all(round(f.media_s, 6) in times for f in frames)
    t_s, pre_s, post_s = 6.5, 3.0, 3.0
    from_ring = cut_from_ring(ring, t_s, pre_s, post_s, 50_000_000)
    check_clip(from_ring, held, t_s, pre_s, post_s, 1.0, tmp_path)
    from_file = cut_from_file(path, t_s, pre_s, post_s, 50_000_000)
    assert (from_file.start_s, from_file.packets) == (from_ring.start_s, from_ring.packets)
    check_clip(from_file, held, t_s, pre_s, post_s, 1.0, tmp_path)  # the ring holds the file's packets


def test_clip_from_a_file_with_b_frames_and_a_long_keyframe_interval(sample_clip: Path, tmp_path: Path, caplog) -> None:
    # the sample: 10 fps, two B-frames, a keyframe every 2 s
    ring = PacketRing(max_s=60, max_bytes=64 << 20)
    list(VideoSource("cam", str(sample_clip), sample_fps=2, packets=ring).frames())
    with caplog.at_level("INFO", logger="agent.evidence.clips"):
        clip = cut_from_file(sample_clip, 12.3, 5.0, 5.0, 50_000_000, label="cam")
    check_clip(clip, ring.snapshot(), 12.3, 5.0, 5.0, 2.0, tmp_path)
    assert clip.start_s == pytest.approx(6.0)
    assert "cam: pre-roll 6.3 s, not 5.0 s: the keyframe interval is long" in caplog.text
    with caplog.at_level("INFO", logger="agent.evidence.clips"):
        late = cut_from_file(sample_clip, 21.0, 5.0, 5.0, 50_000_000, label="cam")
    assert late.end_s == pytest.approx(23.9) and "the video ended" in caplog.text


def test_clip_from_a_live_rtsp_stream(rtsp_server: RtspServer, tmp_path: Path) -> None:  # noqa: F811
    ring = PacketRing(max_s=20, max_bytes=8 << 20)
    video = VideoSource("cam", rtsp_server.url, sample_fps=5, packets=ring)
    stop = threading.Event()
    t_s, pre_s, post_s = 3.0, 2.0, 2.0
    frame_times = []
    deadline = time.monotonic() + 30
    for frame in video.frames(stop):
        frame_times.append(frame.media_s)
        if frame.media_s >= t_s + post_s or time.monotonic() > deadline:
            break  # the moment the pipeline would cut: post-roll read
    held = ring.snapshot()
    started = time.perf_counter()
    clip = cut_from_ring(ring, t_s, pre_s, post_s, 50_000_000)
    cut_ms = (time.perf_counter() - started) * 1000
    stop.set()
    assert frame_times[-1] >= t_s + post_s, "the stream did not run long enough"
    times = {round(p.media_s, 6) for p in held}
    # the ring starts at the connection's first keyframe with timestamps: within the first second
    assert held[0].keyframe and held[0].media_s - frame_times[0] <= 1.0 + 1e-6
    ringed = [t for t in frame_times if t >= held[0].media_s - 1e-6]
    assert all(round(t, 6) in times for t in ringed)  # frames and packets on one clock
    assert clip.packets > 1 and all(p.params is held[0].params for p in held)  # one connection
    check_clip(clip, held, t_s, pre_s, post_s, 1.0, tmp_path)  # the server sends a keyframe every second
    print(f"rtsp clip: {clip.packets} packets, {len(clip.data)} bytes, cut in {cut_ms:.1f} ms")


def decoded_frames(data: bytes) -> int:
    """How many frames the clip decodes to, every packet of it decoded (an error raises)."""
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_case_right_after_each_connect_to_a_camera_with_b_frames_gets_a_clip(
    rtsp_factory,  # noqa: F811
    tmp_path: Path,
) -> None:
    """FFmpeg's RTSP demuxer gives the first packets of a connection no pts/dts (and, with B-frames, the
    next ones no dts): a clip cut right after connecting, and again right after a reconnect, still plays."""
    server = rtsp_factory(bframes=2)
    server.start()
    ring = PacketRing(max_s=20, max_bytes=8 << 20)
    live = LiveOptions(stall_s=3, backoff_initial_s=0.5, backoff_cap_s=1)
    video = VideoSource("cam", server.url, sample_fps=5, packets=ring, live_options=live)
    stop = threading.Event()
    pre_s, post_s = 2.0, 1.5
    clips: list[tuple[float, Clip]] = []
    deadline = time.monotonic() + 40
    connect_s: float | None = None
    for frame in video.frames(stop):
        if video.stats.connects > len(clips) and connect_s is None:
            connect_s = frame.media_s  # the first frame of this connection: the case's moment
        if connect_s is not None and frame.media_s >= connect_s + post_s:
            clips.append((connect_s, cut_from_ring(ring, connect_s + 0.2, pre_s, post_s, 50_000_000)))
            connect_s = None
            if len(clips) == 2:
                break
            server.kill()
            server.start()
        if time.monotonic() > deadline:
            break
    stop.set()
    assert len(clips) == 2, f"{len(clips)} clips; {video.stats}"
    for t_s, clip in clips:
        info = probe(clip.data, tmp_path)
        assert info["packets"][0]["flags"].startswith("K")
        assert float(info["format"]["duration"]) > 0
        assert decoded_frames(clip.data) == clip.packets > 1
        assert clip.start_s <= t_s + 1.0 + 1e-6 and clip.end_s >= t_s  # a keyframe every second


@pytest.fixture(scope="module")
def stream_1080p_8mbps(tmp_path_factory) -> Path:
    """Two minutes of 1080p at 8 Mb/s constant bitrate: 10 s encoded once, joined 12 times without re-encoding."""
    folder = tmp_path_factory.mktemp("hd")
    part = folder / "part.mp4"
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25", "-t", "10",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-maxrate", "8M", "-bufsize", "8M",
         "-x264-params", "nal-hrd=cbr:force-cfr=1", "-g", "50", "-bf", "0", "-pix_fmt", "yuv420p", str(part)],
        check=True,
    )  # fmt: skip
    (folder / "list.txt").write_text("".join(f"file '{part}'\n" for _ in range(12)))
    joined = folder / "hd120.mp4"
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(folder / "list.txt"),
         "-c", "copy", str(joined)],
        check=True,
    )  # fmt: skip
    return joined


class _WatchedRing(PacketRing):
    """Records the most bytes held after any put."""

    peak = 0

    def put(self, packet: EncodedPacket) -> None:
        super().put(packet)
        self.peak = max(self.peak, self.bytes)


def test_ring_memory_stays_under_its_cap_at_1080p_8mbps(stream_1080p_8mbps: Path, tmp_path: Path) -> None:
    cap = 16_000_000  # 16 MB: about 16 s at 8 Mb/s, so the byte cap binds before the 60 s one
    ring = _WatchedRing(max_s=60, max_bytes=cap)
    video = VideoSource("hd", str(stream_1080p_8mbps), sample_fps=1, packets=ring, keyframes_only=True)
    started = time.perf_counter()
    last = [f.media_s for f in video.frames()][-1]
    read_s = time.perf_counter() - started
    held = ring.snapshot()
    payload = sum(len(p.data) for p in held)
    objects = sum(
        sys.getsizeof(p) + sys.getsizeof(p.data) + sum(sys.getsizeof(v) for v in (p.pts, p.dts, p.duration, p.media_s))
        for p in held
    ) + 8 * len(held)  # the deque's pointer per entry
    assert last >= 118  # two minutes read through the ring
    assert ring.peak <= cap and objects <= cap  # counted bytes and the Python objects actually held
    assert payload >= cap * 0.9  # full: the cap, not the stream, bounded it
    assert ring.dropped > 2000
    span_s = held[-1].media_s - held[0].media_s
    assert 14 <= span_s <= 17  # 16 MB of an 8 Mb/s stream
    started = time.perf_counter()
    clip = cut_from_ring(ring, last - 6, 5.0, 5.0, 50_000_000)
    cut_ms = (time.perf_counter() - started) * 1000
    check_clip(clip, held, last - 6, 5.0, 5.0, 2.0, tmp_path)
    print(
        f"1080p 8 Mb/s: ring {ring.bytes} counted bytes ({objects} in objects, {payload} payload) for {span_s:.1f} s;"
        f" read at {last / read_s:.0f}x real time; {len(clip.data)} byte clip cut in {cut_ms:.1f} ms"
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The built-in demo (sample clip, bundled model) run once with its state in a temporary folder."""
    state = tmp_path_factory.mktemp("demo") / "state"
    # nothing masked: these tests are about the cut; masked and local clips: tests/agent/evidence/test_privacy.py
    config = default_config().model_copy(update={"state_dir": state, "privacy": PrivacyConfig(faces=False)})
    result = run_agent(config)
    assert not result.summaries[0].error and result.summaries[0].case_ids
    (state / "case_ids.json").write_text(json.dumps(result.summaries[0].case_ids))
    return state


def test_revision_2_of_each_demo_case_carries_its_clip(demo_run: Path, case_validator, tmp_path: Path) -> None:
    case_ids = json.loads((demo_run / "case_ids.json").read_text())
    for cid in case_ids:
        first = json.loads((demo_run / "outbox" / "cases" / cid / "r1" / "case.json").read_bytes())
        second_dir = demo_run / "outbox" / "cases" / cid / "r2"
        second = json.loads((second_dir / "case.json").read_bytes())
        case_validator.validate(second)
        assert second["id"] == first["id"] == cid and second["revision"] == 2
        assert [(e["name"], e["media_type"]) for e in second["evidence"]] == [
            ("snapshot.jpg", "image/jpeg"),
            ("crop.jpg", "image/jpeg"),
            ("clip.mp4", "video/mp4"),
        ]
        assert second["evidence"][:2] == first["evidence"]  # the same snapshot and crop
        info = probe((second_dir / "clip.mp4").read_bytes(), tmp_path)
        assert info["streams"][0]["codec_type"] == "video" and float(info["format"]["duration"]) >= 5
        assert info["packets"][0]["flags"].startswith("K")
    assert not list((demo_run / "outbox" / "cases").glob("*/r3"))
    problems, checked = verify_path(demo_run / "outbox", None)
    assert problems == [] and checked == 2 * len(case_ids)


def test_one_changed_byte_of_a_clip_fails_verify_naming_the_clip(demo_run: Path) -> None:
    case_dir = next((demo_run / "outbox" / "cases").glob("*/r2"))
    clip = case_dir / "clip.mp4"
    original = clip.read_bytes()
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01
    clip.write_bytes(bytes(altered))
    try:
        done = subprocess.run(agent_cmd("verify", str(case_dir)), env=ENV, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert f"FAIL {clip}: sha256 differs from the case (the file was altered)" in done.stdout
        assert "snapshot.jpg" not in done.stdout and "case.json" not in done.stdout  # only the clip is named
    finally:
        clip.write_bytes(original)
    assert verify_path(case_dir, None)[0] == []


def sighting_case(case_id: str, revision: int, last_seen_s: float, files: dict[str, bytes]) -> Case:
    """A case of the source "cam" as the pipeline would accept it, last seen `last_seen_s` into the day."""
    start = datetime(2026, 11, 20, 8, tzinfo=UTC)
    return make_case(case_id, revision, start, start + timedelta(seconds=last_seen_s), files=files)


def test_a_second_sighting_within_the_post_roll_keeps_the_first_ones_clip(tmp_path: Path) -> None:
    """Field audit: a case seen again (its revision 2) before the clip of its revision 1 was cut lost that
    clip, because both clips asked for the next revision. Now one clip, from the first event's pre-roll
    to the second's post-roll, goes with the newest revision; nothing the outbox is handed is refused."""
    path = make_clip(tmp_path / "street.mp4", seconds=20, rate=15)  # a keyframe every second
    source = SourceConfig(id="cam", kind="fixed", url=str(path))
    evidence = EvidenceConfig(clip_pre_s=3.0, clip_post_s=5.0)
    outbox = Outbox(tmp_path / "outbox")
    refused: list[int] = []

    def store(_source: SourceConfig, case: Case, files: dict[str, bytes]) -> bool:
        if not (accepted := outbox.accept(case.id, case.revision, json.dumps(case.to_record()).encode(), files)):
            refused.append(case.revision)
        return accepted

    jobs = ClipJobs(evidence, source, VideoSource("cam", str(path), sample_fps=5))
    first_files, second_files = {"snapshot.jpg": b"\xff\xd8one"}, {"snapshot.jpg": b"\xff\xd8two"}
    first, second = sighting_case("c1", 1, 4.0, first_files), sighting_case("c1", 2, 8.0, second_files)
    store(source, first, first_files)
    jobs.add(first, first_files, 4.0)
    for done in jobs.due(6.0):
        store(source, *done)
    store(source, second, second_files)  # seen again 4 s later: inside the first one's 5 s post-roll
    jobs.add(second, second_files, 8.0)
    for tenth in range(61, 200):
        for done in jobs.due(tenth / 10):
            store(source, *done)
    for done in jobs.flush():
        store(source, *done)
    assert refused == []
    folders = sorted(p.name for p in (tmp_path / "outbox" / "cases" / "c1").iterdir())
    assert folders == ["r1", "r2", "r3"]
    record = json.loads((tmp_path / "outbox" / "cases" / "c1" / "r3" / "case.json").read_bytes())
    assert record["last_seen"] == "2026-11-20T08:00:08.000Z"  # the newest sighting's record, with the clip
    assert [e["name"] for e in record["evidence"]] == ["snapshot.jpg", "clip.mp4"]
    clip = (tmp_path / "outbox" / "cases" / "c1" / "r3" / "clip.mp4").read_bytes()
    assert record["evidence"][1]["sha256"] == hashlib.sha256(clip).hexdigest()
    info = probe(clip, tmp_path)
    assert info["packets"][0]["flags"].startswith("K")
    # from the keyframe at 1 s (4 - 3) to 13 s (8 + 5): both events with their pre- and post-roll
    assert 12.0 - 0.2 <= float(info["format"]["duration"]) <= 12.0 + 1.0 + 0.2
    outbox.close()

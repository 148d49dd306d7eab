"""Live RTSP sources against a real gst-rtsp-server: frames, restarts, stalls, refusals, slow consumers.

Each test breaks the server the way cameras break (power loss = SIGKILL, a hung camera or a dead
link = SIGSTOP, nothing listening) and checks what the source's state and frames say, over TCP and
UDP. Fault tests use a short stall time and backoff cap so that they finish in seconds; the
defaults (10 s, 1 s doubling to 30 s) only change how long the same sequence takes.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from streams.health import State
from streams.live import LiveOptions
from streams.video import VideoSource
from tests.streams.conftest import RtspServer
from tests.streams.live_helpers import Consumer, rss_mb

TRANSPORTS = ["tcp", "udp"]


def source_for(url: str, transport: str, sample_fps: float = 15, **options: float) -> VideoSource:
    live = LiveOptions(transport=transport, **options)  # type: ignore[arg-type]
    return VideoSource("cam", url, sample_fps, live_options=live)


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_frames_arrive_with_sane_timestamps(rtsp_server: RtspServer, transport: str) -> None:
    source = source_for(rtsp_server.url, transport)
    consumer = Consumer(source).start()
    try:
        assert wait_until(lambda: len(consumer.seen) >= 45, 15), f"{len(consumer.seen)} frames; {source.stats}"
    finally:
        consumer.close()
    utc_now = datetime.now(UTC)
    seen = list(consumer.seen)
    media = [s.media_s for s in seen]
    steps = [b - a for a, b in itertools.pairwise(media)]
    assert all(step > 0 for step in steps)  # strictly increasing
    assert statistics.median(steps) == pytest.approx(1 / 15, rel=0.1)  # the server's 15 fps
    # media time runs at the wall clock's pace (the first second can arrive in a burst after probing)
    late = [s for s in seen if s.recv_mono_s > seen[0].recv_mono_s + 1.0]
    media_span, wall_span = late[-1].media_s - late[0].media_s, late[-1].recv_mono_s - late[0].recv_mono_s
    assert media_span == pytest.approx(wall_span, abs=0.3)
    assert seen[0].shape == (360, 640, 3)
    assert source.stats.connects == 1 and source.stats.reconnects == 0
    assert source.stats.state == State.STOPPED
    assert 0 <= (utc_now - seen[-1].utc).total_seconds() < 1.0  # wall-clock time of the frame, in UTC


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_killed_server_is_live_again_within_3s_of_its_return(rtsp_server: RtspServer, transport: str) -> None:
    # quick retries (0.5 s) for 1.5 s after the drop, then doubling to a 2 s cap: a camera that stays
    # down past the quick spell backs off, and a retry still falls within 2 s of its return
    opts = {"stall_s": 3, "backoff_initial_s": 0.5, "backoff_cap_s": 2, "quick_retry_s": 1.5}
    source = source_for(rtsp_server.url, transport, **opts)
    consumer = Consumer(source).start()
    try:
        assert consumer.wait_frame_after(0, 15), f"no first frame: {source.stats}"
        killed = time.monotonic()
        rtsp_server.kill()
        time.sleep(5)
        assert source.stats.state in (State.BACKING_OFF, State.CONNECTING), source.stats
        rtsp_server.start()
        back = time.monotonic()
        first = consumer.wait_frame_after(back, 10)
        assert first is not None, f"not live 10 s after the server's return: {source.stats}"
        assert first.recv_mono_s - back <= 3.0
        failures = [t for t in source.stats.transitions() if t.state == State.BACKING_OFF and t.mono_s > killed]
        assert failures and max(t.delay_s or 0 for t in failures) > 1.0, "the outage did not grow the backoff"
        assert source.stats.connects == 2 and source.stats.state == State.LIVE
        # a camera that was live starts the next outage with quick retries again
        time.sleep(2.5)
        killed = time.monotonic()
        rtsp_server.kill()
        assert wait_until(lambda: source.stats.state == State.BACKING_OFF, 5), source.stats
        again = [t for t in source.stats.transitions() if t.state == State.BACKING_OFF and t.mono_s > killed]
        assert again[0].delay_s is not None and again[0].delay_s <= 0.5
        rtsp_server.start()
        assert consumer.wait_frame_after(time.monotonic(), 8), f"not live after the second restart: {source.stats}"
    finally:
        consumer.close()


@pytest.mark.parametrize("cap_s", [30, 10])
def test_a_camera_that_was_live_is_back_within_3s_of_each_return_whatever_the_cap(
    rtsp_server: RtspServer, cap_s: float
) -> None:
    """The field's case: 5 s outages 20 s apart, with the agent's default cap (30 s) and a 4G one (10 s).
    Only 15 s of frames lie between them, and the second outage must be as short as the first."""
    source = source_for(rtsp_server.url, "tcp", sample_fps=5, backoff_cap_s=cap_s)  # the other options: defaults
    consumer = Consumer(source).start()
    recoveries, waits = [], []
    try:
        assert consumer.wait_frame_after(0, 15), f"no first frame: {source.stats}"
        for outage in range(2):
            if outage:
                time.sleep(15)  # live between the outages
            killed = time.monotonic()
            rtsp_server.kill()
            time.sleep(5)
            rtsp_server.start()
            back = time.monotonic()
            first = consumer.wait_frame_after(back, 3 + cap_s)
            assert first is not None, f"not live {3 + cap_s} s after the server's return: {source.stats}"
            recoveries.append(first.recv_mono_s - back)
            waits += [t for t in source.stats.transitions() if t.state == State.BACKING_OFF and t.mono_s > killed]
    finally:
        consumer.close()
    print(f"cap {cap_s} s: live again {', '.join(f'{r:.2f}' for r in recoveries)} s after each return")
    assert all(r <= 3.0 for r in recoveries), recoveries
    assert waits and all((t.delay_s or 0) <= 1.0 for t in waits), waits  # every retry a quick one
    assert source.stats.connects == 3


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sigstop_stall_is_detected_by_the_watchdog_and_recovered(rtsp_server: RtspServer, transport: str) -> None:
    stall_s = 3.0
    source = source_for(
        rtsp_server.url, transport, stall_s=stall_s, open_timeout_s=3, backoff_initial_s=0.5, backoff_cap_s=2
    )
    consumer = Consumer(source).start()
    try:
        assert consumer.wait_frame_after(0, 15), f"no first frame: {source.stats}"
        rtsp_server.pause()
        paused = time.monotonic()
        time.sleep(10)
        rtsp_server.resume()
        resumed = time.monotonic()
        first = consumer.wait_frame_after(resumed, 12)
        assert first is not None, f"not live 12 s after SIGCONT: {source.stats}"
    finally:
        rtsp_server.resume()
        consumer.close()
    stalls = [t for t in source.stats.transitions() if t.state == State.STALLED and t.mono_s > paused]
    assert stalls, f"no stalled state: {source.stats.transitions()}"
    detected_after = stalls[0].mono_s - paused
    assert stall_s * 0.9 <= detected_after <= stall_s + 1.5, detected_after
    assert "no frame" in stalls[0].reason
    assert first.recv_mono_s - resumed <= 3 + 2 + 2  # open timeout + backoff cap + opening


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refused_connections_back_off_to_the_cap_not_a_tight_loop(
    rtsp_factory: Callable[..., RtspServer], transport: str
) -> None:
    unstarted = rtsp_factory()  # a free port with nothing listening: every connect is refused
    source = source_for(unstarted.url, transport, backoff_initial_s=1, backoff_cap_s=4)
    consumer = Consumer(source).start()
    try:
        time.sleep(14)
    finally:
        consumer.close()
    history = source.stats.transitions()
    attempts = [t.mono_s for t in history if t.state == State.CONNECTING]
    waits = [t for t in history if t.state == State.BACKING_OFF]
    delays = [t.delay_s or 0 for t in waits]
    assert 4 <= len(attempts) <= 6, attempts  # 1 + 2 + 4 + 4 s of waiting fits 14 s; a tight loop would not
    for i, delay in enumerate(delays):
        nominal = min(1 * 2**i, 4)
        assert 0.8 * nominal - 1e-9 <= delay <= nominal, (i, delays)  # jitter only shortens; the cap holds
    assert delays[-1] >= 0.8 * 4  # it reached the cap
    for wait, next_attempt in zip(waits, attempts[1:], strict=False):
        assert wait.delay_s is not None
        assert wait.delay_s - 0.05 <= next_attempt - wait.mono_s <= wait.delay_s + 0.5
    assert all("refused" in w.reason.lower() for w in waits), waits[0].reason
    assert source.stats.connects == 0
    # the run table's status: refused the whole run is not "ok" with 0 frames
    state = "connecting" if history[-2].state == State.CONNECTING else "backing_off"  # [-1] is stopped
    assert source.stats.outcome() == f"unreachable ({state}): cannot open {unstarted.url}: Connection refused"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_slow_consumer_sees_recent_frames_and_bounded_memory(rtsp_server: RtspServer, transport: str) -> None:
    source = source_for(rtsp_server.url, transport)
    consumer = Consumer(source, sleep_s=2.0).start()
    try:
        assert wait_until(lambda: len(consumer.seen) >= 2, 15), f"no frames: {source.stats}"
        rss_start = rss_mb()
        assert wait_until(lambda: len(consumer.seen) >= 6, 15)
        rss_end = rss_mb()
        dropped = source.stats.dropped
    finally:
        consumer.close()
    for s in list(consumer.seen)[1:6]:
        assert s.newest_media_s is not None
        assert s.newest_media_s - s.media_s <= 0.25  # the newest frame, not one queued 2 s ago
        assert s.recv_mono_s - s.mono_s <= 0.5  # decoded just now
    # 15 fps for 2 s per frame: about 29 frames are dropped per frame taken, none piled up
    assert dropped >= 4 * 20
    assert rss_end - rss_start < 30, (rss_start, rss_end)


def test_a_camera_decoded_keyframes_only_yields_one_frame_per_keyframe(rtsp_server: RtspServer) -> None:
    """The test server sends 15 fps with a keyframe every 15 frames: keyframes-only decoding hands over
    about one frame a second, a second apart, and decodes nothing else."""
    source = VideoSource("cam", rtsp_server.url, 15, live_options=LiveOptions(keyframes_only=True))
    consumer = Consumer(source).start()
    try:
        assert wait_until(lambda: len(consumer.seen) >= 4, 15), f"{len(consumer.seen)} frames; {source.stats}"
    finally:
        consumer.close()
    seen = list(consumer.seen)
    steps = [b.media_s - a.media_s for a, b in itertools.pairwise(seen)]
    assert all(step == pytest.approx(1.0, abs=0.1) for step in steps), steps
    assert source.stats.decoded <= len(seen) + 1  # every decoded frame was a keyframe handed over

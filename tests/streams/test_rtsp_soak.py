"""Soak: two live sources (TCP and UDP) through six server restarts in about two minutes.

Every reconnect opens sockets, a demuxer and FFmpeg decoder threads; if any of them leaked, the
counts below would grow by at least one per restart. Samples are taken at the same point of
each cycle (1 s after frames are back), the first one after a restart being the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from streams.video import VideoSource
from tests.streams.conftest import RtspServer
from tests.streams.live_helpers import Consumer, decoder_threads, native_threads, open_fds, rss_mb
from tests.streams.test_rtsp import source_for

RESTARTS = 6
PERIOD_S = 20.0
RSS_GROWTH_MB = 25.0  # after the baseline; one 640x360 frame is 0.7 MB, a leak per frame is far more


@pytest.mark.slow
def test_soak_restarts_leak_no_threads_fds_or_memory(rtsp_factory: Callable[..., RtspServer]) -> None:
    # a pipeline per client: with one shared media, two clients that rejoin a restarted server in the same
    # instant can wedge gst-rtsp-server (every DESCRIBE answered 5XX until it restarts; seen under load in a
    # full run here). That is the test server's fault, and this test is about the clients' leaks.
    rtsp_server = rtsp_factory(per_client=True)
    rtsp_server.start()
    threads_before, fds_before = native_threads(), open_fds()
    sources: list[VideoSource] = [
        source_for(rtsp_server.url, transport, sample_fps=5, stall_s=3, backoff_initial_s=0.5, backoff_cap_s=2)
        for transport in ("tcp", "udp")
    ]
    consumers: list[Consumer] = []
    samples: list[tuple[int, int, float]] = []
    try:
        # one after the other: gst-rtsp-server can abort when two clients join its shared media in the same
        # instant (rtsp-stream.c create_and_plug_queue_to_linked_stream_probe_cb, seen once in CI here)
        for s in sources:
            consumers.append(Consumer(s).start())
            assert consumers[-1].wait_frame_after(0, 15), f"no first frame: {s.stats}"
        cycle_start = time.monotonic()
        for restart in range(RESTARTS):
            time.sleep(max(0.0, cycle_start + PERIOD_S - time.monotonic()))
            cycle_start = time.monotonic()
            rtsp_server.kill()
            rtsp_server.start()
            back = time.monotonic()
            for c in consumers:
                first = c.wait_frame_after(back, 8)
                assert first is not None, f"restart {restart}: {c.source.source_id} not back: {c.source.stats}"
            time.sleep(1.0)
            samples.append((native_threads(), open_fds(), rss_mb()))
    finally:
        for c in consumers:
            c.close()
    base_threads, base_fds, base_rss = samples[0]
    assert max(s[0] for s in samples) <= base_threads + 1, samples  # +1: a thread caught mid-start
    assert max(s[1] for s in samples) <= base_fds + 1, samples
    assert samples[-1][2] - base_rss <= RSS_GROWTH_MB, samples
    for source in sources:
        assert source.stats.connects == RESTARTS + 1, source.stats
        assert source.stats.stalls <= RESTARTS  # UDP may notice a kill by the watchdog, never more than once each
    # with the sources stopped, everything they started is gone (other tests' threads may have ended
    # meanwhile, so the counts may be lower than before, never higher)
    assert not decoder_threads()
    # a Python thread reads as ended a moment before its OS thread exits: give the OS a few seconds
    assert settles(native_threads, threads_before), (native_threads(), threads_before)
    assert settles(open_fds, fds_before), (open_fds(), fds_before)


def settles(count: Callable[[], int], limit: int, timeout_s: float = 5.0) -> bool:
    """Whether `count()` comes down to `limit` or below within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while count() > limit:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True

"""Pure logic of live sources: backoff sequence, the latest-frame slot, the health snapshot."""

from __future__ import annotations

import time

from streams.health import Backoff, SourceStats, State
from streams.live import Decoded, LatestSlot


def test_backoff_doubles_to_the_cap_with_jitter_that_only_shortens() -> None:
    backoff = Backoff(initial_s=1, cap_s=30, jitter=0.2)
    delays = [backoff.delay() for _ in range(8)]
    for delay, nominal in zip(delays, [1, 2, 4, 8, 16, 30, 30, 30], strict=True):
        assert 0.8 * nominal <= delay <= nominal
    backoff.reset()
    assert backoff.delay() <= 1  # a healthy period starts the sequence again


def test_backoff_after_a_live_spell_retries_quickly_then_backs_off_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.01, cap_s=0.08, jitter=0)
    backoff.reset(quick_s=0.2)  # the camera was live and dropped
    quick = [backoff.delay() for _ in range(5)]
    assert quick == [0.01] * 5  # whatever the cap
    time.sleep(0.25)  # still down after the quick spell: doubling up to the cap
    assert [backoff.delay() for _ in range(5)] == [0.01, 0.02, 0.04, 0.08, 0.08]


def test_backoff_jitter_spreads_cameras_that_failed_together() -> None:
    first_delays = {round(Backoff(initial_s=10).delay(), 3) for _ in range(20)}
    assert len(first_delays) > 10


def _item(media_s: float) -> Decoded:
    return Decoded(vframe=None, media_s=media_s, mono_s=time.monotonic(), utc=None)  # type: ignore[arg-type]


def test_latest_slot_keeps_only_the_newest_and_says_what_it_dropped() -> None:
    slot = LatestSlot()
    assert [slot.put(_item(t)) for t in (1.0, 2.0, 3.0)] == [False, True, True]
    taken = slot.take(0.1)
    assert taken is not None and taken.media_s == 3.0
    started = time.monotonic()
    assert slot.take(0.2) is None  # nothing new: waits, then gives up
    assert 0.15 <= time.monotonic() - started < 1.0


def test_stats_history_is_bounded_and_snapshot_is_plain() -> None:
    stats = SourceStats()
    for i in range(200):
        stats.set_state(State.BACKING_OFF, f"try {i}", delay_s=1.0)
    history = stats.transitions()
    assert len(history) == 64 and history[-1].reason == "try 199"
    snap = stats.snapshot()
    assert snap["state"] == "backing_off" and snap["last_error"] == "try 199" and snap["frame_age_s"] is None
    assert "history" not in snap and "_lock" not in snap
    assert stats.state == "backing_off"  # a StrEnum: compares equal to the old plain strings

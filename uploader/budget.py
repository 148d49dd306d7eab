"""Bandwidth cap and daily byte budget for a metered link (a vehicle SIM of 30 GB a month is about
93 kbit/s sustained): a token bucket paces publishing; the day's total decides whether evidence
may still go out today."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class TokenBucket:
    """Paces bytes to `kbit_per_s`, allowing a burst of one second's worth (at least one chunk)."""

    def __init__(self, kbit_per_s: float | None, min_burst_bytes: int) -> None:
        self.rate = kbit_per_s * 1000 / 8 if kbit_per_s else None
        self.capacity = max(self.rate or 0, min_burst_bytes)
        self._tokens = self.capacity
        self._last = time.monotonic()

    def wait_time(self, nbytes: int) -> float:
        """Seconds to wait before `nbytes` may be sent (0 when they may go now)."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        return 0.0 if self._tokens >= nbytes else (nbytes - self._tokens) / self.rate

    def spend(self, nbytes: int) -> None:
        if self.rate is not None:
            self._tokens -= nbytes


def utc_day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")

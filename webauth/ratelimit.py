"""A login rate limit: after `max_failures` wrong passwords from one address within `window_s`, that
address waits until the oldest failure leaves the window (a guessing script gets a few tries per
window; the installer who mistyped waits a few minutes at most)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after_s(self, address: str, now: float | None = None) -> float:
        """0 when `address` may try now, else the seconds it must wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) < self.max_failures:
                return 0.0
            return failures[0] + self.window_s - now

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(address, now).append(now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures[address]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

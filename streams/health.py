"""Per-source health: the state a source is in, why, its counters, and the reconnect backoff.

The decoder thread writes these and the rest of the agent reads them (health reports, the summary
table, tests), so they are plain values plus a short bounded history of state changes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from enum import StrEnum


class State(StrEnum):
    """What a source is doing now; a StrEnum so that `stats.state == "live"` keeps working."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    STALLED = "stalled"
    BACKING_OFF = "backing_off"
    ENDED = "ended"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Transition:
    """One state change: when (monotonic seconds), into which state, why, and the wait if backing off."""

    mono_s: float
    state: State
    reason: str = ""
    delay_s: float | None = None


@dataclass
class SourceStats:
    """Counters a source keeps for the summary and for health reports.

    `dropped` counts sampled frames a slow consumer never took (only the newest is kept);
    `history` keeps the last state changes so that a health report can say what happened.
    """

    state: str = State.IDLE
    reason: str = ""
    since_mono_s: float = field(default_factory=time.monotonic)
    decoded: int = 0
    sampled: int = 0
    dropped: int = 0
    bad_packets: int = 0
    connects: int = 0
    reconnects: int = 0
    stalls: int = 0
    last_error: str = ""
    last_frame_mono_s: float | None = None
    last_media_s: float | None = None
    backoff_s: float | None = None
    history: deque[Transition] = field(default_factory=lambda: deque(maxlen=64), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def set_state(self, state: State, reason: str = "", delay_s: float | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            self.state, self.reason, self.since_mono_s = state, reason, now
            self.backoff_s = delay_s
            if reason and state in (State.STALLED, State.BACKING_OFF):
                self.last_error = reason
            self.history.append(Transition(now, state, reason, delay_s))

    def transitions(self) -> list[Transition]:
        """A copy of the recent state changes, oldest first."""
        with self._lock:
            return list(self.history)

    def outcome(self) -> str:
        """What went wrong with a live source, for the end-of-run table; "" when nothing did.

        A camera refused for the whole run otherwise looks like one that saw nothing: it says
        `unreachable` and why; one that was down when the run stopped says its state and why.
        """
        with self._lock:
            states = [t.state for t in self.history if t.state != State.STOPPED]
            connects, error = self.connects, self.last_error
        if not error or not states:
            return ""
        if connects == 0:
            return f"unreachable ({states[-1]}): {error}"
        if states[-1] in (State.CONNECTING, State.STALLED, State.BACKING_OFF):
            return f"{states[-1]} at the end: {error}"
        return ""

    def snapshot(self) -> dict[str, object]:
        """The counters as a plain dict (for a health report), with the age of the newest frame."""
        with self._lock:
            data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("history", "_lock")}
        now = time.monotonic()
        data["state"] = str(self.state)
        data["state_for_s"] = round(now - self.since_mono_s, 3)
        data["frame_age_s"] = None if self.last_frame_mono_s is None else round(now - self.last_frame_mono_s, 3)
        return data


@dataclass
class Backoff:
    """Exponential backoff with jitter, capped, with quick retries after a live spell.

    A camera that was live and dropped is most often back within seconds (a switch, a 4G gap, a
    reboot), so for `quick_s` after `reset(quick_s)` every delay is `initial_s`, whatever the cap;
    after that, as for a camera that never came up, the delays double up to `cap_s`. The jitter only
    shortens a delay (by up to `jitter` of it), so `cap_s` is a true upper bound and cameras that
    failed together do not retry together.
    """

    initial_s: float = 1.0
    cap_s: float = 30.0
    jitter: float = 0.2
    _next: float = field(default=0.0, init=False)
    _quick_until: float = field(default=float("-inf"), init=False)

    def delay(self) -> float:
        if time.monotonic() < self._quick_until:
            nominal = self.initial_s
        else:
            nominal = self._next = self.initial_s if self._next == 0 else min(self._next * 2, self.cap_s)
        return nominal * random.uniform(1.0 - self.jitter, 1.0)

    def reset(self, quick_s: float = 0.0) -> None:
        """Start the sequence again; for the next `quick_s` seconds every delay is `initial_s`."""
        self._next = 0.0
        self._quick_until = time.monotonic() + quick_s

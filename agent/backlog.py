"""Case revisions a full disk refused, kept in memory in order and stored again once there is room.

A full disk (ENOSPC, a quota, a file-size limit) is not a fault of the footage: the source goes on
analysing frames, each revision that cannot be written waits here, and every `retry_s` the oldest is
tried again. The outage is logged once when it starts and once when it ends, never once per frame;
whatever is still waiting when the source ends is reported as not stored, so the summary tells the truth.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
RETRY_S = 5.0  # how often a full disk is tried again; often enough to free memory soon, rarely enough to be cheap


def is_disk_full(exc: BaseException) -> bool:
    """True for the errors a full disk raises, from the OS (files) or from SQLite (the outbox's rows)."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return False


@dataclass(frozen=True)
class Waiting:
    """One case revision to store; `write` stores it (and may be called again after a disk-full error)."""

    case_id: str
    revision: int
    nbytes: int
    write: Callable[[], object]


class DiskBacklog:
    """The revisions one source could not store yet; used by that source's thread only."""

    def __init__(
        self,
        label: str,
        retry_s: float | None = None,
        max_bytes: int = 64_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.retry_s = RETRY_S if retry_s is None else retry_s
        self.max_bytes = max_bytes  # memory the waiting evidence may take; past it new revisions are lost
        self.clock = clock
        self.waiting: deque[Waiting] = deque()
        self.lost: list[tuple[str, int]] = []  # (case id, revision) never stored
        self._bytes = 0
        self._full_since: float | None = None
        self._next_try = 0.0

    def write(self, item: Waiting) -> None:
        """Store `item` now, or queue it behind those waiting (order matters: revision 2 after 1)."""
        if self._bytes + item.nbytes > self.max_bytes and self.waiting:
            self.lost.append((item.case_id, item.revision))
            log.error(
                "%s: case %s r%d dropped: the disk is full and memory for waiting cases is used up",
                self.label,
                item.case_id,
                item.revision,
            )
            return
        self.waiting.append(item)
        self._bytes += item.nbytes
        self.retry(force=self._full_since is None)

    def retry(self, force: bool = False) -> None:
        """Store what waits, oldest first, if `retry_s` has passed since the last refusal (or `force`)."""
        if not self.waiting or (not force and self.clock() < self._next_try):
            return
        while self.waiting:
            item = self.waiting[0]
            try:
                item.write()
            except Exception as exc:
                if not is_disk_full(exc):
                    self._pop()
                    raise
                self._refused(item, exc)
                return
            self._pop()
        if self._full_since is not None:
            log.warning(
                "%s: the disk takes writes again after %.0f s; the waiting cases are stored",
                self.label,
                self.clock() - self._full_since,
            )
            self._full_since = None

    def finish(self) -> list[tuple[str, int]]:
        """A last try at the end of the source; returns every (case id, revision) that was never stored."""
        self.retry(force=True)
        if self.waiting:
            self.lost += [(w.case_id, w.revision) for w in self.waiting]
            self.waiting.clear()
            self._bytes = 0
        if self.lost:
            log.error(
                "%s: %d case revision(s) not stored because the disk is full: %s; free space on the "
                "state_dir's disk and process the footage again (stored cases are not duplicated)",
                self.label,
                len(self.lost),
                ", ".join(f"{c} r{r}" for c, r in self.lost),
            )
        return self.lost

    def _pop(self) -> None:
        self._bytes -= self.waiting.popleft().nbytes

    def _refused(self, item: Waiting, exc: BaseException) -> None:
        self._next_try = self.clock() + self.retry_s
        if self._full_since is None:
            self._full_since = self.clock()
            log.error(
                "%s: cannot store case %s r%d: disk full (%s); the source goes on, cases wait in memory "
                "and are stored again every %.0f s",
                self.label,
                item.case_id,
                item.revision,
                exc,
                self.retry_s,
            )

"""The outbox's disk quota: over the quota the oldest clips go first; a case JSON is dropped only
beyond the hard limit, and then loudly. Evidence of a problem is worth more than its video."""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Evictable(Protocol):
    """What the quota needs of uploader.outbox.Outbox, named here so that this module does not import
    the outbox that calls it: the bytes on disk, the oldest clips, and eviction of a file or a case."""

    def disk_bytes(self) -> int: ...
    def clips_oldest_first(self) -> list[tuple[str, int, str, int]]: ...
    def evict_file(self, case_id: str, revision: int, name: str) -> None: ...
    def items(self) -> list[Any]: ...  # OutboxItem: case_id, revision, folder
    def evict_case(self, item: Any) -> None: ...


def enforce_quota(outbox: Evictable, quota_bytes: int, hard_limit_bytes: int) -> list[str]:
    """Evict the oldest clips while over `quota_bytes`; beyond `hard_limit_bytes`, drop the oldest
    unacknowledged cases whole. Returns what was removed."""
    removed: list[str] = []
    used = outbox.disk_bytes()
    if used <= quota_bytes:
        return removed
    for case_id, revision, name, size in outbox.clips_oldest_first():
        if used <= quota_bytes:
            break
        outbox.evict_file(case_id, revision, name)
        used -= size
        removed.append(f"{case_id}/r{revision}/{name}")
        log.warning("outbox over its disk quota: evicted clip %s r%d %s (%d bytes)", case_id, revision, name, size)
    for item in outbox.items():
        if used <= hard_limit_bytes:
            break
        size = sum(p.stat().st_size for p in item.folder.rglob("*") if p.is_file())
        outbox.evict_case(item)
        used -= size
        removed.append(f"{item.case_id}/r{item.revision}")
        log.error(
            "OUTBOX FULL: %d bytes on disk exceed the hard limit of %d; DROPPED unacknowledged case %s r%d",
            used + size,
            hard_limit_bytes,
            item.case_id,
            item.revision,
        )
    return removed

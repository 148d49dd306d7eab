"""The outbox's disk quota: over the quota, revisions a newer revision of their case replaces go
first, then the oldest clips; a case JSON is dropped only beyond the hard limit, and then loudly.
Evidence of a problem is worth more than its video, and a case's current evidence more than its past.

Works on anything with the outbox's quota methods (`QuotaStore`), so that it needs no import of the
outbox, which calls it after each accepted case.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from protocol.files import tree_bytes

log = logging.getLogger(__name__)


class QuotaItem(Protocol):
    """A case revision on disk."""

    @property
    def case_id(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def folder(self) -> Path: ...


class QuotaStore(Protocol):
    """What the quota needs of the outbox."""

    def disk_bytes(self) -> int: ...
    def obsolete_items(self) -> Sequence[QuotaItem]: ...
    def clips_oldest_first(self) -> list[tuple[str, int, str, int]]: ...
    def evict_file(self, case_id: str, revision: int, name: str) -> None: ...
    def items(self) -> Sequence[QuotaItem]: ...
    def evict_case(self, case_id: str, revision: int) -> None: ...


def enforce_quota(outbox: QuotaStore, quota_bytes: int, hard_limit_bytes: int) -> list[str]:
    """Evict replaced revisions, then the oldest clips, while over `quota_bytes`; beyond
    `hard_limit_bytes`, drop the oldest unacknowledged cases whole. Returns what was removed."""
    removed: list[str] = []
    used = outbox.disk_bytes()
    if used <= quota_bytes:
        return removed
    for item in outbox.obsolete_items():
        if used <= quota_bytes:
            break
        size = tree_bytes(item.folder)
        outbox.evict_case(item.case_id, item.revision)
        used -= size
        removed.append(f"{item.case_id}/r{item.revision}")
        log.warning(
            "outbox over its disk quota: evicted case %s r%d (%d bytes), replaced by a newer revision",
            item.case_id,
            item.revision,
            size,
        )
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
        size = tree_bytes(item.folder)
        outbox.evict_case(item.case_id, item.revision)
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

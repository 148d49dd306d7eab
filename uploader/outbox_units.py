"""What the outbox hands out: the units the sender publishes (a case JSON, an evidence file from a
chunk on) and the accepted revisions on disk, with the upload priority each file's media type gets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CASE_FILE = "case.json"

# Lower goes first: new cases, then updates, then snapshots, then clips, then anything else.
PRIORITY_NEW_CASE, PRIORITY_UPDATE, PRIORITY_IMAGE, PRIORITY_VIDEO, PRIORITY_OTHER = range(5)


@dataclass(frozen=True)
class CaseUnit:
    """A case JSON to publish."""

    case_id: str
    revision: int
    path: Path
    kind: str = "case"  # or "cleared": an observation, published on its own topic


@dataclass(frozen=True)
class FileUnit:
    """An evidence file to publish from chunk `next_chunk` on."""

    case_id: str
    revision: int
    name: str
    media_type: str
    path: Path
    bytes: int
    sha256: str
    chunks: int
    next_chunk: int
    priority: int


@dataclass(frozen=True)
class OutboxItem:
    """One accepted case revision and where its files are."""

    case_id: str
    revision: int
    folder: Path


def file_priority(media_type: str) -> int:
    """Snapshots before clips before anything else: a case's picture is worth more than its video."""
    return {"image": PRIORITY_IMAGE, "video": PRIORITY_VIDEO}.get(media_type.split("/")[0], PRIORITY_OTHER)

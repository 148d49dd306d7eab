"""The Case: what the agent reports to the platform, and its JSON record (schema case-v1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.geo.earth import Location

SCHEMA_VERSION = "1.2"  # 1.1: optional `explanation`; 1.2: optional `privacy`
_CASE_NAMESPACE = uuid.UUID("5d1f0c36-1f3e-4d0a-9c1e-6a6b2f7e9a10")


@dataclass(frozen=True)
class EvidenceFile:
    name: str
    media_type: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Case:
    """A candidate case: a problem of one type seen long enough at one place."""

    id: str
    revision: int
    agent_id: str
    source_id: str
    source_kind: str
    type: str
    codes: tuple[dict[str, str], ...]
    first_seen: datetime
    last_seen: datetime
    location: Location | None
    score_max: float
    score_mean: float
    frames: int
    model_name: str
    model_version: str
    evidence: tuple[EvidenceFile, ...] = field(default=())
    grid: dict[str, str | None] | None = None
    explanation: dict[str, Any] = field(default_factory=dict)  # why: tracks, presence, co-located members
    privacy: dict[str, Any] | None = None  # what was masked in the evidence (`privacy` config); None: nothing asked

    def to_record(self) -> dict[str, Any]:
        """The JSON record, before signing; `explanation` only when a rule gave one, `privacy` when masking is on."""
        record = {
            "id": self.id,
            "revision": self.revision,
            "schema_version": SCHEMA_VERSION,
            "agent_id": self.agent_id,
            "source": {"id": self.source_id, "kind": self.source_kind},
            "type": self.type,
            "codes": [dict(c) for c in self.codes],
            "first_seen": iso_ms(self.first_seen),
            "last_seen": iso_ms(self.last_seen),
            "location": self.location.to_record() if self.location else None,
            "grid": self.grid,
            "score": {"max": round(self.score_max, 4), "mean": round(self.score_mean, 4), "frames": self.frames},
            "model": {"name": self.model_name, "version": self.model_version},
            "evidence": [vars(e) for e in self.evidence],
        }
        if self.explanation:
            record["explanation"] = dict(self.explanation)
        if self.privacy is not None:
            record["privacy"] = dict(self.privacy)
        return record


def case_id(agent_id: str, source_id: str, case_type: str, first_seen: datetime) -> str:
    """A stable id: the same sighting processed again (a re-run, a restart) gets the same id."""
    key = f"{agent_id}/{source_id}/{case_type}/{int(first_seen.timestamp() * 1000)}"
    return str(uuid.uuid5(_CASE_NAMESPACE, key))


def iso_ms(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

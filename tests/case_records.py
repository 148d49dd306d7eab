"""One builder for the Case records that tests record, accept and sign: the fields no test cares about
are the same everywhere, and each test names only what it is about."""

from __future__ import annotations

import hashlib
from datetime import datetime

from agent.cases.case import Case, EvidenceFile
from agent.geo.earth import Location


def evidence_for(files: dict[str, bytes]) -> tuple[EvidenceFile, ...]:
    """The evidence list a case record gives for these files (JPEG or MP4 by name)."""
    return tuple(
        EvidenceFile(
            name, "video/mp4" if name.endswith(".mp4") else "image/jpeg", hashlib.sha256(d).hexdigest(), len(d)
        )
        for name, d in files.items()
    )


def make_case(
    case_id: str,
    revision: int,
    first_seen: datetime,
    last_seen: datetime | None = None,
    *,
    agent_id: str = "a",
    source_id: str = "cam",
    source_kind: str = "fixed",
    location: Location | None = None,
    files: dict[str, bytes] | None = None,
) -> Case:
    """A garbage_pile case as the pipeline would accept it, seen in 3 frames by model "m" version "v"."""
    return Case(
        id=case_id,
        revision=revision,
        agent_id=agent_id,
        source_id=source_id,
        source_kind=source_kind,
        type="garbage_pile",
        codes=(),
        first_seen=first_seen,
        last_seen=last_seen or first_seen,
        location=location,
        score_max=0.9,
        score_mean=0.8,
        frames=3,
        model_name="m",
        model_version="v",
        evidence=evidence_for(files or {}),
    )

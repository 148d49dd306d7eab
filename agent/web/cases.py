"""The recent cases as the page lists them: from the outbox's own records (case.json beside its evidence),
filtered by type, source and time, with their upload state and whether the signature verifies. A case
fully acknowledged by the platform has left the disk: it is listed by id and state only. A clip kept on
the box only (`privacy.clips: local`, STATE/private/) is played too: it is in no record and not signed,
and the page says so; the unmasked original frame there is never served."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.evidence.clip_jobs import CLIP_MEDIA_TYPE, CLIP_NAME
from agent.evidence.verify import verify_case
from uploader.outbox import CASE_FILE
from uploader.outbox_cases import OutboxCase, OutboxCases

CASE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class CaseBrowser:
    """Reads the outbox under `root`; verifies signatures with the box's public key."""

    def __init__(self, root: Path, public_key: Path, private_dir: Path) -> None:
        self.cases = OutboxCases(root)
        self.public_key = public_key
        self.private_dir = private_dir

    def recent(
        self, case_type: str = "", source: str = "", since: float = 0.0, until: float | None = None
    ) -> list[dict[str, Any]]:
        listed = []
        for case in self.cases.recent(since=since, until=until):
            record = _record(case)
            summary = _summary(case, record, self._local_clip(case))
            if (case_type and summary.get("type") != case_type) or (source and summary.get("source_id") != source):
                continue
            listed.append(summary)
        return listed

    def detail(self, case_id: str, revision: int) -> dict[str, Any] | None:
        case = self._case(case_id, revision)
        if case is None:
            return None
        record = _record(case)
        problems = verify_case(case.folder / CASE_FILE, self.public_key.read_bytes()) if record else []
        return _summary(case, record, self._local_clip(case)) | {
            "record": record,
            "verified": bool(record) and not problems,
            "problems": [p.replace(str(case.folder) + "/", "") for p in problems],
        }

    def evidence(self, case_id: str, revision: int, name: str) -> tuple[Path, str] | None:
        """(file, MIME type) of one evidence file the case record lists; None for any other name."""
        case = self._case(case_id, revision)
        record = _record(case) if case else None
        if case is None or record is None:
            return None
        for item in record.get("evidence", []):
            if item.get("name") == name and "/" not in name and (case.folder / name).is_file():
                return case.folder / name, str(item.get("media_type", "application/octet-stream"))
        local = self._local_clip(case)
        return (local, CLIP_MEDIA_TYPE) if name == CLIP_NAME and local else None

    def _local_clip(self, case: OutboxCase) -> Path | None:
        path = self.private_dir / case.case_id / f"r{case.revision}" / CLIP_NAME
        return path if path.is_file() else None

    def _case(self, case_id: str, revision: int) -> OutboxCase | None:
        return self.cases.get(case_id, revision) if CASE_ID.match(case_id) else None

    def close(self) -> None:
        self.cases.close()


def _record(case: OutboxCase) -> dict[str, Any] | None:
    try:
        return json.loads((case.folder / CASE_FILE).read_bytes())
    except (OSError, ValueError):
        return None


def _summary(case: OutboxCase, record: dict[str, Any] | None, local_clip: Path | None) -> dict[str, Any]:
    accepted = datetime.fromtimestamp(case.accepted_at, UTC).isoformat(timespec="seconds")
    out: dict[str, Any] = {
        "case_id": case.case_id,
        "revision": case.revision,
        "state": case.state,
        "accepted_at": accepted,
        "files": case.files,
        "on_disk": record is not None,
    }
    if record:
        out |= {key: record.get(key) for key in ("type", "first_seen", "last_seen")}
        out["source_id"] = (record.get("source") or {}).get("id")
        out["score_max"] = (record.get("score") or {}).get("max")
        out["evidence"] = [item.get("name") for item in record.get("evidence", [])]
        if local_clip and CLIP_NAME not in out["evidence"]:
            out["evidence"].append(CLIP_NAME)
            out["local_clip"] = True
    return out

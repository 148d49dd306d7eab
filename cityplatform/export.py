"""`edge-agent platform-export`: the platform cases of each street office as one JSON file, for the
city's existing case system: dispatch fields, due time, every report and its evidence files.

File names come from street office names (outside input, from the grid layer): letters, digits, _ and
- only, checked to stay inside the output folder; the name itself is inside each file."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from protocol.files import write_atomic

MANUAL = "manual-dispatch"  # the file of the cases no grid cell could be given to


def iso_utc(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def platform_cases(run, street: str | None = None) -> list[dict]:
    """Every platform case (of one street office) with its reports and their stored evidence."""
    where, params = ("WHERE p.street = ?", (street,)) if street is not None else ("", ())
    return [_case(run, row) for row in run(f"{_SELECT} {where} ORDER BY p.id", params).fetchall()]


def platform_case(run, platform_case_id: int) -> dict | None:
    """One platform case as the export writes it (the review page shows it); None when there is none."""
    row = run(f"{_SELECT} WHERE p.id = ?", (platform_case_id,)).fetchone()
    return _case(run, row) if row else None


_SELECT = (
    "SELECT p.id, p.type, p.status, p.opened_at, p.due_at, p.dispatch, p.dispatch_reason, p.grid_code, "
    "p.grid_name, p.street, p.district, p.code_standard, p.code, p.code_name, ST_Y(p.position::geometry), "
    "ST_X(p.position::geometry), p.uncertainty_m, p.verification, p.verified_at, p.verified_agent, p.verified_by, "
    "p.verified_revision FROM platform_cases p"
)


def _case(run, row: tuple) -> dict:
    (pid, case_type, status, opened, due, dispatch, reason, grid, grid_name, street, district, standard, code,
     code_name, lat, lon, uncertainty, *verified) = row  # fmt: skip
    reports = run(
        "SELECT case_id, agent_id, revision, source_kind, first_seen, last_seen FROM reports "
        "WHERE platform_case_id = ? ORDER BY first_seen, case_id",
        (pid,),
    ).fetchall()
    return {
        "id": pid,
        "type": case_type,
        "status": status,
        "opened_at": iso_utc(opened),
        "due_at": iso_utc(due),
        "dispatch": dispatch,
        "dispatch_reason": reason,
        "grid": {"code": grid, "name": grid_name, "street": street, "district": district} if grid else None,
        "code": {"standard": standard, "code": code, "name": code_name} if code else None,
        "position": {"lat": lat, "lon": lon, "crs": "WGS84", "uncertainty_m": uncertainty} if lat is not None else None,
        "reports": [_report(run, *report) for report in reports],
        "verification": _verification(run, *verified) if verified[0] else None,
    }


def _verification(run, state: str, at: datetime, agent_id: str, by: str, revision: int) -> dict:
    """The latest pass over the place: 'fixed' by a `cleared` observation (`by` its id), or 'still there' by
    a report's revision (`by` the agent's case id), with that observation's or revision's evidence files."""
    files = run(
        "SELECT name, sha256, bytes FROM evidence WHERE agent_id = ? AND case_id = ? AND revision = ? ORDER BY name",
        (agent_id, by, revision),
    ).fetchall()
    return {
        "state": state,
        "at": iso_utc(at),
        "agent_id": agent_id,
        "by": by,
        "revision": revision,
        "evidence": [
            {"name": name, "sha256": sha, "bytes": size, "path": f"cases/{agent_id}/{by}/r{revision}/{name}"}
            for name, sha, size in files
        ],
    }


def _report(run, case_id: str, agent_id: str, revision: int, kind: str, first: datetime, last: datetime) -> dict:
    files = run(
        "SELECT revision, name, sha256, bytes FROM evidence WHERE agent_id = ? AND case_id = ? ORDER BY revision, name",
        (agent_id, case_id),
    ).fetchall()
    return {
        "agent_id": agent_id,
        "case_id": case_id,
        "revision": revision,
        "source_kind": kind,
        "first_seen": iso_utc(first),
        "last_seen": iso_utc(last),
        "evidence": [
            {"name": name, "sha256": sha, "bytes": size, "path": f"cases/{agent_id}/{case_id}/r{rev}/{name}"}
            for rev, name, sha, size in files
        ],
    }


def file_name(street: str) -> str:
    """A safe file name for a street office's export."""
    safe = re.sub(r"[^\w-]+", "_", street, flags=re.UNICODE).strip("_.")[:80]
    return f"street-{safe or 'unnamed'}.json"


def export_by_street(run, out_dir: Path, street: str | None = None) -> list[Path]:
    """Write out_dir/street-<name>.json per street office (and manual-dispatch.json); the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[str | None, list[dict]] = {}
    for case in platform_cases(run, street):
        groups.setdefault(case["grid"]["street"] or "" if case["dispatch"] == "grid" else None, []).append(case)
    written = []
    exported_at = iso_utc(datetime.now(UTC))
    for name, cases in sorted(groups.items(), key=lambda item: item[0] or ""):
        target = out_dir / (file_name(name) if name is not None else f"{MANUAL}.json")
        if not target.resolve().is_relative_to(out_dir.resolve()):
            raise ValueError(f"refusing to write outside {out_dir}: {target}")
        document = {"street": name, "exported_at": exported_at, "cases": cases}
        write_atomic(target, json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"))
        written.append(target)
    return written

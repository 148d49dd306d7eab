"""What the review page reads: the queue of new (unreviewed) platform cases, newest first, one case with
its reports and their evidence, the grid cells for the map, and the path of one stored evidence file.

Evidence is served only when the database lists it and its ids match the strict patterns again, from
inside store_dir: nothing from a URL becomes a path unchecked."""

from __future__ import annotations

import json
from pathlib import Path

from cityplatform.export import iso_utc, platform_case
from protocol.messages import AGENT_ID, CASE_ID, FILE_NAME

MEDIA_TYPES = {"jpg": "image/jpeg", "mp4": "video/mp4"}


def new_cases(run, limit: int) -> list[dict]:
    """The platform cases without a review, newest first, with what the list and the map show."""
    rows = run(
        "SELECT p.id, p.type, p.status, p.opened_at, p.last_report_at, p.due_at, p.dispatch, p.grid_code, "
        "p.grid_name, p.street, ST_Y(p.position::geometry), ST_X(p.position::geometry), "
        "(SELECT COUNT(*) FROM reports r WHERE r.platform_case_id = p.id) FROM platform_cases p "
        "WHERE NOT EXISTS (SELECT 1 FROM reviews v WHERE v.platform_case_id = p.id) "
        "ORDER BY p.opened_at DESC, p.id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "id": pid,
            "type": case_type,
            "status": status,
            "opened_at": iso_utc(opened),
            "last_report_at": iso_utc(last),
            "due_at": iso_utc(due),
            "dispatch": dispatch,
            "grid": {"code": grid, "name": grid_name, "street": street} if grid else None,
            "position": {"lat": lat, "lon": lon} if lat is not None else None,
            "reports": reports,
        }
        for pid, case_type, status, opened, last, due, dispatch, grid, grid_name, street, lat, lon, reports in rows
    ]


def case_detail(run, platform_case_id: int) -> dict | None:
    """The case as the export gives it, each report's evidence the newest stored file of each name, with
    its URL on this page, and the case's latest review (None while it is new)."""
    case = platform_case(run, platform_case_id)
    if case is None:
        return None
    for report in case["reports"]:
        newest = {item["name"]: item for item in report["evidence"]}  # ordered by revision: the last wins
        report["evidence"] = [
            {**item, "url": f"/api/evidence/{item['path'].removeprefix('cases/')}"} for item in newest.values()
        ]
    review = run(
        "SELECT decision, reason, corrected_type, reviewer, reviewed_at FROM reviews WHERE platform_case_id = ? "
        "ORDER BY id DESC LIMIT 1",
        (platform_case_id,),
    ).fetchone()
    keys = ("decision", "reason", "corrected_type", "reviewer")
    case["review"] = {**dict(zip(keys, review[:4], strict=True)), "reviewed_at": iso_utc(review[4])} if review else None
    return case


def grid_cells(run) -> list[dict]:
    """Every grid cell with its outline (GeoJSON MultiPolygon coordinates, lon/lat) for the map."""
    rows = run("SELECT code, name, street, ST_AsGeoJSON(geom) FROM grid_cells ORDER BY code", ()).fetchall()
    return [
        {"code": code, "name": name, "street": street, "polygons": json.loads(shape)["coordinates"]}
        for code, name, street, shape in rows
    ]


def evidence_path(run, store_dir: Path, agent_id: str, case_id: str, revision: int, name: str) -> Path | None:
    """The stored file of one listed evidence item, or None (unknown, malformed or outside store_dir)."""
    names_ok = AGENT_ID.fullmatch(agent_id) and CASE_ID.fullmatch(case_id) and FILE_NAME.fullmatch(name)
    if not names_ok or name.rsplit(".", 1)[1] not in MEDIA_TYPES:
        return None
    listed = run(
        "SELECT 1 FROM evidence WHERE agent_id = ? AND case_id = ? AND revision = ? AND name = ?",
        (agent_id, case_id, revision, name),
    ).fetchone()
    if listed is None:
        return None
    root = store_dir.resolve()
    path = (root / "cases" / agent_id / case_id / f"r{revision}" / name).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def media_type(name: str) -> str:
    return MEDIA_TYPES[name.rsplit(".", 1)[1]]

"""One platform case per problem across agents. Each agent case is one report; its first stored revision
joins the nearest open platform case of its type whose position is within the type's join distance, or
within the two positions' combined uncertainty where that is larger (capped: PostGIS ST_DWithin on
geography), or opens a new one, with its dispatch fields. Later revisions update their report. Runs
inside the store's transaction that inserted the revision, under a per-type lock, so that receivers
never open two cases for one problem at once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from cityplatform.config import DEFAULT_JOIN_DISTANCE_M, PlatformConfig
from cityplatform.dispatch import due_at, grid_cell

log = logging.getLogger(__name__)

_POINT = "ST_SetSRID(ST_MakePoint(?, ?), 4326)::geography"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class PlatformCases:
    """Files each stored case revision as a report of one platform case."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config

    def uncertainty_m(self, location: dict) -> float:
        """How far the problem may be from the reported position: its accuracy (a located object's, or a
        camera position's plus its view distance, as the agent sends it), capped; unknown when null."""
        accuracy = location.get("accuracy_m")
        return min(self.config.unknown_accuracy_m if accuracy is None else accuracy, self.config.max_uncertainty_m)

    def report(self, run, record: dict, received_at: float) -> int:
        """File one case revision; the id of its platform case."""
        case_id, location = record["id"], record["location"]
        uncertainty = self.uncertainty_m(location) if location else None
        point = (location["lon"], location["lat"]) if location else (None, None)
        row = run("SELECT platform_case_id, last_seen FROM reports WHERE case_id = ?", (case_id,)).fetchone()
        if row:
            if _utc(record["last_seen"]) > row[1]:  # a later pass saw it again
                self._verified(run, row[0], "still there", _utc(record["last_seen"]), record, record["revision"])
            run(
                f"UPDATE reports SET revision = ?, position = {_POINT}, uncertainty_m = ?, method = ?, last_seen = ? "
                "WHERE case_id = ? AND revision < ?",
                (
                    record["revision"],
                    *point,
                    uncertainty,
                    location and location["method"],
                    _utc(record["last_seen"]),
                    case_id,
                    record["revision"],
                ),
            )
            self._refresh(run, row[0])
            return row[0]
        run("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (f"platform-type:{record['type']}",))
        platform_case = self._nearest_open(run, record, uncertainty) if location else None
        if platform_case is None:
            platform_case = self._open(run, record, received_at)
        run(
            f"INSERT INTO reports VALUES (?, ?, ?, ?, ?, {_POINT}, ?, ?, ?, ?)",
            (
                case_id,
                platform_case,
                record["agent_id"],
                record["revision"],
                record["source"]["kind"],
                *point,
                uncertainty,
                location and location["method"],
                _utc(record["first_seen"]),
                _utc(record["last_seen"]),
            ),
        )
        self._refresh(run, platform_case)
        return platform_case

    def cleared(self, run, record: dict) -> None:
        """A `cleared` observation of one of its reports: the platform case is verified fixed, unless a
        later pass saw it again."""
        row = run("SELECT platform_case_id FROM reports WHERE case_id = ?", (record["case_id"],)).fetchone()
        if row is None:
            log.warning("cleared %s: case %s has no platform case", record["id"], record["case_id"])
            return
        self._verified(run, row[0], "fixed", _utc(record["clear_until"]), record, 1)

    def _verified(self, run, platform_case: int, state: str, at: datetime, record: dict, revision: int) -> None:
        """Note the newest verification of a platform case: 'fixed' closes it to new reports ('verified'),
        'still there' opens it again; an older observation arriving late changes nothing."""
        run(
            "UPDATE platform_cases SET verification = ?, verified_at = ?, verified_agent = ?, verified_by = ?, "
            "verified_revision = ?, status = ? WHERE id = ? AND (verified_at IS NULL OR verified_at < ?)",
            (state, at, record["agent_id"], record["id"], revision, "verified" if state == "fixed" else "open",
             platform_case, at),
        )  # fmt: skip
        log.info("platform case %d: %s (%s of %s)", platform_case, state, record["id"], record["agent_id"])

    def _nearest_open(self, run, record: dict, uncertainty: float) -> int | None:
        """The nearest open case of the type within max(join distance, the positions' combined uncertainty,
        capped), that none of this agent's other cases reports: an agent that filed two cases saw two."""
        distance, cap = self._rule_distance(record["type"]), self.config.max_uncertainty_m
        lon, lat = record["location"]["lon"], record["location"]["lat"]
        row = run(
            f"SELECT id FROM platform_cases p WHERE status = 'open' AND type = ? AND position IS NOT NULL "
            f"AND ST_DWithin(position, {_POINT}, ?) "
            f"AND ST_DWithin(position, {_POINT}, GREATEST(?, LEAST(sqrt(? ^ 2 + uncertainty_m ^ 2), ?))) "
            "AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.platform_case_id = p.id AND r.agent_id = ?) "
            f"ORDER BY ST_Distance(position, {_POINT}), id LIMIT 1",
            (
                record["type"],
                lon,
                lat,
                max(distance, cap),
                lon,
                lat,
                distance,
                uncertainty,
                cap,
                record["agent_id"],
                lon,
                lat,
            ),
        ).fetchone()
        return row[0] if row else None

    def _rule_distance(self, case_type: str) -> float:
        rule = self.config.types.get(case_type)
        return rule.join_distance_m if rule else DEFAULT_JOIN_DISTANCE_M

    def _open(self, run, record: dict, received_at: float) -> int:
        """A new platform case with its dispatch fields; 'manual' with the reason when they cannot be known."""
        opened = datetime.fromtimestamp(received_at, UTC)
        rule = self.config.types.get(record["type"])
        location = record["location"]
        cell = grid_cell(run, location["lat"], location["lon"]) if location else None
        reason = None
        if location is None:
            reason = "no position: the report has no location (never guessed)"
        elif self.config.grid is None:
            reason = "no grid layer: set platform.grid.file to the city's grid GeoJSON"
        elif cell is None:
            reason = "the position is outside every cell of the grid layer (platform.grid.file)"
        elif rule is None:
            reason = f"no rule for type {record['type']} in platform.types (code and due time)"
        code = rule.code if rule else None
        due = due_at(opened, rule.due_working_hours, self.config.working_hours) if rule and reason is None else None
        row = run(
            "INSERT INTO platform_cases (type, opened_at, last_report_at, dispatch, dispatch_reason, grid_code, "
            "grid_name, street, district, code_standard, code, code_name, due_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                record["type"],
                opened,
                opened,
                "manual" if reason else "grid",
                reason,
                *(cell or (None,) * 4),
                code and code.standard,
                code and code.code,
                code and code.name,
                due,
            ),
        ).fetchone()
        if reason:
            log.warning("platform case %d (%s) needs manual dispatch: %s", row[0], record["type"], reason)
        return row[0]

    def _refresh(self, run, platform_case: int) -> None:
        """The case's position is its most certain report's; its last report time the latest."""
        run(
            "UPDATE platform_cases p SET position = best.position, uncertainty_m = best.uncertainty_m, "
            "last_report_at = GREATEST(p.last_report_at, best.latest) FROM (SELECT position, uncertainty_m, "
            "(SELECT MAX(last_seen) FROM reports WHERE platform_case_id = ?) AS latest FROM reports "
            "WHERE platform_case_id = ? ORDER BY position IS NULL, uncertainty_m, case_id LIMIT 1) AS best "
            "WHERE p.id = ?",
            (platform_case, platform_case, platform_case),
        )

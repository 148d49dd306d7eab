"""One case per problem: the cases this agent raised, remembered across passes and restarts.

A patrol car passes the same pile every day. A new sighting of the same type within the rule's
`max_distance_m` of a case raised in the last `remember_days` is that case again: it becomes the
next revision of the same id (a later `last_seen`, new evidence), not a new case. A fixed camera
sees many problems from one place, so its sightings match by where they are in the picture: the
same source's case of that type whose box overlaps (two piles at either end of a street are two
cases, a pile that grew is one). Sightings without a position or box match the same source's cases
of that type. Kept in SQLite beside the outbox, so a restart remembers too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from agent.cases.case import Case
from agent.geo.earth import distance_m

_SCHEMA = """
CREATE TABLE IF NOT EXISTS known_cases (
    case_id TEXT PRIMARY KEY, type TEXT NOT NULL, source_id TEXT NOT NULL, lat REAL, lon REAL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS known_by_type ON known_cases (type, last_seen);
CREATE TABLE IF NOT EXISTS sightings (
    sighting_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, revision INTEGER NOT NULL, seen TEXT
);
"""

_BUSY_S = 30.0  # how long a statement waits for another process's write (batch workers share the file)


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL, waiting for the other processes opening the file: SQLite answers "database is
    locked" at once, without its busy wait, while another connection holds the file to do the same."""
    deadline = time.monotonic() + _BUSY_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@dataclass(frozen=True)
class KnownCase:
    case_id: str
    revision: int
    first_seen: datetime


@dataclass(frozen=True)
class OpenCase:
    """A case a source may verify on its next pass: where it is (a fixed camera's box, a located position)."""

    case_id: str
    revision: int
    type: str
    lat: float | None
    lon: float | None
    box: np.ndarray | None
    method: str | None  # how it was located (agent.cases.locate); None before the registry kept it


class CaseRegistry:
    """Finds the earlier case a sighting belongs to; remembers every case revision stored."""

    def __init__(self, path: Path, remember_days: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.remember = timedelta(days=remember_days)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=_BUSY_S)
        _use_wal(self._db)
        # the schema and its upgrades in one write transaction, taken at once: batch workers open the file
        # together, and a read that turns into a write would fail on another's commit instead of waiting
        self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
        try:
            self._upgrade()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _upgrade(self) -> None:
        """Add the columns a registry written by an older version lacks."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(known_cases)")}
        if "box" not in columns:  # databases from before fixed cameras matched by box
            self._db.execute("ALTER TABLE known_cases ADD COLUMN box TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sightings)")}
        if "seen" not in columns:  # a registry written before sightings were forgotten by time
            self._db.execute("ALTER TABLE sightings ADD COLUMN seen TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(known_cases)")}
        if "cleared_at" not in columns:  # before verification by the next pass
            self._db.execute("ALTER TABLE known_cases ADD COLUMN cleared_at TEXT")
            self._db.execute("ALTER TABLE known_cases ADD COLUMN method TEXT")

    def match(
        self,
        case_type: str,
        source_id: str,
        at: datetime,
        lat: float | None,
        lon: float | None,
        radius_m: float,
        box: np.ndarray | None = None,
    ) -> KnownCase | None:
        """The remembered case of this type that this sighting is a repeat of, if any: the nearest one.
        Two piles 40 m apart are both within a 50 m radius of a sighting between them; the most recent
        one is not necessarily its own. `box` (fixed cameras only): the sighting's box in the image,
        matched against the case's; there the best-overlapping box wins, as every case of a fixed camera
        stands at the camera's own position. Ties go to the case seen last."""
        since = (at - self.remember).isoformat()
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id, revision, first_seen, lat, lon, source_id, box FROM known_cases "
                "WHERE type = ? AND last_seen >= ? ORDER BY last_seen DESC",
                (case_type, since),
            ).fetchall()
        best: tuple[float, KnownCase] | None = None
        for case_id, revision, first_seen, known_lat, known_lon, known_source, known_box in rows:
            rank = _match_rank(
                (lat, lon, source_id, box),
                (known_lat, known_lon, known_source, None if known_box is None else np.array(json.loads(known_box))),
                radius_m,
            )
            if rank is not None and (best is None or rank < best[0]):  # strict: the most recent wins a tie
                best = rank, KnownCase(case_id, revision, datetime.fromisoformat(first_seen))
        return best[1] if best else None

    def replayed(self, sighting_id: str) -> KnownCase | None:
        """The case revision a sighting became the first time (the same footage processed again)."""
        with self._lock:
            row = self._db.execute(
                "SELECT s.case_id, s.revision, k.first_seen FROM sightings s JOIN known_cases k USING (case_id) "
                "WHERE s.sighting_id = ?",
                (sighting_id,),
            ).fetchone()
        return KnownCase(row[0], row[1], datetime.fromisoformat(row[2])) if row else None

    def record(self, case: Case, sighting_id: str | None = None, box: np.ndarray | None = None) -> None:
        """Remember a stored case revision (the newest revision wins, the first position and box stay)
        and the sighting it came from; `box` for fixed cameras."""
        lat = case.location.lat if case.location else None
        lon = case.location.lon if case.location else None
        box_json = json.dumps([round(float(v), 1) for v in box]) if box is not None else None
        with self._lock:
            self._db.execute(
                "INSERT INTO known_cases (case_id, type, source_id, lat, lon, first_seen, last_seen, revision, box, "
                "method) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(case_id) DO UPDATE SET "
                "cleared_at = CASE WHEN excluded.revision > revision THEN NULL ELSE cleared_at END, "  # seen again
                "revision = MAX(revision, excluded.revision), last_seen = MAX(last_seen, excluded.last_seen), "
                "lat = COALESCE(lat, excluded.lat), lon = COALESCE(lon, excluded.lon), "
                "box = COALESCE(box, excluded.box)",  # a pile does not move
                (
                    case.id,
                    case.type,
                    case.source_id,
                    lat,
                    lon,
                    case.first_seen.isoformat(),
                    case.last_seen.isoformat(),
                    case.revision,
                    box_json,
                    case.location.method if case.location else None,
                ),
            )
            if sighting_id is not None:
                self._db.execute(
                    "INSERT OR IGNORE INTO sightings VALUES (?, ?, ?, ?)",
                    (sighting_id, case.id, case.revision, case.last_seen.isoformat()),
                )
        self.forget_before(case.last_seen - self.remember)  # by footage time: old recordings stay matchable

    def open_cases(self, source_id: str, since: datetime) -> list[OpenCase]:
        """The source's cases seen since `since` that no `cleared` observation has closed, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id, revision, type, lat, lon, box, method FROM known_cases WHERE source_id = ? "
                "AND cleared_at IS NULL AND last_seen >= ? ORDER BY last_seen DESC",
                (source_id, since.isoformat()),
            ).fetchall()
        return [
            OpenCase(cid, rev, case_type, lat, lon, None if box is None else np.array(json.loads(box)), method)
            for cid, rev, case_type, lat, lon, box, method in rows
        ]

    def mark_cleared(self, case_id: str, at: datetime) -> None:
        """A `cleared` observation was sent: the case is not watched again until it is seen again."""
        with self._lock:
            self._db.execute("UPDATE known_cases SET cleared_at = ? WHERE case_id = ?", (at.isoformat(), case_id))

    def forget_before(self, moment: datetime) -> int:
        """Drop cases last seen before `moment`, their sightings, and any sighting from before `moment`
        (a pile passed every day stays known, but its old sightings would pile up without bound)."""
        with self._lock:
            n = self._db.execute("DELETE FROM known_cases WHERE last_seen < ?", (moment.isoformat(),)).rowcount
            self._db.execute(
                "DELETE FROM sightings WHERE seen < ? OR case_id NOT IN (SELECT case_id FROM known_cases)",
                (moment.isoformat(),),
            )
            return n

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM known_cases").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_Place = tuple[float | None, float | None, str, np.ndarray | None]  # lat, lon, source id, box


def _match_rank(sighting: _Place, known: _Place, radius_m: float) -> float | None:
    """How well a sighting matches a remembered case, lower is better; None when it is not that case.
    Box matches rank by overlap (negative, so any box match beats a position match), position matches
    by distance; sightings without either match their source's position-less cases, told apart only
    by recency (the query's order)."""
    lat, lon, source_id, box = sighting
    known_lat, known_lon, known_source, known_box = known
    if box is not None and known_box is not None:
        share = overlap_share(box, known_box)
        return -share if known_source == source_id and share >= MIN_OVERLAP_SHARE else None
    if lat is not None and lon is not None and known_lat is not None and known_lon is not None:
        distance = distance_m(lat, lon, known_lat, known_lon)
        return distance if distance <= radius_m else None
    return 0.0 if lat is None and known_lat is None and known_source == source_id else None


MIN_OVERLAP_SHARE = 0.2  # a pile that grew or a stall that opened its umbrella still overlaps its old box


def overlap_share(a: np.ndarray, b: np.ndarray) -> float:
    """How much of the smaller of two boxes (x1, y1, x2, y2) their intersection covers, 0 to 1."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(width * height / smaller) if smaller > 0 else 0.0

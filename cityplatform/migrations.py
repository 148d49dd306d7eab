"""Schema migrations of the PostgreSQL store: cityplatform/migrations/NNN_name.sql, applied in order,
each in its own transaction, recorded in schema_migrations. Receivers starting together take turns
(an advisory lock), so each migration runs once."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_LOCK = 7_300_001  # the advisory lock id of migrations (any constant all receivers share)


def migration_files() -> list[tuple[int, Path]]:
    """(version, file) in order; ValueError when two files claim one version."""
    found: dict[int, Path] = {}
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:3])
        if version in found:
            raise ValueError(f"migrations {found[version].name} and {path.name} share version {version}")
        found[version] = path
    return sorted(found.items())


def migrate(db) -> list[str]:  # db: psycopg.Connection in autocommit mode
    """Apply the migrations this database has not had; the names applied now."""
    applied_now = []
    db.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, path in migration_files():
            if version in done:
                continue
            with db.transaction():
                db.execute(path.read_text(encoding="utf-8"))
                db.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, path.name))
            log.info("store: migration %s applied", path.name)
            applied_now.append(path.name)
    finally:
        db.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
    return applied_now

"""The shared store of several receivers: PostgreSQL with PostGIS (psycopg 3, the `platform` extra).

Exactly once under concurrency: each case revision and each evidence file has a unique key, written
with ON CONFLICT DO NOTHING inside a transaction that holds an advisory lock on its case (or file), so
that two receivers handed the same message by the broker store it once and answer `stored` once.
The stored case revision also files its platform case (platform_cases.py) in the same transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cityplatform.config import PlatformConfig, PostgresConfig
from cityplatform.dispatch import load_grid
from cityplatform.migrations import migrate
from cityplatform.platform_cases import PlatformCases
from cityplatform.store import Tx

log = logging.getLogger(__name__)


def connect(config: PostgresConfig):
    """An autocommit psycopg connection; ValueError naming the server and the fix when it cannot be had."""
    try:
        import psycopg
    except ImportError:
        raise ValueError("postgres: needs psycopg: pip install 'edge-agent[platform]'") from None
    try:
        return psycopg.connect(config.conninfo(), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:  # its text names host and port, never a password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"postgres {config.host}:{config.port}/{config.dbname}: cannot connect ({first}); check the postgres "
            "section and the password in PGPASSWORD or ~/.pgpass"
        ) from None


class PostgresStore:
    """One connection per receiver, used by one thread at a time; the schema migrated on start."""

    def __init__(self, config: PostgresConfig, platform: PlatformConfig) -> None:
        self._config = config
        self._db = connect(config)
        self._lock = threading.Lock()
        migrate(self._db)
        self.platform = PlatformCases(platform)
        if platform.grid is not None:
            with self.transaction("grid") as tx:
                load_grid(tx.run, platform.grid.file)

    def _run(self, sql: str, params: tuple):
        return self._db.execute(sql.replace("?", "%s"), params)

    def _usable(self) -> None:
        """After the server restarted or the network broke, connect again (the failed message was not
        acknowledged: its agent sends it again)."""
        if self._db.broken or self._db.closed:
            log.warning(
                "store: the connection to %s:%s was lost; connecting again", self._config.host, self._config.port
            )
            self._db = connect(self._config)

    @contextmanager
    def transaction(self, lock: str) -> Iterator[Tx]:
        with self._lock:
            self._usable()
            with self._db.transaction():
                self._run("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (lock,))
                yield Tx(self._run)

    @contextmanager
    def direct(self) -> Iterator[Tx]:
        with self._lock:
            self._usable()
            yield Tx(self._run)

    def case_stored(self, tx: Tx, record: dict, received_at: float) -> None:
        """Note the agent and its key, and file the revision as a report of its platform case."""
        tx.run(
            "INSERT INTO agents VALUES (?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET key_id = EXCLUDED.key_id, "
            "last_case_at = GREATEST(agents.last_case_at, EXCLUDED.last_case_at)",
            (record["agent_id"], record["signature"]["key_id"], received_at, received_at),
        )
        self.platform.report(tx.run, record, received_at)

    def cleared_stored(self, tx: Tx, record: dict) -> None:
        self.platform.cleared(tx.run, record)

    def close(self) -> None:
        with self._lock:
            self._db.close()

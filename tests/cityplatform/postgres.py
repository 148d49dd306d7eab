"""A real PostgreSQL + PostGIS server for the platform tests: Debian's postgresql-15 binaries, initdb into
a temporary folder, listening on 127.0.0.1 and a free port; each test gets a fresh database with PostGIS.

As root, initdb and postgres refuse to run: they run as the `postgres` user (runuser), which owns the
folder. Skips with the package to install when the binaries are absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from cityplatform.config import PostgresConfig
from tests.conftest import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
SUPERUSER = "edge"


class Postgres:
    """One server; `database()` makes a fresh database with PostGIS and returns its conninfo."""

    def __init__(self) -> None:
        if not (BIN / "initdb").exists() or not POSTGIS_CONTROL.exists():
            pytest.skip("needs postgresql-15 and postgresql-15-postgis-3 (scripts/test installs them)")
        self.root = Path(tempfile.mkdtemp(prefix="edge-pg-"))
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run(str(BIN / "initdb"), "-D", str(self.root / "data"), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8")
        self._start()

    def _start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as_user, *cmd], check=True, capture_output=True, cwd=self.root)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname}"

    def database(self) -> PostgresConfig:
        """A fresh, empty database with the PostGIS extension."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        with psycopg.connect(self.conninfo(name), autocommit=True) as db:
            db.execute("CREATE EXTENSION postgis")
        return PostgresConfig(port=self.port, dbname=name, user=SUPERUSER, sslmode="disable")

    def restart(self) -> None:
        """Stop the server at once (as a crash would) and start it again on the same port."""
        self._run(str(BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        self._start()

    def stop(self) -> None:
        try:
            self._run(str(BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            time.sleep(0.1)
            shutil.rmtree(self.root, ignore_errors=True)

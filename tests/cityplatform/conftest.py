"""Fixtures of the platform tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cityplatform.config import PostgresConfig
from protocol.signing import Signer
from tests.cityplatform.postgres import Postgres


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.load_or_create(tmp_path / "keys")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres(postgres_server: Postgres) -> PostgresConfig:
    """The conninfo of a fresh database with PostGIS on a real PostgreSQL at 127.0.0.1."""
    return postgres_server.database()

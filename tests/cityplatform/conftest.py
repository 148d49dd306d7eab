"""Fixtures of the platform tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.signing import Signer


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.load_or_create(tmp_path / "keys")

"""The TLS part of a page's settings, shared by the box's `web:` and the platform's `review:` sections."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TlsFiles(BaseModel):
    """The page's certificate and its private key (PEM files)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cert_file: Path = Field(description="PEM certificate (chain) the page presents")
    key_file: Path = Field(description="PEM private key of that certificate")

    @field_validator("cert_file", "key_file")
    @classmethod
    def _exists(cls, value: Path) -> Path:
        if not os.path.isfile(value):  # not Path.is_file: False, not OSError, for a name too long (Python 3.11)
            raise ValueError("file not found; give the path of an existing PEM file")
        return value

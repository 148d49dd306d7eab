"""The `review:` section of the receiver's YAML: where the review page listens and who may log in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from webauth.passwords import check_hash_format
from webauth.settings import BindAddress, TlsFiles, require_tls_off_loopback


class ReviewPageConfig(BaseModel):
    """The review page of `edge-agent platform-review-page`; sessions end when the page restarts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    bind: BindAddress = Field(
        default="127.0.0.1", description="127.0.0.1 keeps the page on this host; any other needs tls"
    )
    port: int = Field(default=8444, ge=1, le=65535, description="TCP port of the page")
    user: str = Field(min_length=1, max_length=64, description="the inspectors' login name")
    password_hash: str = Field(description="from `edge-agent web-password`; never the password itself")
    tls: TlsFiles | None = Field(default=None, description="certificate and key; required off localhost")
    language: Literal["zh-CN", "en"] = Field(default="zh-CN", description="the page's default language")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="how long a login lasts")
    queue_limit: int = Field(default=200, ge=1, le=5000, description="at most this many new cases in the queue")

    @field_validator("password_hash")
    @classmethod
    def _a_hash(cls, value: str) -> str:
        check_hash_format(value)
        return value

    @model_validator(mode="after")
    def _tls_off_localhost(self) -> ReviewPageConfig:
        require_tls_off_loopback("review", self.bind, self.tls)
        return self

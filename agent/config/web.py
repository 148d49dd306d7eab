"""The `web:` section: the box's own page (live view, zones, recent cases), off unless enabled."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.config.sources import _Strict
from webauth.passwords import check_hash_format
from webauth.settings import BindAddress, TlsFiles, require_tls_off_loopback


class WebConfig(_Strict):
    """Where the page listens and who may log in; sessions end when the agent restarts."""

    enabled: bool = False
    bind: BindAddress = Field(
        default="127.0.0.1", description="127.0.0.1 keeps the page on the box; any other needs tls"
    )
    port: int = Field(default=8443, ge=1, le=65535, description="TCP port of the page")
    user: str = Field(default="", max_length=64, description="the one login name")
    password_hash: str = Field(default="", description="from `edge-agent web-password`; never the password itself")
    tls: TlsFiles | None = Field(default=None, description="certificate and key; required off this box")
    language: Literal["zh-CN", "en"] = Field(default="zh-CN", description="the page's default language")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="how long a login lasts")

    @field_validator("password_hash")
    @classmethod
    def _a_hash(cls, value: str) -> str:
        if value:
            check_hash_format(value)
        return value

    @model_validator(mode="after")
    def _usable(self) -> WebConfig:
        if not self.enabled:
            return self
        if not self.user or not self.password_hash:
            raise ValueError(
                "web.enabled needs web.user and web.password_hash; make the hash with `edge-agent web-password`"
            )
        require_tls_off_loopback("web", self.bind, self.tls)
        return self

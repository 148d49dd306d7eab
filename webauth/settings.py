"""What a page's settings share, the box's `web:` and the platform's `review:` sections (and the box's
`metrics:` address): the address to listen on, the TLS files, and that a page off this host needs TLS."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


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


def bind_address(value: str) -> str:
    """An address to listen on: an IP address, not a host name (which could resolve to another interface)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("not an IP address; give 127.0.0.1 (this host only) or one interface's address") from None


BindAddress = Annotated[str, AfterValidator(bind_address)]  # a settings field checked by `bind_address`


def require_tls_off_loopback(section: str, bind: str, tls: TlsFiles | None) -> None:
    """A page listening beyond this host needs TLS: its password and session cookie must not cross the network
    in clear. `section` names the YAML section (`web`, `review`) in the error."""
    if tls is None and not ipaddress.ip_address(bind).is_loopback:
        raise ValueError(
            f"{section}.bind {bind} opens the page to the network: give {section}.tls (cert_file, key_file) too, "
            "or bind 127.0.0.1"
        )

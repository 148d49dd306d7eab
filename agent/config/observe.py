"""The `metrics:` section: where the local HTTP endpoint for Prometheus and health checks listens."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from agent.config.sources import _Strict


def bind_address(value: str) -> str:
    """An address to listen on, as the metrics and the page take it: an IP address, not a host name."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("not an IP address; give 127.0.0.1 (this box) or one interface's address") from None
    return value


class MetricsConfig(_Strict):
    """`/metrics`, `/healthz` and `/readyz` on one port; left out, no port is opened."""

    port: int = Field(ge=1, le=65535, description="TCP port, e.g. 9108")
    bind: str = Field(
        default="127.0.0.1",
        description="address to listen on: 127.0.0.1 keeps it on the box; 0.0.0.0 opens it to the network",
    )

    @field_validator("bind")
    @classmethod
    def _an_address(cls, value: str) -> str:
        return bind_address(value)

"""The `metrics:` section: where the local HTTP endpoint for Prometheus and health checks listens."""

from __future__ import annotations

from pydantic import Field

from agent.config.sources import _Strict
from webauth.settings import BindAddress


class MetricsConfig(_Strict):
    """`/metrics`, `/healthz` and `/readyz` on one port; left out, no port is opened."""

    port: int = Field(ge=1, le=65535, description="TCP port, e.g. 9108")
    bind: BindAddress = Field(
        default="127.0.0.1",
        description="address to listen on: 127.0.0.1 keeps it on the box; 0.0.0.0 opens it to the network",
    )

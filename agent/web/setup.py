"""Builds the page when the configuration enables it; Starlette and uvicorn are imported only then."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import AgentConfig, ConfigError
from agent.observe.view import AgentView
from agent.updates.reload import Reloader
from agent.web.zones import Submit

if TYPE_CHECKING:
    from agent.web.server import WebServer


def web_server(
    config: AgentConfig, view: AgentView, reloader: Reloader, submit: Submit, config_path: Path | None
) -> WebServer | None:
    """The page's server (not started yet), or None when `web.enabled` is false."""
    if not config.web.enabled:
        return None
    try:
        from agent.web.server import WebServer
    except ImportError as exc:
        raise ConfigError(
            f"web.enabled needs the page's packages ({exc.name} is missing): pip install 'edge-agent[web]'"
        ) from None
    return WebServer(config.web, view, reloader, submit, config_path)

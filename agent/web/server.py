"""Serves the box's page (webauth.serving: uvicorn in a daemon thread; a taken port is a ConfigError at
start-up)."""

from __future__ import annotations

import logging
from pathlib import Path

from agent.config import ConfigError
from agent.config.web import WebConfig
from agent.observe.view import AgentView
from agent.pipeline import state_paths
from agent.updates.reload import Reloader
from agent.web.app import build_app, login_renderer
from agent.web.cases import CaseBrowser
from agent.web.live import LiveView
from agent.web.zones import Submit, ZoneEditor
from protocol.signing import PUBLIC_KEY_FILE
from webauth.guard import Auth
from webauth.serving import ThreadedServer

log = logging.getLogger(__name__)


class WebServer:
    """The page for one run of the agent; `start()` after the observers, `stop()` before them."""

    def __init__(
        self, settings: WebConfig, view: AgentView, reloader: Reloader, submit: Submit, config_path: Path | None
    ) -> None:
        self.settings = settings
        outbox_dir, keys_dir = state_paths(view.config)
        self.cases = CaseBrowser(outbox_dir, keys_dir / PUBLIC_KEY_FILE, view.config.state_dir / "private")
        auth = Auth.for_page(
            settings.user, settings.password_hash, login_renderer(settings.language), settings.session_hours
        )
        app = build_app(
            auth, LiveView(view), self.cases, ZoneEditor(config_path, reloader, submit), settings.language, secure=True
        )
        try:
            self._server = ThreadedServer(app, settings.bind, settings.port, "web", "web", settings.tls)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.port = self._server.port
        self.url = self._server.url

    def start(self) -> None:
        self._server.start()
        log.info("web: the box's page on %s (user %s)", self.url, self.settings.user)

    def stop(self) -> None:
        self._server.stop()
        self.cases.close()

"""Serves the page with uvicorn in a daemon thread, on a socket bound here so that a taken port is a
clear ConfigError at start-up, not a dying thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path

import uvicorn

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
from webauth.sessions import SessionSigner

log = logging.getLogger(__name__)


class WebServer:
    """The page for one run of the agent; `start()` after the observers, `stop()` before them."""

    def __init__(
        self, settings: WebConfig, view: AgentView, reloader: Reloader, submit: Submit, config_path: Path | None
    ) -> None:
        self.settings = settings
        outbox_dir, keys_dir = state_paths(view.config)
        self.cases = CaseBrowser(outbox_dir, keys_dir / PUBLIC_KEY_FILE, view.config.state_dir / "private")
        auth = Auth(
            settings.user,
            settings.password_hash,
            login_renderer(settings.language),
            signer=SessionSigner(lifetime_s=settings.session_hours * 3600),
        )
        app = build_app(
            auth, LiveView(view), self.cases, ZoneEditor(config_path, reloader, submit), settings.language, secure=True
        )
        tls = settings.tls
        self._config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
        )
        self._server = uvicorn.Server(self._config)
        self._socket = _bound(settings.bind, settings.port)
        self.port = self._socket.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{settings.bind}:{self.port}/"
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("web: the box's page on %s (user %s)", self.url, self.settings.user)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
        self.cases.close()

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))


def _bound(bind: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"web: cannot listen on {bind}:{port} ({exc.strerror or exc}); choose a free web.port or a local web.bind"
        ) from None
    sock.listen(64)
    return sock

"""Serves the review page over the receiver's PostgreSQL store (webauth.serving: uvicorn in a daemon thread;
a taken port is a clear error at start-up): `start` and `stop`, or `serve_forever` for the command."""

from __future__ import annotations

import logging
import signal
import threading

from cityplatform.config import ReceiverConfig
from cityplatform.review.app import build_app, login_renderer
from cityplatform.store_postgres import PostgresStore
from webauth.guard import Auth
from webauth.serving import ThreadedServer

log = logging.getLogger(__name__)


class ReviewServer:
    """The review page of one receiver configuration (its postgres and review sections)."""

    def __init__(self, config: ReceiverConfig) -> None:
        settings = config.review
        if config.postgres is None or settings is None:
            raise ValueError("the review page needs the receiver's postgres and review sections (docs/platform.md)")
        self.settings = settings
        self.store = PostgresStore(config.postgres, config.platform)
        auth = Auth.for_page(
            settings.user, settings.password_hash, login_renderer(settings.language), settings.session_hours
        )
        app = build_app(auth, self.store, config.store_dir, settings.language, settings.queue_limit, secure=True)
        try:
            self._server = ThreadedServer(app, settings.bind, settings.port, "review", "review-page", settings.tls)
        except ValueError:
            self.store.close()
            raise
        self.port = self._server.port
        self.url = self._server.url

    def start(self) -> None:
        self._server.start()
        log.info("review: the review page on %s (user %s)", self.url, self.settings.user)

    def serve_forever(self) -> None:
        """Until Ctrl-C or SIGTERM, then stop serving and close the store (uvicorn in the main thread
        would raise the signal again after its shutdown, and the command would end killed, not done)."""
        stopping = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stopping.set())
        self.start()
        while self._server.is_alive() and not stopping.wait(1.0):
            pass
        log.info("review: the review page stops")
        self.stop()

    def stop(self) -> None:
        self._server.stop()
        self.store.close()

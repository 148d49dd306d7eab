"""Serves the review page with uvicorn on a socket bound here (a taken port is a clear error at start-up,
not a dying thread), over the receiver's PostgreSQL store, in a daemon thread: `start` and `stop`, or
`serve_forever` for the command."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading

import uvicorn

from cityplatform.config import ReceiverConfig
from cityplatform.review.app import build_app, login_renderer
from cityplatform.store_postgres import PostgresStore
from webauth.guard import Auth
from webauth.sessions import SessionSigner

log = logging.getLogger(__name__)


class ReviewServer:
    """The review page of one receiver configuration (its postgres and review sections)."""

    def __init__(self, config: ReceiverConfig) -> None:
        settings = config.review
        if config.postgres is None or settings is None:
            raise ValueError("the review page needs the receiver's postgres and review sections (docs/platform.md)")
        self.settings = settings
        self.store = PostgresStore(config.postgres, config.platform)
        auth = Auth(
            settings.user,
            settings.password_hash,
            login_renderer(settings.language),
            signer=SessionSigner(lifetime_s=settings.session_hours * 3600),
        )
        app = build_app(auth, self.store, config.store_dir, settings.language, settings.queue_limit, secure=True)
        tls = settings.tls
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ssl_certfile=str(tls.cert_file) if tls else None,
                ssl_keyfile=str(tls.key_file) if tls else None,
            )
        )
        try:
            self._socket = _bound(settings.bind, settings.port)
        except ValueError:
            self.store.close()
            raise
        self.port = self._socket.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{settings.bind}:{self.port}/"
        self._thread = threading.Thread(target=self._serve, name="review-page", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("review: the review page on %s (user %s)", self.url, self.settings.user)

    def serve_forever(self) -> None:
        """Until Ctrl-C or SIGTERM, then stop serving and close the store (uvicorn in the main thread
        would raise the signal again after its shutdown, and the command would end killed, not done)."""
        stopping = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stopping.set())
        self.start()
        while self._thread.is_alive() and not stopping.wait(1.0):
            pass
        log.info("review: the review page stops")
        self.stop()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
        self.store.close()

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
        raise ValueError(
            f"review: cannot listen on {bind}:{port} ({exc.strerror or exc}); choose a free review.port or a "
            "local review.bind"
        ) from None
    sock.listen(64)
    return sock

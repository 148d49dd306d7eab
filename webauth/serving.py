"""A page's uvicorn server in a daemon thread, on a socket bound here so that a taken port is a clear error
at start-up (naming the configuration section), not a dying thread. The box's page and the review page both
run one."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import uvicorn

from webauth.settings import TlsFiles


class ThreadedServer:
    """`app` served on `bind:port` (0: a free port), over TLS when given a certificate and key."""

    def __init__(self, app: Any, bind: str, port: int, section: str, name: str, tls: TlsFiles | None = None) -> None:
        """`section` names the configuration section in the error for a port that cannot be had."""
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
        self._socket = _bound(bind, port, section)
        self.port = self._socket.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{bind}:{self.port}/"
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))


def _bound(bind: str, port: int, section: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        raise ValueError(
            f"{section}: cannot listen on {bind}:{port} ({exc.strerror or exc}); choose a free {section}.port or a "
            f"local {section}.bind"
        ) from None
    sock.listen(64)
    return sock

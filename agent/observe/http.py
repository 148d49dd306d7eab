"""The local HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` and `/readyz` (JSON).

A ThreadingHTTPServer in a daemon thread: a slow scraper never holds up the next one, and the agent's
shutdown does not wait for it. Request lines go to the debug log only (a scrape every 15 s would
fill the journal).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agent.config import ConfigError
from agent.config.observe import MetricsConfig
from agent.observe.health import liveness, readiness
from agent.observe.view import AgentView

log = logging.getLogger(__name__)


class ObserveServer:
    """Serves the three paths until `stop()`."""

    def __init__(self, settings: MetricsConfig, view: AgentView, registry: CollectorRegistry) -> None:
        handler = _handler(view, registry)
        try:
            self._server = ThreadingHTTPServer((settings.bind, settings.port), handler)
        except OSError as exc:
            raise ConfigError(
                f"metrics: cannot listen on {settings.bind}:{settings.port} ({exc.strerror or exc}); "
                "choose a free metrics.port or a local metrics.bind address"
            ) from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="observe-http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("metrics: /metrics, /healthz and /readyz on http://%s:%d", self._server.server_address[0], self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(view: AgentView, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                self._json(200, liveness(view))
            elif path == "/readyz":
                ready, report = readiness(view)
                self._json(200 if ready else 503, report)
            else:
                self._json(404, {"error": "not found; try /metrics, /healthz or /readyz"})

        def _json(self, code: int, body: dict[str, object]) -> None:
            self._send(code, "application/json", json.dumps(body).encode())

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics: %s %s", self.address_string(), format % args)

    return Handler

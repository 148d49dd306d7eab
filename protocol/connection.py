"""An MQTT 5 connection that stays up: reconnects with exponential backoff and jitter, and names
each failure in words a city's IT staff can act on (wrong password, unknown CA, host unreachable),
logged once per change of state rather than once per retry."""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to connect. `password` is a secret: it is never logged."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600  # the broker keeps our subscriptions and queued acks this long
    retry_initial_s: float = 1.0
    retry_cap_s: float = 30.0


class Connection:
    """Owns a paho client and its network loop in a thread; `connected` is set while usable."""

    def __init__(
        self,
        settings: MqttSettings,
        will: tuple[str, bytes] | None = None,
        on_connected: Callable[[mqtt.Client], None] = lambda client: None,
        on_message: Callable[[mqtt.MQTTMessage], None] = lambda message: None,
        name: str = "mqtt",
    ) -> None:
        self.settings = settings
        self.connected = threading.Event()
        self.attempts: deque[float] = deque(maxlen=64)  # monotonic times of connection attempts
        self._on_connected = on_connected
        self._stop = threading.Event()
        self._problem = ""
        self._refused = ""
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
        )
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.ca_file:
            self.client.tls_set(
                ca_certs=str(settings.ca_file),
                certfile=str(settings.client_cert) if settings.client_cert else None,
                keyfile=str(settings.client_key) if settings.client_key else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._handle_connect
        self.client.on_disconnect = self._handle_disconnect
        self.client.on_message = lambda _client, _userdata, message: on_message(message)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, last_words: tuple[str, bytes] | None = None) -> None:
        if self.connected.is_set() and last_words:
            self.client.publish(last_words[0], last_words[1], qos=1, retain=True).wait_for_publish(2)
        self._stop.set()
        self.client.disconnect()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self.attempts.append(time.monotonic())
            started = time.monotonic()
            reason = self._session()
            if self._stop.is_set():
                break
            self._report(reason)
            if time.monotonic() - started > 60:
                delay = 0.0  # it was healthy for a while: start the backoff again from the bottom
            delay = self.settings.retry_initial_s if delay == 0 else min(delay * 2, self.settings.retry_cap_s)
            wait = delay * random.uniform(0.8, 1.2)
            log.debug("mqtt: next connection attempt in %.1f s", wait)
            self._stop.wait(wait)

    def _session(self) -> str:
        """Connect and run the network loop until the connection ends; returns why it ended."""
        s = self.settings
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        self._refused = ""
        try:
            self.client.connect(s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props)
        except Exception as exc:  # every failure to connect is classified and retried, never raised
            return describe_failure(exc, s)
        while not self._stop.is_set():
            rc = self.client.loop(timeout=0.5)
            if self._refused:
                return self._refused
            if rc != mqtt.MQTT_ERR_SUCCESS:
                break
        self.connected.clear()
        return self._refused or f"lost the connection to {s.host}:{s.port}"

    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = describe_refusal(str(reason_code))
            return
        if self._problem:
            log.info("mqtt: connected to %s:%d again", self.settings.host, self.settings.port)
        else:
            log.info("mqtt: connected to %s:%d", self.settings.host, self.settings.port)
        self._problem = ""
        self._on_connected(client)
        self.connected.set()

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()

    def _report(self, reason: str) -> None:
        if reason != self._problem:
            log.warning("mqtt: %s; retrying with backoff (up to %g s)", reason, self.settings.retry_cap_s)
            self._problem = reason


def describe_failure(exc: BaseException, s: MqttSettings) -> str:
    where = f"{s.host}:{s.port}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: is the broker running and is the port right?"
    if isinstance(exc, socket.gaierror):
        return f"host name {s.host!r} not found: check uploader.mqtt.host and DNS"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the broker's TLS certificate is not trusted ({exc.verify_message}): check uploader.mqtt.ca_file"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed ({exc.reason}): check the port and the certificates"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out connecting to {where}: host unreachable or the link is down"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or exc}"
    return f"cannot connect to {where}: {exc}"


def describe_refusal(reason: str) -> str:
    if "user name or password" in reason.lower() or "not authorized" in reason.lower():
        # mosquitto answers a wrong password with "Not authorized"
        return (
            f"the broker refused the login ({reason}): wrong username or password, or this agent is not allowed "
            "in; check uploader.mqtt.username/password and the broker's accounts"
        )
    return f"the broker refused the connection: {reason}"

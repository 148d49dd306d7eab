"""Signed session tokens for a cookie: who logged in, until when, and the session's CSRF token.

The token is `base64url(json).base64url(hmac)`; the server keeps no session table, and a new secret
(a restart, by default) logs everyone out. The CSRF token is derived from the session's random nonce,
so a page of another site can neither read nor guess it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Session:
    """A valid session: the user and the token every change must carry."""

    user: str
    csrf: str
    expires: float


class SessionSigner:
    """Issues and checks tokens with one secret (random per process unless given)."""

    def __init__(self, secret: bytes | None = None, lifetime_s: float = 12 * 3600) -> None:
        self._secret = secret or os.urandom(32)
        self.lifetime_s = lifetime_s

    def issue(self, user: str, now: float | None = None) -> str:
        body = {"u": user, "e": (now or time.time()) + self.lifetime_s, "n": _b64(os.urandom(16))}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}"

    def read(self, token: str | None, now: float | None = None) -> Session | None:
        """The session of a valid, unexpired token; None for anything else (never raises)."""
        if not token or token.count(".") != 1:
            return None
        payload, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            user, expires, nonce = str(body["u"]), float(body["e"]), str(body["n"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < (now or time.time()):
            return None
        csrf = hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()
        return Session(user, csrf, expires)

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")

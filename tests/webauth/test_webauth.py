"""webauth on its own: hashes, tokens and the login gate on a tiny Starlette app served by a real uvicorn
on 127.0.0.1 (no test client): 401 and redirects without a session, CSRF on every change, the rate limit."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from webauth.guard import Auth, LoginGuard, login_routes
from webauth.passwords import check_hash_format, hash_password, verify_password
from webauth.ratelimit import LoginLimiter
from webauth.sessions import SessionSigner

PASSWORD = "correct horse"


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password(PASSWORD)
    assert encoded.startswith("scrypt$16384$8$1$") and PASSWORD not in encoded
    assert verify_password(PASSWORD, encoded) and not verify_password("correct hors", encoded)
    assert hash_password(PASSWORD) != encoded  # salted


@pytest.mark.parametrize("bad", ["", "plain-password", "scrypt$16384$8$1$!!$!!", "scrypt$1000$8$1$AAAA$AAAA"])
def test_a_malformed_hash_is_refused_with_the_fix(bad: str) -> None:
    with pytest.raises(ValueError, match="edge-agent web-password"):
        check_hash_format(bad)


def test_a_token_is_refused_when_altered_expired_or_signed_with_another_secret() -> None:
    signer = SessionSigner(b"k" * 32, lifetime_s=60)
    token = signer.issue("admin", now=1000.0)
    session = signer.read(token, now=1030.0)
    assert session is not None and session.user == "admin" and len(session.csrf) == 64
    assert signer.read(token, now=1061.0) is None
    payload, mac = token.split(".")
    assert signer.read(payload[:-2] + "xx." + mac, now=1030.0) is None
    assert SessionSigner(b"o" * 32).read(token, now=1030.0) is None
    assert signer.read("garbage", now=1030.0) is None
    assert signer.read(signer.issue("admin", now=1000.0), now=1030.0).csrf != session.csrf  # per session


def test_the_limiter_lets_an_address_try_again_once_its_window_has_passed() -> None:
    limiter = LoginLimiter(max_failures=3, window_s=60)
    for i in range(3):
        assert limiter.retry_after_s("a", now=i) == 0
        limiter.failed("a", now=i)
    assert limiter.retry_after_s("a", now=10) == pytest.approx(50)
    assert limiter.retry_after_s("b", now=10) == 0  # another address is not held up
    assert limiter.retry_after_s("a", now=60.5) == 0


class Served:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: str = "", headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body.encode(), headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read().decode()
        finally:
            connection.close()

    def log_in(self, password: str = PASSWORD, user: str = "admin") -> tuple[int, http.client.HTTPMessage]:
        _, headers, _ = self.request("GET", "/login")
        token = _cookie(headers, "login_csrf")
        form = urlencode({"csrf": token, "user": user, "password": password, "next": "//evil.example/"})
        status, answer, _ = self.request(
            "POST",
            "/login",
            form,
            {"Cookie": f"login_csrf={token}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        return status, answer


def _cookie(headers: http.client.HTTPMessage, name: str) -> str:
    for value in headers.get_all("set-cookie") or []:
        if value.startswith(name + "="):
            return value.split(";")[0].split("=", 1)[1]
    return ""


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    def render(request: Request, token: str, error: str | None, status: int) -> Response:
        return HTMLResponse(f"<form>{token} {error or ''}</form>", status_code=status)

    auth = Auth("admin", hash_password(PASSWORD), render, limiter=LoginLimiter(max_failures=3, window_s=300))

    async def page(request: Request) -> Response:
        return PlainTextResponse(f"hello {request.state.session.user}")

    async def csrf(request: Request) -> Response:
        return PlainTextResponse(request.state.session.csrf)

    app = Starlette(
        routes=[
            *login_routes(auth),
            Route("/", page),
            Route("/csrf", csrf),
            Route("/api/thing", page, methods=["GET", "POST"]),
        ],
        middleware=[Middleware(LoginGuard, auth=auth)],
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield Served(sock.getsockname()[1])
    server.should_exit = True
    thread.join(5)


def test_without_a_session_pages_redirect_and_the_api_answers_401(served: Served) -> None:
    status, headers, _ = served.request("GET", "/")
    assert (status, headers["location"]) == (303, "/login?next=/")
    assert served.request("GET", "/api/thing")[0] == 401
    assert served.request("POST", "/api/thing")[0] == 401


def test_a_login_gives_a_strict_secure_cookie_and_changes_need_its_csrf_token(served: Served) -> None:
    status, headers = served.log_in()
    assert status == 303 and headers["location"] == "/"  # never back to another site
    cookie = next(v for v in headers.get_all("set-cookie") if v.startswith("session="))
    assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=strict"))
    session = {"Cookie": f"session={_cookie(headers, 'session')}"}
    assert served.request("GET", "/", headers=session)[2] == "hello admin"
    assert served.request("POST", "/api/thing", headers=session)[0] == 403
    status, _, body = served.request("POST", "/api/thing", headers=session | {"X-CSRF-Token": "x" * 64})
    assert status == 403 and "CSRF" in body
    token = served.request("GET", "/csrf", headers=session)[2]  # what a page of the app embeds
    assert served.request("POST", "/api/thing", headers=session | {"X-CSRF-Token": token})[0] == 200


def test_a_login_form_without_its_token_is_refused(served: Served) -> None:
    form = urlencode({"csrf": "made-up", "user": "admin", "password": PASSWORD})
    status, headers, _ = served.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and not _cookie(headers, "session")


def test_the_login_is_rate_limited_even_for_the_right_password(served: Served) -> None:
    for _ in range(3):
        assert served.log_in("wrong")[0] == 401
    status, headers = served.log_in()
    assert status == 429 and int(headers["retry-after"]) > 0 and not _cookie(headers, "session")

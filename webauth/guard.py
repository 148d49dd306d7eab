"""The login gate: a middleware that lets nothing but the public paths through without a session (pages
redirect to the login, the API answers 401) and refuses every change without the session's CSRF
token, and the /login and /logout routes (rate-limited, with their own CSRF token on the form)."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from webauth.passwords import verify_password
from webauth.ratelimit import LoginLimiter
from webauth.sessions import Session, SessionSigner

SESSION_COOKIE = "session"
LOGIN_COOKIE = "login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# (request, form token, error message or None, HTTP status) -> the login page
LoginPage = Callable[[Request, str, str | None, int], Response]


@dataclass
class Auth:
    """One user and its password hash; `render` draws the login form in the page's own language."""

    user: str
    password_hash: str
    render: LoginPage
    signer: SessionSigner = field(default_factory=SessionSigner)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    public: tuple[str, ...] = ("/login", "/healthz")

    def session(self, request: Request) -> Session | None:
        return self.signer.read(request.cookies.get(SESSION_COOKIE))

    @classmethod
    def for_page(cls, user: str, password_hash: str, render: LoginPage, session_hours: float) -> Auth:
        """A page's login, as its settings give it (`web:`, `review:`): sessions last `session_hours`."""
        return cls(user, password_hash, render, signer=SessionSigner(lifetime_s=session_hours * 3600))


class LoginGuard:
    """ASGI middleware in front of the whole app; a valid session is in `request.state.session`."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path, method = request.url.path, request.method
        session = self.auth.session(request)
        scope.setdefault("state", {})["session"] = session
        if session is None and path not in self.auth.public:
            if path.startswith("/api/") or method not in SAFE_METHODS:
                response: Response = _json(401, "log in first: the page at /login")
            else:
                response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            await response(scope, receive, send)
            return
        if session is not None and method not in SAFE_METHODS and path not in self.auth.public:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                await _json(403, "missing or wrong CSRF token: send the page's token in X-CSRF-Token")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def login_routes(auth: Auth, secure_cookies: bool = True) -> list[Route]:
    """GET/POST /login and POST /logout (which the guard lets through only with the CSRF token)."""

    async def show(request: Request) -> Response:
        # one token per browser, kept while it has one: a second tab or the favicon's redirect to this page
        # must not invalidate the form already shown
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = auth.render(request, token, None, 200)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, secure=secure_cookies, samesite="strict", path="/")
        return response

    async def login(request: Request) -> Response:
        address = request.client.host if request.client else "?"
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        token = request.cookies.get(LOGIN_COOKIE, "")
        if not token or not hmac.compare_digest(form.get("csrf", "").encode(), token.encode()):
            return auth.render(request, token, "csrf", 403)
        wait_s = auth.limiter.retry_after_s(address)
        if wait_s > 0:
            response = auth.render(request, token, "rate", 429)
            response.headers["Retry-After"] = str(int(wait_s) + 1)
            return response
        user_ok = hmac.compare_digest(form.get("user", "").encode(), auth.user.encode())
        password_ok = verify_password(form.get("password", ""), auth.password_hash)  # also for a wrong user
        if not (user_ok and password_ok):
            auth.limiter.failed(address)
            return auth.render(request, token, "wrong", 401)
        auth.limiter.succeeded(address)
        response = RedirectResponse(_local(form.get("next", "/")), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            auth.signer.issue(auth.user),
            max_age=int(auth.signer.lifetime_s),
            httponly=True,
            secure=secure_cookies,
            samesite="strict",
            path="/",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def logout(request: Request) -> Response:
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure_cookies, httponly=True, samesite="strict")
        return response

    return [
        Route("/login", show, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def _local(target: str) -> str:
    """Only a path on this site to go back to after the login (never `//host` or `https://...`)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _json(status: int, error: str) -> Response:
    return Response(json.dumps({"error": error}), status_code=status, media_type="application/json")

"""The review page's routes: the page, its JSON API (queue, case, grid, review) and the evidence files,
all behind the login (webauth) except /login and /healthz. A review is written by `review_case`, the
function `edge-agent platform-review` calls, with the logged-in user as the reviewer."""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cityplatform.review.queue import case_detail, evidence_path, grid_cells, media_type, new_cases
from cityplatform.reviews import CASE_TYPES, REASONS, Review, review_case
from cityplatform.store import Store
from webauth.guard import Auth, LoginGuard, login_routes
from webauth.page import SECURITY_HEADERS, language, login_form

LOGIN_TITLES = {"zh-CN": "登录 · 案件审核", "en": "Log in · case review"}
MAX_REVIEW_BODY = 4096


def build_app(
    auth: Auth, store: Store, store_dir: Path, default_language: str, queue_limit: int, secure: bool
) -> Starlette:
    def read(query: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """Run one read in a worker thread (the store's connection serves one thread at a time)."""

        def run() -> Any:
            with store.direct() as tx:
                return query(tx.run, *args)

        return run_in_threadpool(run)

    async def show(request: Request) -> Response:
        text = _static_text("review.html").replace("{{lang}}", language(request, default_language))
        return HTMLResponse(text.replace("{{csrf}}", html.escape(request.state.session.csrf)), headers=SECURITY_HEADERS)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def session(request: Request) -> Response:
        return JSONResponse(
            {
                "user": request.state.session.user,
                "language": language(request, default_language),
                "reasons": list(REASONS),
                "case_types": list(CASE_TYPES),
            }
        )

    async def queue(request: Request) -> Response:
        return JSONResponse(await read(new_cases, queue_limit), headers={"Cache-Control": "no-store"})

    async def grid(request: Request) -> Response:
        return JSONResponse(await read(grid_cells))

    async def case(request: Request) -> Response:
        found = await read(case_detail, request.path_params["case_id"])
        return JSONResponse(found) if found else _error(404, "no such platform case")

    async def review(request: Request) -> Response:
        body = await request.body()
        try:
            data = json.loads(body) if len(body) <= MAX_REVIEW_BODY else None
            decision, reason, corrected = data["decision"], data.get("reason"), data.get("type")
        except (ValueError, TypeError, KeyError):
            return _error(400, 'send JSON {"decision": "confirm" | "reject" | "correct", "reason"?, "type"?}')
        if not all(isinstance(v, str | None) for v in (decision, reason, corrected)):
            return _error(400, "decision, reason and type are strings")
        decided = Review(request.path_params["case_id"], decision, reason, corrected, request.state.session.user)
        try:
            review_id = await run_in_threadpool(review_case, store, decided)
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse({"review": review_id, "platform_case": decided.platform_case_id, "decision": decision})

    async def evidence(request: Request) -> Response:
        p = request.path_params
        found = await read(evidence_path, store_dir, p["agent_id"], p["case_id"], p["revision"], p["name"])
        if found is None:
            return _error(404, "no such evidence file of a stored report")
        kept = {"Cache-Control": "private, max-age=3600"}
        return FileResponse(found, media_type=media_type(found.name), headers=kept)

    routes = [
        *login_routes(auth, secure_cookies=secure),
        Route("/", show),
        Route("/healthz", healthz),
        Route("/api/session", session),
        Route("/api/queue", queue),
        Route("/api/grid", grid),
        Route("/api/cases/{case_id:int}", case),
        Route("/api/cases/{case_id:int}/review", review, methods=["POST"]),
        Route("/api/evidence/{agent_id}/{case_id}/r{revision:int}/{name}", evidence),
        Mount(
            "/static", StaticFiles(packages=[("cityplatform.review", "static"), ("webauth", "static")]), name="static"
        ),
    ]
    return Starlette(routes=routes, middleware=[Middleware(LoginGuard, auth=auth)])


def login_renderer(default_language: str):
    """The login form for webauth, in the visitor's language, under the review page's title."""

    def render(request: Request, token: str, error: str | None, status: int) -> Response:
        lang = language(request, default_language)
        return login_form(LOGIN_TITLES[lang], lang, token, error, status, request.query_params.get("next", "/"))

    return render


@cache
def _static_text(name: str) -> str:
    return resources.files("cityplatform.review").joinpath("static", name).read_text(encoding="utf-8")


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)

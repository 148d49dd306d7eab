"""The page's routes: three pages (live, zones, cases), their JSON API and the evidence files, all
behind the login (webauth) except /login and /healthz."""

from __future__ import annotations

import json
from datetime import datetime
from typing import get_args

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent.config.rules import CaseType
from agent.observe.health import liveness
from agent.web.cases import CaseBrowser
from agent.web.live import LiveView
from agent.web.pages import SECURITY_HEADERS, language, login_page, page
from agent.web.zones import ZoneEditor, ZoneError
from webauth.guard import Auth, LoginGuard, login_routes

MAX_ZONE_BODY = 256 * 1024


def build_app(
    auth: Auth, live: LiveView, cases: CaseBrowser, zones: ZoneEditor, default_language: str, secure: bool
) -> Starlette:
    def lang(request: Request) -> str:
        return language(request, default_language)

    def html(name: str):
        async def show(request: Request) -> Response:
            return page(name, lang(request), request.state.session.csrf)

        return show

    async def healthz(request: Request) -> Response:
        return JSONResponse(liveness(live.view))

    async def session(request: Request) -> Response:
        return JSONResponse(
            {
                "user": request.state.session.user,
                "language": lang(request),
                "agent_id": live.view.config.agent_id,
                "case_types": list(get_args(CaseType)),
            }
        )

    def sources(request: Request) -> Response:
        return JSONResponse(live.sources(), headers={"Cache-Control": "no-store"})

    def frame(request: Request) -> Response:
        data = live.jpeg(request.path_params["source"], drawn=request.query_params.get("raw") != "1")
        if data is None:
            return _error(404, "no analysed frame from this source yet; wait for it to connect")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def grid(request: Request) -> Response:
        try:
            lat, lon = float(request.query_params["lat"]), float(request.query_params["lon"])
        except (KeyError, ValueError):
            return _error(400, "give lat and lon as numbers")
        return JSONResponse(live.grid_near(lat, lon))

    async def save_zones(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_ZONE_BODY:
            return _error(413, f"at most {MAX_ZONE_BODY} bytes of zones")
        try:
            data = json.loads(body)
            zone_list, masks = data.get("zones", []), data.get("masks_px", [])
            if not isinstance(zone_list, list) or not isinstance(masks, list):
                raise ValueError
        except (ValueError, AttributeError):
            return _error(400, 'send JSON {"zones": [{"name", "polygon_px", "types"}], "masks_px": [...]}')
        try:
            outcome = await run_in_threadpool(zones.save, request.path_params["source"], zone_list, masks)
        except ZoneError as exc:
            return _error(400, str(exc))
        status = 200 if outcome.status in ("applied", "unchanged") else 409
        return JSONResponse(outcome.__dict__, status_code=status)

    def case_list(request: Request) -> Response:
        q = request.query_params
        try:
            since = _epoch(q.get("since")) or 0.0
            until = _epoch(q.get("until"))
        except ValueError:
            return _error(400, "since and until: ISO 8601 times such as 2026-12-01T08:00")
        return JSONResponse(cases.recent(q.get("type", ""), q.get("source", ""), since, until))

    def case_detail(request: Request) -> Response:
        found = cases.detail(request.path_params["case_id"], request.path_params["revision"])
        return JSONResponse(found) if found else _error(404, "no such case revision in the outbox")

    def evidence(request: Request) -> Response:
        p = request.path_params
        found = cases.evidence(p["case_id"], p["revision"], p["name"])
        if found is None:
            return _error(404, "no such evidence file in this case")
        path, media_type = found
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    routes = [
        *login_routes(auth, secure_cookies=secure),
        Route("/", html("live.html")),
        Route("/zones", html("zones.html")),
        Route("/cases", html("cases.html")),
        Route("/healthz", healthz),
        Route("/api/session", session),
        Route("/api/sources", sources),
        Route("/api/sources/{source}/frame.jpg", frame),
        Route("/api/sources/{source}/zones", save_zones, methods=["POST"]),
        Route("/api/grid", grid),
        Route("/api/cases", case_list),
        Route("/api/cases/{case_id}/{revision:int}", case_detail),
        Route("/api/cases/{case_id}/{revision:int}/{name}", evidence),
        Mount("/static", StaticFiles(packages=[("agent.web", "static"), ("webauth", "static")]), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(LoginGuard, auth=auth)])


def login_renderer(default_language: str):
    """The login form for webauth, in the visitor's language."""

    def render(request: Request, token: str, error: str | None, status: int) -> Response:
        next_path = request.query_params.get("next", "/")
        return login_page(language(request, default_language), token, error, status, next_path)

    return render


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)

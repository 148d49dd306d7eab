"""The page's HTML: the static files with the session's CSRF token and the language filled in, and the
login form of webauth.page under the box's title."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

from starlette.responses import HTMLResponse

from webauth.page import LANGUAGES, SECURITY_HEADERS, language, login_form

__all__ = ["LANGUAGES", "SECURITY_HEADERS", "language", "login_page", "page", "static_text"]

LOGIN_TITLES = {"zh-CN": "登录 · 边缘盒子", "en": "Log in · edge box"}


@cache
def static_text(name: str) -> str:
    return resources.files("agent.web").joinpath("static", name).read_text(encoding="utf-8")


def page(name: str, lang: str, csrf: str) -> HTMLResponse:
    text = static_text(name).replace("{{lang}}", lang).replace("{{csrf}}", html.escape(csrf))
    return HTMLResponse(text, headers=SECURITY_HEADERS)


def login_page(lang: str, token: str, error: str | None, status: int, next_path: str) -> HTMLResponse:
    return login_form(LOGIN_TITLES[lang], lang, token, error, status, next_path)

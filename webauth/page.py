"""The login form and the page conventions both web pages share (the box's page and the platform's review
page): zh-CN or English by `?lang=`, the `lang` cookie or the default, and the security headers. The
form is drawn here in both languages: it must work before any script or session."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse

LANGUAGES = ("zh-CN", "en")
LOGIN_TEXT = {
    "zh-CN": {
        "user": "用户名",
        "password": "密码",
        "submit": "登录",
        "wrong": "用户名或密码错误",
        "rate": "尝试次数过多，请稍后再试",
        "csrf": "登录表单已过期，请重新登录",
        "other": "English",
    },
    "en": {
        "user": "User",
        "password": "Password",
        "submit": "Log in",
        "wrong": "Wrong user or password",
        "rate": "Too many tries; wait a few minutes",
        "csrf": "The login form has expired; log in again",
        "other": "中文",
    },
}

# no framing by other sites, no sniffing, scripts and images only from the server itself
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; media-src 'self'; style-src 'self' "
    "'unsafe-inline'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


def language(request: Request, default: str) -> str:
    """`?lang=` first, then the `lang` cookie the page's switch sets, then the configured default."""
    for choice in (request.query_params.get("lang"), request.cookies.get("lang")):
        if choice in LANGUAGES:
            return choice
    return default


def login_form(title: str, lang: str, token: str, error: str | None, status: int, next_path: str) -> HTMLResponse:
    """The login form titled `title`; `error` one of LOGIN_TEXT's wrong, rate or csrf (the guard's)."""
    text = LOGIN_TEXT[lang]
    other = "en" if lang == "zh-CN" else "zh-CN"
    message = f'<p class="error" id="error">{html.escape(text[error])}</p>' if error else ""
    title = html.escape(title)
    body = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font-family:sans-serif;background:#f4f5f7;display:flex;justify-content:center;margin-top:12vh}}
form{{background:#fff;padding:2em;border-radius:8px;box-shadow:0 1px 4px #0003;min-width:18em}}
label{{display:block;margin:.6em 0}}input{{width:100%;padding:.4em;box-sizing:border-box}}
.error{{color:#b00}}a{{float:right;font-size:.9em}}</style></head>
<body><form method="post" action="/login" id="login">
<a href="/login?lang={other}">{text["other"]}</a><h1>{title}</h1>{message}
<input type="hidden" name="csrf" value="{html.escape(token)}">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<label>{text["user"]}<input name="user" id="user" autocomplete="username" required></label>
<label>{text["password"]}<input name="password" id="password" type="password" autocomplete="current-password"
required></label><button type="submit" id="submit">{text["submit"]}</button></form></body></html>"""
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

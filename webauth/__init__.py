"""Login for small web pages: scrypt password hashes (`passwords`), signed session cookies with their
CSRF token (`sessions`), a login rate limit (`ratelimit`), the Starlette gate and routes (`guard`), the
login form with the pages' language and security headers (`page`), the server thread both pages run
(`serving`), the settings both pages take (`settings`: the address to listen on, TLS off this host)
and the script both pages load (`static/page.js`: CSRF token, JSON calls, texts, the top bar).
Imports nothing of the agent or the platform, only the standard library, pydantic (in `settings`),
Starlette (in `guard` and `page`) and uvicorn (in `serving`), so that the box's page and the platform's
review page share one login and a box without the web extra can still check a password hash in its
configuration.
"""

"""Login for small web pages: scrypt password hashes (`passwords`), signed session cookies with their
CSRF token (`sessions`), a login rate limit (`ratelimit`) and the Starlette gate and routes (`guard`).
Imports nothing of the agent or the platform, only the standard library and Starlette (and Starlette
only in `guard`), so that the box's page and the platform's review page share one login and a box
without the web extra can still check a password hash in its configuration.
"""

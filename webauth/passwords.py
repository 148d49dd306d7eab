"""Password hashes with hashlib.scrypt: `scrypt$N$r$p$SALT$HASH` (salt and hash in base64), so that the
configuration holds no password and a stolen configuration costs an attacker scrypt's work per guess."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

PREFIX = "scrypt"
N, R, P = 2**14, 8, 1  # 16 MiB and about 50 ms per check on a small box: cheap to log in, dear to guess
_KEY_BYTES = 32


def hash_password(password: str, n: int = N, r: int = R, p: int = P) -> str:
    """A new salted hash of `password` in the configuration's format."""
    if not password:
        raise ValueError("an empty password cannot be hashed; choose one")
    salt = os.urandom(16)
    digest = _scrypt(password, salt, n, r, p)
    return "$".join((PREFIX, str(n), str(r), str(p), _b64(salt), _b64(digest)))


def check_hash_format(encoded: str) -> None:
    """ValueError with the fix when `encoded` is not a hash this module made."""
    _parse(encoded)


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches; compares in constant time."""
    n, r, p, salt, digest = _parse(encoded)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    fix = "make one with `edge-agent web-password` (or `python -m webauth`)"
    if len(parts) != 6 or parts[0] != PREFIX:
        raise ValueError(f"not a scrypt password hash (expected scrypt$N$r$p$salt$hash); {fix}")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError(f"a damaged scrypt password hash; {fix}") from None
    if n < 2**10 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or len(digest) != _KEY_BYTES:
        raise ValueError(f"scrypt parameters out of range (N a power of two >= 1024, r 1-32, p 1-16); {fix}")
    return n, r, p, salt, digest


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

"""API keys: ``oncely_<prefix>_<secret>``, stored as an HMAC of the secret."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "oncely_"
_FORMAT = re.compile(r"^oncely_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")


def new_key() -> tuple[str, str, str]:
    """A fresh key: (the full key to show once, its public prefix, its secret part)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)  # 256 bits
    return f"{KEY_PREFIX}{prefix}_{secret}", prefix, secret


def parse_key(value: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = _FORMAT.match(value)
    return (match.group(1), match.group(2)) if match else None


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX)


def hash_secret(pepper: bytes, prefix: str, secret: str) -> str:
    """Keyed hash of the secret (bound to its prefix, so a row's hash fits no other row)."""
    return hmac.new(pepper, f"{prefix}:{secret}".encode(), hashlib.sha256).hexdigest()


def secret_matches(pepper: bytes, prefix: str, secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(pepper, prefix, secret), stored_hash)

"""Short-lived access tokens: JWTs signed with HS256 and the store's key, nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt

ALGORITHM = "HS256"
"""The only algorithm made or accepted: a token naming another (``none``, RS256...) is
refused before its signature is looked at, so no key confusion is possible."""
ISSUER = "oncely"
AUDIENCE = "oncely-api"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss", "aud", "ep"]
"""``ep`` is the user's session epoch at issue: a password change or a disable moves it on."""


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or not meant for us. Never says which to the
    caller (the reason is for logs)."""


class Tokens:
    def __init__(self, key: bytes, *, ttl: timedelta = timedelta(minutes=15)) -> None:
        if len(key) < 32:
            raise ValueError("the signing key must be at least 32 bytes")
        self.key = key
        self.ttl = ttl

    def issue(self, subject: str, *, now: datetime, epoch: int = 0) -> str:
        issued = int(now.timestamp())
        claims = {
            "sub": subject,
            "ep": epoch,
            "iat": issued,
            "exp": issued + int(self.ttl.total_seconds()),
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def check(self, token: str, *, now: datetime) -> tuple[str, int]:
        """The subject and session epoch of a valid token; ``InvalidToken`` otherwise. ``now``
        is the clock expiry is judged by (a token is never trusted to say the time)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                # Time claims are judged by our clock below, not by PyJWT reading the system time.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        exp, iat, sub, epoch = claims["exp"], claims["iat"], claims["sub"], claims["ep"]
        if not all(isinstance(v, int) for v in (exp, iat, epoch)) or not isinstance(sub, str):
            raise InvalidToken("malformed claims")
        stamp = now.timestamp()
        if stamp >= exp:
            raise InvalidToken("expired")
        # A token from the future (minted with a skewed clock, or forged with our key) is
        # not accepted early; a minute of leeway covers clocks of one cluster.
        if iat > stamp + 60:
            raise InvalidToken("issued in the future")
        return sub, epoch

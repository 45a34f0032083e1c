"""Dashboard sessions: a cookie holding a short-lived access token, and CSRF tokens.

- ``oncely_session`` (HttpOnly, SameSite=Lax, Secure over TLS) holds an access token from the
  ``Authenticator`` (the same JWTs the API issues). Every request checks it against the
  user's current row, so a disabled user is out at once; a token past half its life is
  replaced by a fresh one on the next page, so an active session does not expire mid-work
  while an idle one does after ``token_ttl``.
- CSRF, signed double-submit: ``oncely_csrf`` (HttpOnly, SameSite=Strict) holds a random
  nonce; every form carries ``HMAC(key, nonce:user)``. A forged cross-site post has neither
  the cookie's nonce nor the key, and a token made for one user is worth nothing to another.
  The key is a server secret kept in the store, the same on every process of a cluster.
- A request without a valid session raises ``LoginRequired``: pages redirect to the login
  form, anything else is answered 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt
from fastapi import Depends, Request, Response

from oncely.api.auth import _Rule
from oncely.auth import Authenticator
from oncely.auth.apikeys import looks_like_key
from oncely.auth.service import Caller
from oncely.domain.principal import Permission, Principal

SESSION_COOKIE = "oncely_session"
CSRF_COOKIE = "oncely_csrf"
CSRF_FIELD = "csrf"
_CSRF_KEY = "web_csrf_key"


class LoginRequired(Exception):
    """No valid session: the handler sends the browser to the login form."""


class NotAllowed(Exception):
    """A valid session whose role lacks the route's permission."""


class CsrfRefused(Exception):
    """A form without a valid CSRF token."""


@dataclass(frozen=True)
class WebSession:
    caller: Caller
    nonce: str

    @property
    def principal(self) -> Principal:
        return self.caller.principal


def web_auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.authenticator
    return auth


def csrf_key(auth: Authenticator) -> bytes:
    return auth.store.secret_get_or_create(_CSRF_KEY, secrets.token_bytes(32), now=auth.clock.now())


def csrf_token(key: bytes, nonce: str, subject: str) -> str:
    return hmac.new(key, f"{nonce}:{subject}".encode(), hashlib.sha256).hexdigest()


def csrf_nonce(request: Request) -> str:
    """The browser's CSRF nonce, or a fresh one (set on the response by ``set_cookies``)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if len(nonce) != 43:
        nonce = getattr(request.state, "new_nonce", None) or secrets.token_urlsafe(32)
        request.state.new_nonce = nonce
    return nonce


def check_csrf(request: Request, given: str | None, subject: str) -> None:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not given or len(nonce) != 43:
        raise CsrfRefused
    expected = csrf_token(csrf_key(web_auth(request)), nonce, subject)
    if not hmac.compare_digest(expected, given):
        raise CsrfRefused


def set_cookies(request: Request, response: Response) -> None:
    """Write the cookies this request decided on: a refreshed token, a new CSRF nonce."""
    secure = request.url.scheme == "https"
    token = getattr(request.state, "new_token", None)
    if token is not None:
        set_session(request, response, token)
    nonce = getattr(request.state, "new_nonce", None)
    if nonce is not None:
        response.set_cookie(
            CSRF_COOKIE, nonce, httponly=True, samesite="strict", secure=secure, path="/"
        )


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=int(web_auth(request).token_ttl.total_seconds()),
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


class SessionRule(_Rule):
    """A dashboard route's access rule: a valid session cookie whose user's role has every
    permission listed. Recorded in the route registry like the API's bearer rules."""

    def __init__(self, *permissions: Permission) -> None:
        self.permissions = permissions
        listed = ", ".join(p.value for p in permissions)
        self.rule = f"session: requires {listed}" if permissions else "session"

    def __call__(self, request: Request) -> WebSession:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or looks_like_key(token):
            raise LoginRequired
        auth = web_auth(request)
        caller = auth.authenticate(token)
        if caller is None:
            raise LoginRequired
        if _past_half_life(token, auth, caller):
            request.state.new_token = auth.issue_token(caller.user)
        for permission in self.permissions:
            if not caller.principal.can(permission):
                raise NotAllowed(permission.value)
        request.state.caller = caller
        return WebSession(caller, csrf_nonce(request))


def _past_half_life(token: str, auth: Authenticator, caller: Caller) -> bool:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        issued = int(claims["iat"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return True
    age = auth.clock.now().timestamp() - issued
    return age > auth.token_ttl.total_seconds() / 2


def session(*permissions: Permission) -> object:
    return Depends(SessionRule(*permissions))

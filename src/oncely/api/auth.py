"""Authentication and authorization for the HTTP API.

Design notes:

- Deny by default. Every route declares who may call it, with one of:

  - ``principal: Writer`` (or ``Reader``, ``AdminPrincipal``, ``Authenticated``; in general
    ``Annotated[Principal, requires(Permission.X, ...)]``, or ``dependencies=[requires(...)]``):
    a valid bearer credential whose role has every permission listed; ``requires()`` with
    none listed admits any authenticated caller;
  - ``dependencies=[PUBLIC]`` for the few routes anyone may call (health, login).

  The rule is recorded on the route (it is the dependency itself), ``route_rules`` lists the
  rule of every route, and ``create_http_app`` refuses to assemble an app with a route that
  has none (a test enumerates the routes too). FastAPI's own documentation routes are public.
- ``Authorization: Bearer <credential>`` carries an access token (``POST /v1/auth/token``) or
  an API key (``oncely_...``). A missing or invalid credential is 401 with
  ``WWW-Authenticate: Bearer``; a valid one without the permission is 403.
- Logins are rate-limited per user name (failures) and per client address (every attempt),
  in-process (see ``ratelimit``); over the limit is 429 with ``Retry-After``, before any
  password is checked.
- Nothing here logs a password, a token or a key.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from oncely.api.ratelimit import SlidingWindow
from oncely.auth.service import Authenticator, Caller, LoginRefused
from oncely.domain.errors import Conflict, InvalidInput, NotFound
from oncely.domain.principal import Permission, Principal, Role
from oncely.domain.users import MAX_PASSWORD_CHARS, ApiKey, User
from oncely.ports.store import AuditEntry

log = logging.getLogger("oncely.api.auth")

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from POST /v1/auth/token, or an API key (oncely_...).",
)


# -- the permission registry --------------------------------------------------------------


class _Rule:
    """A route's access rule; FastAPI calls it as a dependency."""

    rule: str


class _Requirement(_Rule):
    def __init__(self, permissions: Sequence[Permission]) -> None:
        self.permissions = tuple(permissions)
        self.rule = (
            "requires " + ", ".join(p.value for p in self.permissions)
            if self.permissions
            else "authenticated"
        )

    def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        caller = _authenticate(request, credentials)
        for permission in self.permissions:
            if not caller.principal.can(permission):
                raise HTTPException(403, f"this needs the {permission.value} permission")
        request.state.caller = caller
        return caller.principal


class _Public(_Rule):
    rule = "public"

    def __call__(self) -> None:
        return None


def requires(*permissions: Permission) -> Any:
    """A dependency admitting callers whose role has every one of ``permissions`` (any
    authenticated caller when none are given); it returns their ``Principal``."""
    return Depends(_Requirement(permissions))


PUBLIC: Any = Depends(_Public())
"""Put in a route's ``dependencies`` to declare that anyone may call it."""

# The common rules as parameter types: ``def route(principal: Writer) -> ...``.
Authenticated = Annotated[Principal, requires()]
Reader = Annotated[Principal, requires(Permission.READ)]
Writer = Annotated[Principal, requires(Permission.WRITE)]
AdminPrincipal = Annotated[Principal, requires(Permission.ADMIN)]


def route_rules(app: FastAPI) -> dict[str, str | None]:
    """``"METHODS path"`` -> the route's rule (None: no rule, which assembly refuses). Routes
    of included routers are listed with their full path and their router's dependencies."""
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    rules: dict[str, str | None] = {}
    for route in _effective_routes(app):
        methods = ",".join(sorted(getattr(route, "methods", None) or ["*"]))
        path = getattr(route, "path", None) or repr(route)
        rules[f"{methods} {path}"] = _rule_of(route, docs)
    return rules


def _effective_routes(app: FastAPI) -> list[Any]:
    """Every route as served. FastAPI >= 0.16x keeps an included router as one entry of
    ``app.routes`` and resolves its routes on demand; older versions copy them in."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # pragma: no cover - older FastAPI
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _rule_of(route: Any, docs: set[str | None]) -> str | None:
    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        found = [d.call.rule for d in _walk(dependant.dependencies) if isinstance(d.call, _Rule)]
        return "; ".join(found) if found else None
    original = getattr(route, "original_route", route)
    marked = getattr(original, "oncely_rule", None)
    if isinstance(marked, str):
        return marked
    if getattr(route, "path", None) in docs:
        return "public (API documentation)"
    return None


def _walk(dependencies: list[Any]) -> Iterator[Any]:
    for dep in dependencies:
        yield dep
        yield from _walk(dep.dependencies)


def mark_public(route: BaseRoute) -> BaseRoute:
    """Declare a route that is not a FastAPI route (a static files mount) public."""
    route.oncely_rule = "public"  # type: ignore[attr-defined]
    return route


def check_routes(app: FastAPI) -> None:
    """Refuse an app with a route that declares no access rule."""
    missing = sorted(name for name, rule in route_rules(app).items() if rule is None)
    if missing:
        raise RuntimeError(
            "routes without an access rule (add requires(...) or PUBLIC): " + ", ".join(missing)
        )


# -- authenticating a request -------------------------------------------------------------


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if auth is None:
        raise HTTPException(503, "authentication is not configured on this server")
    return auth


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("a bearer token or API key is required")
    caller = authenticator(request).authenticate(credentials.credentials)
    if caller is None:
        raise _unauthorized("the token or API key is not valid")
    return caller


def current_caller(request: Request) -> Caller:
    """The caller a ``requires`` dependency of this route admitted."""
    caller: Caller = request.state.caller
    return caller


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        raise HTTPException(422, {"message": str(exc), "field": exc.field}) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


# -- schemas ------------------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires.")


class UserOut(BaseModel):
    id: str
    name: str
    role: Role
    owner: str
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            name=user.name,
            role=user.role,
            owner=user.owner,
            created_at=user.created_at,
            updated_at=user.updated_at,
            disabled_at=user.disabled_at,
        )


class MeOut(BaseModel):
    subject: str
    name: str
    role: Role
    owner: str
    permissions: list[Permission]
    via: Literal["token", "api_key"]


class UserIn(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Role = Role.USER
    owner: str | None = Field(default=None, max_length=128)


class UserPatch(BaseModel):
    role: Role | None = None
    password: str | None = Field(default=None, max_length=1024)
    disabled: bool | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    next: str | None = Field(description="Pass as ?after= for the next page; null at the end.")


class ApiKeyOut(BaseModel):
    id: str
    prefix: str
    name: str
    user: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey, user_name: str) -> ApiKeyOut:
        return cls(
            id=key.id,
            prefix=key.prefix,
            name=key.name,
            user=user_name,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown this once: only a hash is stored.")


class ApiKeyIn(BaseModel):
    name: str = Field(max_length=64)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)
    user: str | None = Field(
        default=None, max_length=64, description="Admins only: create the key for this user."
    )


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    owner: str | None
    action: str
    target_kind: str
    target_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        return cls(
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            owner=entry.owner,
            action=entry.action,
            target_kind=entry.target_kind,
            target_id=entry.target_id,
            details=entry.details,
        )


class AuditPage(BaseModel):
    items: list[AuditOut]
    next: str | None = Field(description="Pass as ?before= for the next page; null at the end.")


# -- routes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLimits:
    per_user: int = 10
    per_address: int = 30
    window: float = 60.0


_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            },
        },
    }
}

_MAX_LOGIN_BODY = 8192


def auth_router(limits: LoginLimits) -> APIRouter:
    router = APIRouter(tags=["auth"])
    by_user = SlidingWindow(limits.per_user, limits.window)
    by_address = SlidingWindow(limits.per_address, limits.window)

    @router.post(
        "/v1/auth/token",
        response_model=TokenOut,
        dependencies=[PUBLIC],
        openapi_extra=_LOGIN_BODY,
        responses={401: {}, 422: {}, 429: {}},
    )
    async def login(request: Request, response: Response) -> TokenOut:
        """Exchange a user name and password (JSON or form) for a short-lived access token."""
        username, password = await _login_form(request)
        address = request.client.host if request.client else "unknown"
        wait = by_address.retry_after(address) or by_user.retry_after(username)
        if wait is not None:
            raise HTTPException(
                429, "too many login attempts; try again later", headers={"Retry-After": str(wait)}
            )
        by_address.add(address)
        auth = authenticator(request)
        try:
            # argon2 and the store block: off the event loop.
            user, token = await anyio.to_thread.run_sync(auth.login, username, password)
        except LoginRefused:
            by_user.add(username)
            log.info("refused a login from %s", address)
            raise _unauthorized("invalid user name or password") from None
        response.headers["Cache-Control"] = "no-store"
        log.info("user %s logged in from %s", user.name, address)
        return TokenOut(access_token=token, expires_in=int(auth.token_ttl.total_seconds()))

    @router.get("/v1/auth/me", response_model=MeOut)
    def me(request: Request, principal: Authenticated) -> MeOut:
        """Who the credential of this request belongs to, and what it may do."""
        caller = current_caller(request)
        return MeOut(
            subject=principal.subject,
            name=caller.user.name,
            role=principal.role,
            owner=principal.owner,
            permissions=[p for p in Permission if principal.can(p)],
            via="api_key" if caller.key else "token",
        )

    # -- users (admins) ---------------------------------------------------------------------

    @router.get("/v1/users", response_model=UserPage, tags=["users"])
    def list_users(
        request: Request,
        principal: AdminPrincipal,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        after: Annotated[str | None, Query(max_length=64)] = None,
    ) -> UserPage:
        """Every user, by name; ``after`` pages."""
        users = authenticator(request).store.user_list(limit=limit, after_name=after)
        return UserPage(
            items=[UserOut.of(u) for u in users],
            next=users[-1].name if len(users) == limit else None,
        )

    @router.post("/v1/users", response_model=UserOut, status_code=201, tags=["users"])
    def create_user(body: UserIn, request: Request, principal: AdminPrincipal) -> UserOut:
        """Create a user (its owner is its name unless given)."""
        with _domain_errors():
            user = authenticator(request).create_user(
                body.name,
                body.password,
                role=body.role,
                owner=body.owner,
                actor=principal.subject,
            )
        return UserOut.of(user)

    @router.get("/v1/users/{name}", response_model=UserOut, tags=["users"])
    def get_user(name: str, request: Request, principal: AdminPrincipal) -> UserOut:
        return UserOut.of(_user_named(request, name))

    @router.patch("/v1/users/{name}", response_model=UserOut, tags=["users"])
    def update_user(
        name: str,
        body: UserPatch,
        request: Request,
        principal: AdminPrincipal,
    ) -> UserOut:
        """Change a user's role or password, or disable (or enable) it. A disabled user's
        tokens and keys stop working at once."""
        auth = authenticator(request)
        user = _user_named(request, name)
        if user.name == current_caller(request).user.name and (
            body.disabled or (body.role is not None and body.role is not Role.ADMIN)
        ):
            raise HTTPException(409, "an admin cannot disable or demote itself")
        now = auth.clock.now()
        with _domain_errors():
            if body.password is not None:
                auth.set_password(user.id, body.password, actor=principal.subject)
            if body.role is not None and body.role is not user.role:
                auth.store.user_set_role(user.id, body.role, now=now, actor=principal.subject)
            if body.disabled is not None and body.disabled != user.disabled:
                auth.store.user_disable(
                    user.id, disabled=body.disabled, now=now, actor=principal.subject
                )
        return UserOut.of(_user_named(request, name))

    # -- API keys ---------------------------------------------------------------------------

    @router.get("/v1/api-keys", response_model=list[ApiKeyOut], tags=["api-keys"])
    def list_keys(
        request: Request,
        principal: Authenticated,
        user: Annotated[str | None, Query(max_length=64)] = None,
        all_users: Annotated[bool, Query(alias="all")] = False,
    ) -> list[ApiKeyOut]:
        """Your keys (revoked ones included). Admins: ``?user=name`` or ``?all=true``."""
        auth = authenticator(request)
        me = current_caller(request).user
        if ((user is not None and user != me.name) or all_users) and not principal.is_admin:
            raise HTTPException(403, "only admins see other users' keys")
        if all_users:
            names = {u.id: u.name for u in auth.store.user_list(limit=100_000)}
            keys = auth.store.apikey_list(None, limit=10_000)
            return [ApiKeyOut.of(k, names.get(k.user_id, "?")) for k in keys]
        owner = me if user is None or user == me.name else _user_named(request, user)
        return [ApiKeyOut.of(k, owner.name) for k in auth.store.apikey_list(owner.id)]

    @router.post("/v1/api-keys", response_model=ApiKeyCreated, status_code=201, tags=["api-keys"])
    def create_key(
        body: ApiKeyIn,
        request: Request,
        response: Response,
        principal: Authenticated,
    ) -> ApiKeyCreated:
        """Create a key for yourself (admins: for ``user``). The key acts with its user's
        role and owner. The response holds the key: it is not shown again."""
        auth = authenticator(request)
        me = current_caller(request).user
        if current_caller(request).key is not None:
            raise HTTPException(403, "an API key cannot create API keys; log in")
        target = me
        if body.user is not None and body.user != me.name:
            if not principal.is_admin:
                raise HTTPException(403, "only admins create keys for other users")
            target = _user_named(request, body.user)
        expires = (
            None
            if body.expires_in_days is None
            else auth.clock.now() + timedelta(days=body.expires_in_days)
        )
        with _domain_errors():
            key, full = auth.create_api_key(
                target, body.name, expires_at=expires, actor=principal.subject
            )
        response.headers["Cache-Control"] = "no-store"
        return ApiKeyCreated(**ApiKeyOut.of(key, target.name).model_dump(), key=full)

    @router.delete("/v1/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api-keys"])
    def revoke_key(
        key_id: str,
        request: Request,
        principal: Authenticated,
    ) -> ApiKeyOut:
        """Revoke one of your keys (admins: anyone's). Another user's key is a 404."""
        auth = authenticator(request)
        me = current_caller(request).user
        key = auth.store.apikey_revoke(
            key_id,
            user_id=None if principal.is_admin else me.id,
            now=auth.clock.now(),
            actor=principal.subject,
        )
        if key is None:
            raise HTTPException(404, f"no API key {key_id}")
        owner = me if key.user_id == me.id else auth.store.user_get(key.user_id)
        return ApiKeyOut.of(key, owner.name if owner else "?")

    # -- audit ------------------------------------------------------------------------------

    @router.get("/v1/audit", response_model=AuditPage, tags=["audit"])
    def audit(
        request: Request,
        principal: Reader,
        target_kind: Annotated[str | None, Query(max_length=32)] = None,
        target_id: Annotated[str | None, Query(max_length=128)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before: Annotated[str | None, Query(max_length=200)] = None,
    ) -> AuditPage:
        """The audit log, newest first. Admins see every entry; others the entries about
        their owner's jobs and runs. ``before`` (from ``next``) pages."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(
                    422, {"message": f"{name} needs a time zone offset", "field": name}
                )
        if target_id is not None and target_kind is None:
            raise HTTPException(
                422, {"message": "target_id needs target_kind", "field": "target_kind"}
            )
        cursor = None if before is None else _decode_cursor(before)
        auth = authenticator(request)
        entries = auth.store.audit_list(
            principal.scope,
            target_kind=target_kind,
            target_id=target_id,
            since=since,
            until=until,
            limit=limit,
            before=cursor,
        )
        last = entries[-1] if len(entries) == limit else None
        return AuditPage(
            items=[AuditOut.of(e) for e in entries],
            next=None if last is None else _encode_cursor(last.at, last.id),
        )

    return router


def _user_named(request: Request, name: str) -> User:
    user = authenticator(request).store.user_get_by_name(name)
    if user is None:
        raise HTTPException(404, f"no user {name!r}")
    return user


def _encode_cursor(at: datetime, entry_id: int) -> str:
    raw = json.dumps([at.isoformat(), entry_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(value: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        at_text, entry_id = json.loads(raw)
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(entry_id, int) or not 0 <= entry_id < 2**63:
            raise ValueError("bad cursor")  # noqa: TRY301
    except (ValueError, TypeError) as exc:
        raise HTTPException(
            422, {"message": "before is not a cursor from this API", "field": "before"}
        ) from exc
    return at, entry_id


async def _login_form(request: Request) -> tuple[str, str]:
    """``username`` and ``password`` from a JSON or form body (bounded in size)."""
    body = await request.body()
    if len(body) > _MAX_LOGIN_BODY:
        raise HTTPException(413, "the login request is too large")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, Any]
    try:
        if kind == "application/json":
            parsed = json.loads(body or b"null")
            fields = parsed if isinstance(parsed, dict) else {}
        elif kind == "application/x-www-form-urlencoded":
            fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
        else:
            raise HTTPException(415, "send the user name and password as JSON or as a form")
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(
            422, {"message": "the body is not valid JSON or form data", "field": "body"}
        ) from None
    # Bounded: no user name is longer than 64 characters, and the per-name login counters
    # must not be a way to store much memory on the server.
    for name, longest in (("username", 128), ("password", MAX_PASSWORD_CHARS)):
        value = fields.get(name)
        if not isinstance(value, str) or not value or len(value) > longest:
            raise HTTPException(
                422,
                {"message": f"{name} must be a string of 1-{longest} characters", "field": name},
            )
    return fields["username"], fields["password"]


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """HTTP errors (ours, and FastAPI's own 404/405) in the API's one error shape:
    ``{"error": {"code", "message", "field"}}``, keeping headers (``WWW-Authenticate``,
    ``Retry-After``)."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if isinstance(detail, dict):
        message, field = str(detail.get("message", "")), detail.get("field")
    else:
        message, field = str(detail), None
    body = {
        "error": {"code": _CODES.get(exc.status_code, "error"), "message": message, "field": field}
    }
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install_auth(app: FastAPI, auth: Authenticator, limits: LoginLimits | None = None) -> None:
    """Add authentication to an app: the authenticator every ``requires`` uses, the login,
    identity, user, API key and audit routes, and the error shape of HTTP errors."""
    app.state.authenticator = auth
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(auth_router(limits or LoginLimits()))


__all__ = [
    "PUBLIC",
    "AdminPrincipal",
    "Authenticated",
    "LoginLimits",
    "Reader",
    "Writer",
    "check_routes",
    "current_caller",
    "install_auth",
    "mark_public",
    "requires",
    "route_rules",
]

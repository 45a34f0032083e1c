"""``Authenticator``: logins, tokens, API keys and accounts, over the store.

Methods block (argon2 and the store): async callers run them in a thread.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from oncely.auth import apikeys
from oncely.auth.passwords import Passwords
from oncely.auth.tokens import InvalidToken, Tokens
from oncely.domain.errors import InvalidInput, NotFound
from oncely.domain.ids import new_id
from oncely.domain.jobs import validate_owner
from oncely.domain.principal import Principal, Role
from oncely.domain.users import (
    ApiKey,
    User,
    validate_key_name,
    validate_password,
    validate_user_name,
)
from oncely.ports.clock import Clock
from oncely.ports.store import Store

log = logging.getLogger("oncely.auth")

JWT_KEY = "jwt_signing_key"
APIKEY_PEPPER = "apikey_hmac_key"


class LoginRefused(Exception):
    """Wrong name or password, or a disabled user: the caller is told no more than that."""


@dataclass(frozen=True)
class Caller:
    """Who a credential belongs to: the principal to act as, and the user behind it."""

    principal: Principal
    user: User
    key: ApiKey | None = None


class Authenticator:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        token_ttl: timedelta = timedelta(minutes=15),
        passwords: Passwords | None = None,
        key_refresh: timedelta = timedelta(seconds=30),
    ) -> None:
        self.store = store
        self.clock = clock
        self.token_ttl = token_ttl
        self.key_refresh = key_refresh
        self._loaded_at = 0.0
        self._passwords = passwords
        self._tokens: Tokens | None = None
        self._pepper: bytes | None = None
        self._lock = threading.Lock()

    # -- keys, loaded once from the store ---------------------------------------------------

    def _load(self) -> tuple[Tokens, bytes, Passwords]:
        with self._lock:
            stale = time.monotonic() - self._loaded_at >= self.key_refresh.total_seconds()
            if self._tokens is None or self._pepper is None or self._passwords is None or stale:
                now = self.clock.now()
                # A fresh random candidate each; the store keeps whichever came first, so
                # every process of a cluster ends up with the same keys. Read again every
                # ``key_refresh``: a rotated signing key reaches every process that soon.
                key = self.store.secret_get_or_create(JWT_KEY, secrets.token_bytes(32), now=now)
                pepper = self.store.secret_get_or_create(
                    APIKEY_PEPPER, secrets.token_bytes(32), now=now
                )
                if self._tokens is None or self._tokens.key != key:
                    self._tokens = Tokens(key, ttl=self.token_ttl)
                self._pepper = pepper
                self._loaded_at = time.monotonic()
                if self._passwords is None:
                    self._passwords = Passwords()
            return self._tokens, self._pepper, self._passwords

    def rotate_signing_key(self, *, actor: str | None = None) -> None:
        """Replace the token signing key: every access token ends (on every API process
        within ``key_refresh``), and everyone logs in again. API keys are not affected."""
        now = self.clock.now()
        self.store.secret_replace(JWT_KEY, secrets.token_bytes(32), now=now)
        if actor is not None:
            self.store.audit_record(actor, "auth.rotate_signing_key", target_kind="server", now=now)
        with self._lock:
            self._tokens = None

    @property
    def passwords(self) -> Passwords:
        return self._load()[2]

    # -- logging in -------------------------------------------------------------------------

    def login(self, name: str, password: str) -> tuple[User, str]:
        """Check a name and password; return the user and a fresh access token.
        ``LoginRefused`` for a wrong name or password or a disabled user (indistinguishable)."""
        tokens, _, passwords = self._load()
        user = self.store.user_get_by_name(name) if isinstance(name, str) else None
        ok = passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            raise LoginRefused
        if passwords.needs_rehash(user.password_hash):
            # A rehash is not a password change: the user's other sessions go on.
            self.store.user_set_password(
                user.id, passwords.hash(password), now=self.clock.now(), end_sessions=False
            )
        return user, tokens.issue(user.id, now=self.clock.now(), epoch=user.session_epoch)

    def issue_token(self, user: User) -> str:
        return self._load()[0].issue(user.id, now=self.clock.now(), epoch=user.session_epoch)

    # -- checking a bearer credential -------------------------------------------------------

    def authenticate(self, credential: str) -> Caller | None:
        """The caller behind an access token or an API key; None if the credential is not
        valid now (malformed, forged, expired, revoked, or its user disabled or gone)."""
        tokens, pepper, _ = self._load()
        now = self.clock.now()
        if apikeys.looks_like_key(credential):
            return self._by_key(credential, pepper, now)
        try:
            user_id, epoch = tokens.check(credential, now=now)
        except InvalidToken as exc:
            log.debug("refused a token: %s", exc)
            return None
        user = self.store.user_get(user_id)
        # A password change or a disable since the token was issued ends it.
        if user is None or user.disabled or epoch != user.session_epoch:
            return None
        return Caller(user.principal(), user)

    def _by_key(self, credential: str, pepper: bytes, now: datetime) -> Caller | None:
        parsed = apikeys.parse_key(credential)
        if parsed is None:
            return None
        prefix, secret = parsed
        key = self.store.apikey_get_by_prefix(prefix)
        # The hash is compared even for an unknown prefix, so timing tells nothing.
        stored = key.secret_hash if key else apikeys.hash_secret(pepper, "", "")
        if not apikeys.secret_matches(pepper, prefix, secret, stored) or key is None:
            return None
        if not key.usable_at(now):
            return None
        user = self.store.user_get(key.user_id)
        if user is None or user.disabled:
            return None
        self.store.apikey_touch(key.id, now=now)
        return Caller(user.principal(f"{user.name}:key:{key.prefix}"), user, key)

    # -- accounts ---------------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        password: str,
        *,
        role: Role = Role.USER,
        owner: str | None = None,
        actor: str | None = None,
    ) -> User:
        """A new user (its owner is its own name unless given). ``Conflict`` if the name is
        taken; ``InvalidInput`` for a bad name, owner or password."""
        user = self._new_user(name, password, role=role, owner=owner)
        return self.store.user_create(user, now=self.clock.now(), actor=actor)

    def _new_user(self, name: str, password: str, *, role: Role, owner: str | None) -> User:
        validate_user_name(name)
        validate_owner(owner or name)
        validate_password(password)
        now = self.clock.now()
        return User(
            id=new_id(int(now.timestamp() * 1000)),
            name=name,
            password_hash=self.passwords.hash(password),
            role=role,
            owner=owner or name,
            created_at=now,
            updated_at=now,
        )

    def set_password(self, user_id: str, password: str, *, actor: str | None = None) -> None:
        validate_password(password)
        changed = self.store.user_set_password(
            user_id, self.passwords.hash(password), now=self.clock.now(), actor=actor
        )
        if not changed:
            raise NotFound(f"no user {user_id}")

    def bootstrap_admin(self, env: Mapping[str, str]) -> User | None:
        """The first admin from ``ONCELY_ADMIN_USER`` and ``ONCELY_ADMIN_PASSWORD``, created
        only if the store has no user yet (processes starting at once create one at most).
        Returns the user created, if any."""
        name = env.get("ONCELY_ADMIN_USER")
        password = env.get("ONCELY_ADMIN_PASSWORD")
        if not name and not password:
            return None
        if not name or not password:
            raise InvalidInput(
                "set both ONCELY_ADMIN_USER and ONCELY_ADMIN_PASSWORD, or neither",
                field="ONCELY_ADMIN_USER",
            )
        if self.store.user_list(limit=1):
            return None
        try:
            user = self._new_user(name, password, role=Role.ADMIN, owner=None)
        except InvalidInput as exc:
            variable = "ONCELY_ADMIN_PASSWORD" if exc.field == "password" else "ONCELY_ADMIN_USER"
            raise InvalidInput(str(exc), field=variable) from None
        if not self.store.user_create_first(user, now=self.clock.now()):
            return None
        log.info("created the first admin %r from the environment", name)
        return user

    # -- API keys ---------------------------------------------------------------------------

    def create_api_key(
        self,
        user: User,
        name: str,
        *,
        expires_at: datetime | None = None,
        actor: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for ``user``: the stored record and the full key, to show once."""
        validate_key_name(name)
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
        _, pepper, _ = self._load()
        full, prefix, secret = apikeys.new_key()
        key = ApiKey(
            id=new_id(int(now.timestamp() * 1000)),
            prefix=prefix,
            secret_hash=apikeys.hash_secret(pepper, prefix, secret),
            user_id=user.id,
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
        return self.store.apikey_create(key, now=now, actor=actor), full

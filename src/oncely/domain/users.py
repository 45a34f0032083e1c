"""Users and API keys as stored: the accounts a ``Principal`` is made from.

Pure data and validation. How passwords and key secrets are hashed lives in ``oncely.auth``;
the store keeps only the hashes, never a password or a key's secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from oncely.domain.errors import InvalidInput
from oncely.domain.principal import Principal, Role

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\- ]{0,63}$")

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
"""Long enough for passphrases; bounded so hashing cannot be turned into a CPU sink."""


@dataclass(frozen=True)
class User:
    """An account. ``owner`` is the namespace its jobs live in (its own name by default; a
    team can share one). A disabled user's passwords, tokens and keys stop working."""

    id: str
    name: str
    password_hash: str
    role: Role
    owner: str
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None = None
    session_epoch: int = 0
    """Grows when the password changes or the user is disabled: access tokens carry the
    epoch they were issued in and are refused once it has moved on."""

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def principal(self, subject: str | None = None) -> Principal:
        return Principal(subject=subject or self.name, owner=self.owner, role=self.role)


@dataclass(frozen=True)
class ApiKey:
    """A long-lived credential of one user. ``prefix`` is public (it finds the row);
    ``secret_hash`` is a keyed hash of the secret part, which is shown once and never stored."""

    id: str
    prefix: str
    secret_hash: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def validate_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise InvalidInput(
            "user name must be 1-64 letters, digits or _ . @ -, starting with a letter or digit",
            field="name",
        )
    return name


def validate_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role must be one of {allowed}", field="role") from None


def validate_password(password: str) -> str:
    if not isinstance(password, str) or not (
        MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS
    ):
        raise InvalidInput(
            f"password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters",
            field="password",
        )
    return password


def validate_key_name(name: str) -> str:
    if not isinstance(name, str) or not _KEY_NAME.match(name):
        raise InvalidInput("key name must be 1-64 letters, digits, spaces or _ . : -", field="name")
    return name

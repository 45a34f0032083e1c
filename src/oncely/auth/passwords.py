"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106's low-memory profile)."""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and check passwords. ``hasher`` may be given (other argon2 parameters); hashes
    made with different parameters still verify, and ``needs_rehash`` says to redo them.

    Each hash takes 64 MiB for a moment (the default parameters): at most ``concurrency``
    run at once, so a burst of logins queues instead of exhausting memory."""

    def __init__(self, hasher: PasswordHasher | None = None, *, concurrency: int = 4) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = threading.BoundedSemaphore(concurrency)
        # Verified against when the user does not exist: same work, same time, no answer.
        self._dummy = self.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with ``password_hash=None`` (no such user) the same
        work is done and the answer is False."""
        try:
            with self._slots:
                matched = self._hasher.verify(password_hash or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

"""The pieces of authentication on their own: tokens, API key format and hashing, password
hashing, the login rate limiter, and the first admin from the environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from oncely.adapters.sqlite import SqliteStore
from oncely.api.ratelimit import SlidingWindow
from oncely.auth import Authenticator
from oncely.auth.apikeys import hash_secret, new_key, parse_key, secret_matches
from oncely.auth.passwords import Passwords
from oncely.auth.tokens import InvalidToken, Tokens
from oncely.domain.errors import InvalidInput
from oncely.domain.principal import Role
from oncely.runtime.clock import SystemClock

NOW = datetime(2030, 1, 1, tzinfo=UTC)
KEY = b"k" * 32


def test_tokens_expire_by_the_given_clock() -> None:
    tokens = Tokens(KEY, ttl=timedelta(minutes=15))
    token = tokens.issue("user-1", now=NOW, epoch=3)
    assert tokens.check(token, now=NOW + timedelta(minutes=14, seconds=59)) == ("user-1", 3)
    with pytest.raises(InvalidToken):
        tokens.check(token, now=NOW + timedelta(minutes=15))
    # Minted "in the future" (a skewed clock): not accepted early.
    with pytest.raises(InvalidToken):
        tokens.check(token, now=NOW - timedelta(minutes=5))
    with pytest.raises(InvalidToken):
        Tokens(b"x" * 32).check(token, now=NOW)


def test_a_short_signing_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Tokens(b"short")


def test_api_keys_have_one_shape_and_a_hash_bound_to_their_prefix() -> None:
    full, prefix, secret = new_key()
    assert full == f"oncely_{prefix}_{secret}"
    assert parse_key(full) == (prefix, secret)
    assert new_key()[0] != full
    for bad in ("", "oncely_", f"oncely_{prefix}", f"oncely_{prefix}_{secret}x", "x" + full):
        assert parse_key(bad) is None
    stored = hash_secret(KEY, prefix, secret)
    assert secret not in stored
    assert secret_matches(KEY, prefix, secret, stored)
    assert not secret_matches(KEY, "000000000000", secret, stored)
    assert not secret_matches(b"o" * 32, prefix, secret, stored)


def test_passwords_verify_and_ask_for_a_rehash_of_old_parameters() -> None:
    passwords = Passwords()
    hashed = passwords.hash("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "a long enough password")
    assert not passwords.verify(hashed, "a long enough passworD")
    assert not passwords.verify(None, "a long enough password")
    assert not passwords.verify("not a hash", "x")
    assert not passwords.needs_rehash(hashed)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert passwords.verify(weak, "pw")
    assert passwords.needs_rehash(weak)


def test_sliding_window_counts_within_the_window_only() -> None:
    now = [0.0]
    window = SlidingWindow(2, 60, clock=lambda: now[0])
    assert window.retry_after("a") is None
    window.add("a")
    now[0] = 10
    window.add("a")
    assert window.retry_after("a") == 50
    assert window.retry_after("b") is None
    now[0] = 60.5
    assert window.retry_after("a") is None  # the first hit left the window
    window.add("a")
    assert window.retry_after("a") == 10


def test_sliding_window_memory_is_bounded() -> None:
    window = SlidingWindow(1, 60, max_keys=3, clock=lambda: 0.0)
    for key in "abcde":
        window.add(key)
    assert window.retry_after("a") is None  # forgotten: the stalest keys go first
    assert window.retry_after("e") == 60


@pytest.fixture
def auth(tmp_path: Path) -> Authenticator:
    store = SqliteStore(str(tmp_path / "o.db"))
    store.migrate()
    return Authenticator(store, SystemClock())


def test_first_admin_comes_from_the_environment_once(auth: Authenticator) -> None:
    assert auth.bootstrap_admin({}) is None
    env = {"ONCELY_ADMIN_USER": "root", "ONCELY_ADMIN_PASSWORD": "a long admin password"}
    created = auth.bootstrap_admin(env)
    assert created is not None and created.role is Role.ADMIN and created.owner == "root"
    user, token = auth.login("root", "a long admin password")
    assert user.name == "root" and token
    # Only while no user exists: a second start (or other values) changes nothing.
    assert auth.bootstrap_admin({**env, "ONCELY_ADMIN_USER": "other"}) is None
    assert [u.name for u in auth.store.user_list()] == ["root"]


@pytest.mark.parametrize(
    "env",
    [
        {"ONCELY_ADMIN_USER": "root"},
        {"ONCELY_ADMIN_PASSWORD": "a long admin password"},
        {"ONCELY_ADMIN_USER": "root", "ONCELY_ADMIN_PASSWORD": "short"},
        {"ONCELY_ADMIN_USER": "root", "ONCELY_ADMIN_PASSWORD": "x" * 2000},
        {"ONCELY_ADMIN_USER": "bad name", "ONCELY_ADMIN_PASSWORD": "a long admin password"},
    ],
)
def test_an_incomplete_or_weak_first_admin_is_refused(
    auth: Authenticator, env: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        auth.bootstrap_admin(env)
    assert refused.value.field in ("ONCELY_ADMIN_USER", "ONCELY_ADMIN_PASSWORD")
    assert auth.store.user_list() == []


def test_every_store_gets_its_own_random_keys(tmp_path: Path) -> None:
    keys = []
    for name in ("a.db", "b.db"):
        store = SqliteStore(str(tmp_path / name))
        store.migrate()
        auth = Authenticator(store, SystemClock())
        auth.create_user("u", "a long enough password")
        keys.append(auth.login("u", "a long enough password")[1])
        # The same store gives the same key to another process (another Authenticator).
        again = Authenticator(store, SystemClock())
        assert again.authenticate(keys[-1]) is not None
        store.close()
    other_store = SqliteStore(str(tmp_path / "a.db"))
    # A token of store b does not open store a (their keys differ).
    assert Authenticator(other_store, SystemClock()).authenticate(keys[1]) is None
    other_store.close()


def test_rotating_the_signing_key_ends_every_token_on_every_process(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "o.db"))
    store.migrate()
    one = Authenticator(store, SystemClock())
    # Another API process on the same store, which reads the keys again at each call.
    two = Authenticator(store, SystemClock(), key_refresh=timedelta(0))
    one.create_user("u", "a long enough password")
    _, token = one.login("u", "a long enough password")
    assert two.authenticate(token) is not None
    _, key = one.create_api_key(one.store.user_list()[0], "k")

    one.rotate_signing_key(actor="root")
    assert one.authenticate(token) is None
    assert two.authenticate(token) is None
    _, fresh = two.login("u", "a long enough password")
    assert one.authenticate(fresh) is not None
    # API keys are not signed with it.
    assert two.authenticate(key) is not None
    [entry] = store.audit_list(None)
    assert (entry.action, entry.actor) == ("auth.rotate_signing_key", "root")
    store.close()

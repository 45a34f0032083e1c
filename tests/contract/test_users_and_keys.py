"""Contract: users, API keys and server secrets."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from oncely.domain.errors import Conflict, NotFound
from oncely.domain.ids import new_id
from oncely.domain.principal import Role
from oncely.domain.users import ApiKey, User
from oncely.ports.store import Store
from tests.contract.conftest import T0, later


def make_user(name: str = "alice", role: Role = Role.USER, owner: str | None = None) -> User:
    return User(
        id=new_id(int(T0.timestamp() * 1000)),
        name=name,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        role=role,
        owner=owner or name,
        created_at=T0,
        updated_at=T0,
    )


def make_key(user: User, prefix: str = "abcd1234", **kw: object) -> ApiKey:
    return ApiKey(
        id=new_id(int(T0.timestamp() * 1000)),
        prefix=prefix,
        secret_hash="hmac-of-secret",
        user_id=user.id,
        name="ci",
        created_at=T0,
        **kw,  # type: ignore[arg-type]
    )


def test_user_round_trips_and_names_are_unique(store: Store) -> None:
    user = store.user_create(make_user("alice", Role.ADMIN, owner="team-a"), now=T0)
    assert store.user_get(user.id) == user
    assert store.user_get_by_name("alice") == user
    assert store.user_get_by_name("Alice") is None
    assert store.user_get(new_id(0)) is None
    assert store.user_get("not-an-id") is None
    with pytest.raises(Conflict):
        store.user_create(make_user("alice"), now=T0)
    assert [u.name for u in store.user_list()] == ["alice"]


def test_user_list_pages_by_name(store: Store) -> None:
    for name in ("carol", "alice", "bob", "dave"):
        store.user_create(make_user(name), now=T0)
    first = store.user_list(limit=2)
    assert [u.name for u in first] == ["alice", "bob"]
    rest = store.user_list(limit=10, after_name=first[-1].name)
    assert [u.name for u in rest] == ["carol", "dave"]


def test_password_role_and_disable(store: Store) -> None:
    user = store.user_create(make_user("bob"), now=T0)
    assert store.user_set_password(user.id, "new-hash", now=later(1), actor="admin")
    changed = store.user_get(user.id)
    assert changed is not None
    assert changed.password_hash == "new-hash"
    assert changed.updated_at == later(1)
    assert not store.user_set_password(new_id(0), "x", now=later(1))

    viewer = store.user_set_role(user.id, Role.VIEWER, now=later(2), actor="admin")
    assert viewer is not None
    assert viewer.role is Role.VIEWER
    assert store.user_set_role(new_id(0), Role.ADMIN, now=later(2)) is None

    disabled = store.user_disable(user.id, now=later(3), actor="admin")
    assert disabled is not None
    assert disabled.disabled_at == later(3)
    # Disabling twice keeps the first time; enabling clears it.
    again = store.user_disable(user.id, now=later(4))
    assert again is not None
    assert again.disabled_at == later(3)
    enabled = store.user_disable(user.id, disabled=False, now=later(5))
    assert enabled is not None
    assert enabled.disabled_at is None
    assert store.user_disable(new_id(0), now=later(5)) is None


def test_first_user_only_when_there_is_none(store: Store) -> None:
    assert store.user_create_first(make_user("root", Role.ADMIN), now=T0)
    assert not store.user_create_first(make_user("other", Role.ADMIN), now=T0)
    assert [u.name for u in store.user_list()] == ["root"]


def test_concurrent_first_starts_create_one_first_user(store: Store) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def start(n: int) -> None:
        barrier.wait()
        results.append(store.user_create_first(make_user(f"admin{n}", Role.ADMIN), now=T0))

    threads = [threading.Thread(target=start, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert len(store.user_list()) == 1


def test_api_key_lookup_list_revoke(store: Store) -> None:
    alice = store.user_create(make_user("alice"), now=T0)
    bob = store.user_create(make_user("bob"), now=T0)
    key = store.apikey_create(make_key(alice, "aaaa1111", expires_at=later(3600)), now=T0)
    other = store.apikey_create(make_key(bob, "bbbb2222"), now=T0)
    assert store.apikey_get_by_prefix("aaaa1111") == key
    assert store.apikey_get_by_prefix("zzzz9999") is None
    with pytest.raises(Conflict):
        store.apikey_create(make_key(alice, "aaaa1111"), now=T0)

    assert store.apikey_list(alice.id) == [key]
    assert {k.id for k in store.apikey_list(None)} == {key.id, other.id}
    assert store.apikey_list("not-an-id") == []

    # Bob cannot revoke Alice's key; Alice can; a second revoke keeps the first time.
    assert store.apikey_revoke(key.id, user_id=bob.id, now=later(1)) is None
    revoked = store.apikey_revoke(key.id, user_id=alice.id, now=later(1), actor="alice")
    assert revoked is not None
    assert revoked.revoked_at == later(1)
    assert not revoked.usable_at(later(2))
    again = store.apikey_revoke(key.id, now=later(5))
    assert again is not None
    assert again.revoked_at == later(1)
    assert store.apikey_revoke(new_id(0), now=later(1)) is None
    assert other.usable_at(later(10**6))


def test_api_key_last_use_is_written_at_most_once_a_minute(store: Store) -> None:
    alice = store.user_create(make_user("alice"), now=T0)
    key = store.apikey_create(make_key(alice), now=T0)
    store.apikey_touch(key.id, now=later(10))
    assert _last_used(store, key.prefix) == later(10)
    store.apikey_touch(key.id, now=later(30))
    assert _last_used(store, key.prefix) == later(10)
    store.apikey_touch(key.id, now=later(70))
    assert _last_used(store, key.prefix) == later(70)
    store.apikey_touch("not-an-id", now=later(80))


def _last_used(store: Store, prefix: str) -> object:
    key = store.apikey_get_by_prefix(prefix)
    assert key is not None
    return key.last_used_at


def test_secret_is_created_once_and_then_kept(store: Store) -> None:
    first = store.secret_get_or_create("jwt", b"\x01" * 32, now=T0)
    assert first == b"\x01" * 32
    assert store.secret_get_or_create("jwt", b"\x02" * 32, now=later(1)) == first
    assert store.secret_get_or_create("other", b"\x03" * 32, now=T0) == b"\x03" * 32


def test_concurrent_first_starts_agree_on_one_secret(store: Store) -> None:
    got: list[bytes] = []
    barrier = threading.Barrier(4)

    def start(n: int) -> None:
        barrier.wait()
        got.append(store.secret_get_or_create("jwt", bytes([n]) * 32, now=T0))

    threads = [threading.Thread(target=start, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4
    assert len(set(got)) == 1


def test_expired_key_is_not_usable(store: Store) -> None:
    alice = store.user_create(make_user("alice"), now=T0)
    key = store.apikey_create(make_key(alice, expires_at=T0 + timedelta(hours=1)), now=T0)
    assert key.usable_at(T0 + timedelta(minutes=59))
    assert not key.usable_at(T0 + timedelta(hours=1))


def test_a_key_for_an_unknown_user_is_refused(store: Store) -> None:
    ghost = make_user("ghost")
    with pytest.raises(NotFound):
        store.apikey_create(make_key(ghost), now=T0)
    assert store.apikey_list(None) == []


def test_session_epoch_moves_on_a_password_change_and_a_disable(store: Store) -> None:
    user = store.user_create(make_user("eve"), now=T0)
    assert user.session_epoch == 0

    def epoch() -> int:
        found = store.user_get(user.id)
        assert found is not None
        return found.session_epoch

    store.user_set_password(user.id, "rehashed", now=later(1), end_sessions=False)
    assert epoch() == 0
    store.user_set_password(user.id, "changed", now=later(2))
    assert epoch() == 1
    store.user_disable(user.id, now=later(3))
    assert epoch() == 2
    store.user_disable(user.id, disabled=False, now=later(4))
    assert epoch() == 2
    store.user_set_role(user.id, Role.VIEWER, now=later(5))
    assert epoch() == 2


def test_a_secret_can_be_replaced(store: Store) -> None:
    store.secret_replace("new", b"\x05" * 32, now=T0)
    assert store.secret_get_or_create("new", b"\x06" * 32, now=T0) == b"\x05" * 32
    store.secret_get_or_create("jwt", b"\x01" * 32, now=T0)
    store.secret_replace("jwt", b"\x02" * 32, now=later(1))
    assert store.secret_get_or_create("jwt", b"\x03" * 32, now=later(2)) == b"\x02" * 32

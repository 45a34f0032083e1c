"""Authentication over real HTTP: logins, tokens and their forgeries, API keys, disabled users,
roles, and the users and audit routes. A real uvicorn server on loopback, a real SQLite
store, real argon2 hashing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher

from oncely.adapters.sqlite import SqliteStore
from oncely.api.auth import LoginLimits, Writer
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.auth.apikeys import hash_secret, new_key
from oncely.auth.passwords import Passwords
from oncely.auth.service import APIKEY_PEPPER, JWT_KEY
from oncely.domain.ids import new_id
from oncely.domain.principal import Role
from oncely.domain.users import ApiKey
from oncely.runtime.clock import SystemClock
from tests.integration.live_server import serve

PASSWORD = "correct horse battery staple"
# Real argon2id, with lighter parameters than the default so the many logins here stay quick
# on a small machine (the default parameters are exercised by the unit and CLI tests).
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


@dataclass
class Api:
    url: str
    store: SqliteStore
    auth: Authenticator
    http: httpx.Client

    def token(self, name: str, password: str = PASSWORD) -> str:
        r = self.http.post("/v1/auth/token", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def as_(self, credential: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential}"}

    def me(self, credential: str) -> httpx.Response:
        return self.http.get("/v1/auth/me", headers=self.as_(credential))

    def jwt_key(self) -> bytes:
        return self.store.secret_get_or_create(JWT_KEY, b"unused" * 8, now=datetime.now(UTC))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = SqliteStore(str(tmp_path / "oncely.db"))
    store.migrate()
    auth = Authenticator(store, SystemClock(), passwords=FAST)
    auth.create_user("root", PASSWORD, role=Role.ADMIN)
    auth.create_user("alice", PASSWORD, role=Role.USER)
    auth.create_user("val", PASSWORD, role=Role.VIEWER, owner="alice")
    app = create_http_app(
        lambda: (True, {}), auth=auth, login_limits=LoginLimits(per_user=3, per_address=8)
    )

    # A route of the kind the REST API adds: writing needs the write permission.
    @app.post("/v1/test-write")
    def write(principal: Writer) -> dict[str, str]:
        return {"owner": principal.owner, "subject": principal.subject}

    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Api(url, store, auth, http)
    store.close()


# -- logging in -----------------------------------------------------------------------------


def test_login_with_json_or_form_gives_a_short_lived_bearer_token(api: Api) -> None:
    r = api.http.post("/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert r.headers["cache-control"] == "no-store"
    claims = jwt.decode(
        body["access_token"], api.jwt_key(), algorithms=["HS256"], audience="oncely-api"
    )
    assert claims["exp"] - claims["iat"] == 900 and claims["iss"] == "oncely"

    form = api.http.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD})
    assert form.status_code == 200
    me = api.me(form.json()["access_token"])
    assert me.status_code == 200
    assert me.json() == {
        "subject": "alice",
        "name": "alice",
        "role": "user",
        "owner": "alice",
        "permissions": ["read", "write"],
        "via": "token",
    }


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(api: Api) -> None:
    wrong = api.http.post("/v1/auth/token", json={"username": "alice", "password": "nope" * 4})
    unknown = api.http.post("/v1/auth/token", json={"username": "nobody", "password": "x" * 12})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"


def test_login_input_is_checked_and_names_the_field(api: Api) -> None:
    r = api.http.post("/v1/auth/token", json={"username": "alice"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    r = api.http.post(
        "/v1/auth/token", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = api.http.post("/v1/auth/token", content=b"alice", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = api.http.post("/v1/auth/token", json={"username": "a" * 5000, "password": "b" * 5000})
    assert r.status_code == 413
    r = api.http.post("/v1/auth/token", json={"username": "a" * 129, "password": PASSWORD})
    assert r.status_code == 422 and r.json()["error"]["field"] == "username"


def test_failed_logins_are_limited_per_user_name(api: Api) -> None:
    for _ in range(3):
        r = api.http.post("/v1/auth/token", json={"username": "alice", "password": "w" * 12})
        assert r.status_code == 401
    limited = api.http.post("/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another name is not held back by alice's failures.
    assert (
        api.http.post("/v1/auth/token", json={"username": "root", "password": PASSWORD}).status_code
        == 200
    )


def test_logins_are_limited_per_client_address(api: Api) -> None:
    codes = [
        api.http.post(
            "/v1/auth/token", json={"username": f"guess{i}", "password": "w" * 12}
        ).status_code
        for i in range(9)
    ]
    assert codes == [401] * 8 + [429]


def test_a_login_with_a_stale_hash_is_rehashed(api: Api) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    user = api.store.user_get_by_name("alice")
    assert user is not None
    api.store.user_set_password(user.id, weak, now=datetime.now(UTC))
    api.token("alice")
    rehashed = api.store.user_get_by_name("alice")
    assert rehashed is not None
    assert rehashed.password_hash != weak
    assert not api.auth.passwords.needs_rehash(rehashed.password_hash)
    api.token("alice")


# -- forged and unfit tokens ----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = (
        b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64(signature)}"


def _claims(api: Api, **overrides: Any) -> dict[str, Any]:
    user = api.store.user_get_by_name("root")
    assert user is not None
    now = int(time.time())
    claims = {
        "sub": user.id,
        "iat": now,
        "exp": now + 600,
        "iss": "oncely",
        "aud": "oncely-api",
        "ep": user.session_epoch,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


PUBLIC_KEY_PEM = (
    b"-----BEGIN PUBLIC KEY-----\n"
    b"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    b"-----END PUBLIC KEY-----\n"
)


def test_a_token_made_with_the_stored_key_is_accepted(api: Api) -> None:
    token = jwt.encode(_claims(api), api.jwt_key(), algorithm="HS256")
    assert api.me(token).status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "alg none",
        "alg none, upper case",
        "wrong key",
        "RS256 header",
        "HS256 signed with a public key",
        "expired",
        "wrong audience",
        "wrong issuer",
        "no exp",
        "no iat",
        "no sub",
        "no session epoch",
        "an older session epoch",
        "issued in the future",
        "unknown user",
        "garbage",
        "signature stripped",
    ],
)
def test_forged_or_unfit_tokens_are_refused(api: Api, case: str) -> None:
    key = api.jwt_key()
    now = int(time.time())
    hs = {"alg": "HS256", "typ": "JWT"}
    tokens = {
        "alg none": lambda: _hand_made({"alg": "none", "typ": "JWT"}, _claims(api), None),
        "alg none, upper case": lambda: _hand_made({"alg": "NONE"}, _claims(api), None),
        "wrong key": lambda: jwt.encode(_claims(api), b"k" * 32, algorithm="HS256"),
        "RS256 header": lambda: _hand_made({"alg": "RS256", "typ": "JWT"}, _claims(api), key),
        "HS256 signed with a public key": lambda: _hand_made(hs, _claims(api), PUBLIC_KEY_PEM),
        "expired": lambda: jwt.encode(
            _claims(api, iat=now - 1000, exp=now - 1), key, algorithm="HS256"
        ),
        "wrong audience": lambda: jwt.encode(_claims(api, aud="other"), key, algorithm="HS256"),
        "wrong issuer": lambda: jwt.encode(_claims(api, iss="evil"), key, algorithm="HS256"),
        "no exp": lambda: _hand_made(hs, _claims(api, exp=None), key),
        "no iat": lambda: _hand_made(hs, _claims(api, iat=None), key),
        "no sub": lambda: _hand_made(hs, _claims(api, sub=None), key),
        "no session epoch": lambda: _hand_made(hs, _claims(api, ep=None), key),
        "an older session epoch": lambda: jwt.encode(_claims(api, ep=-1), key, algorithm="HS256"),
        "issued in the future": lambda: _hand_made(
            hs, _claims(api, iat=now + 3600, exp=now + 4000), key
        ),
        "unknown user": lambda: jwt.encode(_claims(api, sub=new_id(0)), key, algorithm="HS256"),
        "garbage": lambda: "not.a.token",
        "signature stripped": lambda: (
            jwt.encode(_claims(api), key, algorithm="HS256").rsplit(".", 1)[0] + "."
        ),
    }
    r = api.me(tokens[case]())
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"


def test_no_credential_or_another_scheme_is_401(api: Api) -> None:
    assert api.http.get("/v1/auth/me").status_code == 401
    r = api.http.get("/v1/auth/me", headers={"Authorization": "Basic cm9vdDpyb290"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


# -- API keys -------------------------------------------------------------------------------


def test_api_key_create_use_list_revoke(api: Api) -> None:
    token = api.token("alice")
    r = api.http.post(
        "/v1/api-keys", json={"name": "ci", "expires_in_days": 30}, headers=api.as_(token)
    )
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert key.startswith(f"oncely_{created['prefix']}_")
    assert created["user"] == "alice" and created["revoked_at"] is None
    assert r.headers["cache-control"] == "no-store"

    me = api.me(key)
    assert me.status_code == 200
    assert me.json()["via"] == "api_key"
    assert me.json()["subject"] == f"alice:key:{created['prefix']}"
    stored = api.store.apikey_get_by_prefix(created["prefix"])
    assert stored is not None and stored.last_used_at is not None
    # Only a keyed hash is stored.
    assert key.rsplit("_", 1)[-1] not in stored.secret_hash

    listed = api.http.get("/v1/api-keys", headers=api.as_(token)).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]

    # A key cannot mint more keys.
    r = api.http.post("/v1/api-keys", json={"name": "more"}, headers=api.as_(key))
    assert r.status_code == 403

    revoked = api.http.delete(f"/v1/api-keys/{created['id']}", headers=api.as_(token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert api.me(key).status_code == 401


def test_a_key_with_a_wrong_secret_or_of_another_shape_is_refused(api: Api) -> None:
    token = api.token("alice")
    created = api.http.post("/v1/api-keys", json={"name": "k"}, headers=api.as_(token)).json()
    key: str = created["key"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert api.me(tampered).status_code == 401
    assert api.me(key + "x").status_code == 401
    assert api.me("oncely_").status_code == 401
    other, _, _ = new_key()
    assert api.me(other).status_code == 401
    assert api.me(key).status_code == 200


def test_an_expired_key_is_refused(api: Api) -> None:
    user = api.store.user_get_by_name("alice")
    assert user is not None
    full, prefix, secret = new_key()
    pepper = api.store.secret_get_or_create(APIKEY_PEPPER, b"unused" * 8, now=datetime.now(UTC))
    now = datetime.now(UTC)
    api.store.apikey_create(
        ApiKey(
            id=new_id(0),
            prefix=prefix,
            secret_hash=hash_secret(pepper, prefix, secret),
            user_id=user.id,
            name="old",
            created_at=now - timedelta(days=2),
            expires_at=now - timedelta(seconds=1),
        ),
        now=now,
    )
    assert api.me(full).status_code == 401


def test_users_manage_only_their_own_keys(api: Api) -> None:
    alice = api.token("alice")
    root = api.token("root")
    mine = api.http.post("/v1/api-keys", json={"name": "a"}, headers=api.as_(alice)).json()
    # Another user (a viewer of the same owner) neither sees nor revokes alice's key.
    val = api.token("val")
    assert api.http.get("/v1/api-keys", headers=api.as_(val)).json() == []
    assert api.http.get("/v1/api-keys?user=alice", headers=api.as_(val)).status_code == 403
    assert api.http.delete(f"/v1/api-keys/{mine['id']}", headers=api.as_(val)).status_code == 404
    r = api.http.post("/v1/api-keys", json={"name": "x", "user": "alice"}, headers=api.as_(val))
    assert r.status_code == 403
    # Admins see and revoke anyone's, and create keys for others.
    seen = api.http.get("/v1/api-keys?user=alice", headers=api.as_(root)).json()
    assert [k["id"] for k in seen] == [mine["id"]]
    assert len(api.http.get("/v1/api-keys?all=true", headers=api.as_(root)).json()) == 1
    made = api.http.post("/v1/api-keys", json={"name": "ops", "user": "val"}, headers=api.as_(root))
    assert made.status_code == 201 and made.json()["user"] == "val"
    assert api.me(made.json()["key"]).json()["role"] == "viewer"
    r = api.http.delete(f"/v1/api-keys/{mine['id']}", headers=api.as_(root))
    assert r.status_code == 200 and r.json()["user"] == "alice"


# -- disabled users and roles ---------------------------------------------------------------


def test_a_disabled_users_tokens_and_keys_stop_working(api: Api) -> None:
    alice = api.token("alice")
    key = api.http.post("/v1/api-keys", json={"name": "k"}, headers=api.as_(alice)).json()["key"]
    root = api.token("root")
    r = api.http.patch("/v1/users/alice", json={"disabled": True}, headers=api.as_(root))
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    assert api.me(alice).status_code == 401
    assert api.me(key).status_code == 401
    login = api.http.post("/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 401
    unknown = api.http.post("/v1/auth/token", json={"username": "zed", "password": PASSWORD})
    assert login.json() == unknown.json()

    api.http.patch("/v1/users/alice", json={"disabled": False}, headers=api.as_(root))
    # Enabled again: its keys work again, its old tokens do not (log in again).
    assert api.me(key).status_code == 200
    assert api.me(alice).status_code == 401
    assert api.me(api.token("alice")).status_code == 200


def test_a_password_change_ends_the_users_tokens_but_not_its_keys(api: Api) -> None:
    old = api.token("alice")
    other = api.token("root")
    key = api.http.post("/v1/api-keys", json={"name": "k"}, headers=api.as_(old)).json()["key"]
    new_password = "a brand new passphrase"
    root = api.token("root")
    r = api.http.patch("/v1/users/alice", json={"password": new_password}, headers=api.as_(root))
    assert r.status_code == 200
    assert api.me(old).status_code == 401
    assert api.me(key).status_code == 200
    assert api.me(other).status_code == 200  # another user's sessions go on
    assert api.me(api.token("alice", new_password)).status_code == 200


def test_a_viewer_cannot_write_and_a_user_cannot_administer(api: Api) -> None:
    val = api.token("val")
    r = api.http.post("/v1/test-write", headers=api.as_(val))
    assert r.status_code == 403 and "write" in r.json()["error"]["message"]
    alice = api.token("alice")
    r = api.http.post("/v1/test-write", headers=api.as_(alice))
    assert r.status_code == 200 and r.json() == {"owner": "alice", "subject": "alice"}
    body = {"name": "eve", "password": PASSWORD}
    assert api.http.post("/v1/users", json=body, headers=api.as_(alice)).status_code == 403
    assert api.http.get("/v1/users", headers=api.as_(val)).status_code == 403


def test_a_role_change_applies_to_the_next_request(api: Api) -> None:
    alice = api.token("alice")
    root = api.token("root")
    api.http.patch("/v1/users/alice", json={"role": "viewer"}, headers=api.as_(root))
    assert api.http.post("/v1/test-write", headers=api.as_(alice)).status_code == 403


# -- users (admins) -------------------------------------------------------------------------


def test_admins_create_list_and_change_users(api: Api) -> None:
    root = api.token("root")
    body = {"name": "bob", "password": PASSWORD, "role": "viewer", "owner": "team-b"}
    r = api.http.post("/v1/users", json=body, headers=api.as_(root))
    assert r.status_code == 201
    created = r.json()
    assert (created["name"], created["role"], created["owner"]) == ("bob", "viewer", "team-b")
    assert "password" not in json.dumps(created)
    assert api.http.post("/v1/users", json=body, headers=api.as_(root)).status_code == 409

    page = api.http.get("/v1/users?limit=2", headers=api.as_(root)).json()
    assert [u["name"] for u in page["items"]] == ["alice", "bob"]
    rest = api.http.get(f"/v1/users?after={page['next']}", headers=api.as_(root)).json()
    assert [u["name"] for u in rest["items"]] == ["root", "val"]

    new_password = "another long passphrase"
    r = api.http.patch(
        "/v1/users/bob", json={"password": new_password, "role": "user"}, headers=api.as_(root)
    )
    assert r.status_code == 200 and r.json()["role"] == "user"
    assert api.me(api.token("bob", new_password)).json()["role"] == "user"
    assert api.http.get("/v1/users/nobody", headers=api.as_(root)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name!", "password": PASSWORD}, "name"),
        ({"name": "short", "password": "short"}, "password"),
        ({"name": "o", "password": PASSWORD, "owner": "no spaces"}, "owner"),
    ],
)
def test_bad_user_input_names_the_field_and_changes_nothing(
    api: Api, body: dict[str, str], field: str
) -> None:
    root = api.token("root")
    r = api.http.post("/v1/users", json=body, headers=api.as_(root))
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field
    assert len(api.store.user_list()) == 3


def test_an_admin_cannot_lock_itself_out(api: Api) -> None:
    root = api.token("root")
    for change in ({"disabled": True}, {"role": "user"}):
        assert (
            api.http.patch("/v1/users/root", json=change, headers=api.as_(root)).status_code == 409
        )
    assert api.me(root).json()["role"] == "admin"


# -- audit ----------------------------------------------------------------------------------


def test_audit_shows_admins_everything_and_others_their_owners_entries(api: Api) -> None:
    from tests.contract.conftest import make_job

    now = datetime.now(UTC)
    a = api.store.job_create(make_job(owner="alice", name="a", now=now), now=now, actor="alice")
    api.store.job_create(make_job(owner="bob", name="b", now=now), now=now, actor="bob")
    root = api.token("root")
    everything = api.http.get("/v1/audit", headers=api.as_(root)).json()["items"]
    # The three users of the fixture were made without an actor; the admin sees both jobs.
    assert {(e["action"], e["owner"]) for e in everything} == {
        ("job.create", "alice"),
        ("job.create", "bob"),
    }
    val = api.token("val")  # a viewer of owner alice
    seen = api.http.get("/v1/audit", headers=api.as_(val)).json()["items"]
    assert [(e["action"], e["target_id"]) for e in seen] == [("job.create", a.id)]

    # Server-wide entries (users, keys) are for admins only.
    api.http.post("/v1/api-keys", json={"name": "k"}, headers=api.as_(api.token("alice")))
    kinds = {
        e["target_kind"] for e in api.http.get("/v1/audit", headers=api.as_(root)).json()["items"]
    }
    assert "apikey" in kinds
    seen = api.http.get("/v1/audit", headers=api.as_(val)).json()["items"]
    assert {e["target_kind"] for e in seen} == {"job"}


def _cursor(at: str, entry_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, entry_id]).encode()).decode()


def test_audit_pages_with_a_cursor_and_checks_its_input(api: Api) -> None:
    now = datetime.now(UTC)
    for i in range(5):
        api.store.audit_record(
            "root", "note", target_kind="job", owner="x", now=now + timedelta(seconds=i)
        )
    root = api.token("root")
    first = api.http.get("/v1/audit?limit=2", headers=api.as_(root)).json()
    assert len(first["items"]) == 2 and first["next"]
    ids = [e["id"] for e in first["items"]]
    cursor = first["next"]
    while cursor:
        page = api.http.get(f"/v1/audit?limit=2&before={cursor}", headers=api.as_(root)).json()
        ids += [e["id"] for e in page["items"]]
        cursor = page["next"]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5

    for cursor in ("garbage", _cursor("2030-01-01T00:00:00+00:00", 2**64), _cursor("x", 1)):
        bad = api.http.get("/v1/audit", params={"before": cursor}, headers=api.as_(root))
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "before"
    naive = api.http.get("/v1/audit?since=2030-01-01T00:00:00", headers=api.as_(root))
    assert naive.status_code == 422 and naive.json()["error"]["field"] == "since"
    windowed = api.http.get(
        "/v1/audit",
        params={
            "since": (now + timedelta(seconds=1)).isoformat(),
            "until": (now + timedelta(seconds=3)).isoformat(),
        },
        headers=api.as_(root),
    ).json()
    assert len(windowed["items"]) == 2


def test_api_processes_sharing_a_postgres_store_share_keys_and_users(
    pg_url: str, pg_schema: str
) -> None:
    from oncely.adapters.postgres import PostgresStore

    stores = [PostgresStore(pg_url, schema=pg_schema) for _ in range(2)]
    stores[0].migrate()
    auths = [Authenticator(s, SystemClock(), passwords=FAST) for s in stores]
    auths[0].create_user("root", PASSWORD, role=Role.ADMIN)
    apps = [create_http_app(lambda: (True, {}), auth=a) for a in auths]
    try:
        with serve(apps[0]) as one, serve(apps[1]) as two:
            token = httpx.post(
                f"{one}/v1/auth/token", data={"username": "root", "password": PASSWORD}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            # A token from one process opens the other; a key made on one works on the other.
            assert httpx.get(f"{two}/v1/auth/me", headers=headers).status_code == 200
            key = httpx.post(f"{two}/v1/api-keys", json={"name": "k"}, headers=headers).json()
            key_headers = {"Authorization": f"Bearer {key['key']}"}
            assert httpx.get(f"{one}/v1/auth/me", headers=key_headers).status_code == 200
            httpx.delete(f"{one}/v1/api-keys/{key['id']}", headers=headers)
            assert httpx.get(f"{two}/v1/auth/me", headers=key_headers).status_code == 401
    finally:
        for s in stores:
            s.close()

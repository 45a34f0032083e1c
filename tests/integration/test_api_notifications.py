"""/v1/notifications over real HTTP (uvicorn on loopback, a real SQLite store): channels with
masked URLs and a secret shown once, rules per job/owner/global with their permissions,
notifications with their deliveries, and jobs expected but missing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from oncely import compose
from oncely.adapters.sqlite import SqliteStore
from oncely.api.auth import route_rules
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.auth.passwords import Passwords
from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.principal import Role
from oncely.domain.runs import AttemptOutcome, decide_after_attempt
from oncely.ports.actions import ActionSettings
from oncely.ports.store import AttemptResult, ClaimParams
from oncely.runtime.clock import SystemClock
from oncely.service import Service, ServiceDeps
from tests.contract.conftest import make_job
from tests.integration.live_server import serve

PASSWORD = "correct horse battery staple"
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
HOOK = "https://93.184.216.34/hooks/T000/very-secret-token"


@dataclass
class Api:
    store: SqliteStore
    http: httpx.Client
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.http.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = SqliteStore(str(tmp_path / "oncely.db"))
    store.migrate()
    clock = SystemClock()
    auth = Authenticator(store, clock, passwords=FAST)
    auth.create_user("root", PASSWORD, role=Role.ADMIN)
    auth.create_user("alice", PASSWORD, role=Role.USER)
    auth.create_user("bob", PASSWORD, role=Role.USER)
    auth.create_user("val", PASSWORD, role=Role.VIEWER, owner="alice")
    service = Service(
        ServiceDeps(
            store=lambda: store,
            clock=lambda: clock,
            actions=ActionSettings(),
            check_action=compose.check_action_allowed,
        ),
        check_channel=compose.check_channel,
    )
    app = create_http_app(lambda: (True, {}), auth=auth, service=service)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        tokens = {}
        for name in ("root", "alice", "bob", "val"):
            r = http.post("/v1/auth/token", json={"username": name, "password": PASSWORD})
            tokens[name] = r.json()["access_token"]
        yield Api(store, http, tokens)
    store.close()


def _dead_run(store: SqliteStore, job_id: str) -> str:
    now = datetime.now(UTC)
    store.job_trigger("alice", job_id, run_id=new_id(0), now=now)
    [c] = store.run_claim(ClaimParams("w", "default", 1, now, timedelta(seconds=30)))
    decision = decide_after_attempt(AttemptOutcome.FAILED, 0, c.policy, now)
    store.run_complete(
        [
            AttemptResult(
                c.run_id,
                c.token,
                c.attempt,
                "w",
                AttemptOutcome.FAILED,
                decision,
                c.started_at,
                now,
                error="exit 3",
            )
        ]
    )
    return c.run_id


def test_channels_keep_their_urls_secret(api: Api) -> None:
    r = api.call(
        "alice",
        "POST",
        "/v1/notifications/channels",
        json={"name": "ops", "kind": "webhook", "url": HOOK},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["url"] == "https://93.184.216.34/***" and len(made["secret"]) >= 32
    listed = api.call("alice", "GET", "/v1/notifications/channels").json()
    assert listed == [{k: v for k, v in made.items() if k != "secret"}]
    assert "very-secret-token" not in api.call("root", "GET", "/v1/notifications/channels").text
    assert api.call("bob", "GET", "/v1/notifications/channels").json() == []
    # Bad input changes nothing and names the field.
    for body, field in [
        ({"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}, "url"),
        ({"name": "x", "kind": "apprise", "url": "nosuchservice://abc"}, "url"),
        ({"name": "bad name!", "kind": "webhook", "url": HOOK}, "name"),
    ]:
        r = api.call("alice", "POST", "/v1/notifications/channels", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
    assert (
        api.call(
            "alice", "POST", "/v1/notifications/channels", json={"name": "ops", "url": HOOK}
        ).status_code
        == 409
    )
    assert (
        api.call(
            "val", "POST", "/v1/notifications/channels", json={"name": "v", "url": HOOK}
        ).status_code
        == 403
    )
    assert len(api.call("alice", "GET", "/v1/notifications/channels").json()) == 1


def test_rules_notifications_and_their_permissions(api: Api) -> None:
    channel = api.call(
        "alice", "POST", "/v1/notifications/channels", json={"name": "ops", "url": HOOK}
    ).json()
    job = api.store.job_create(
        make_job(owner="alice", name="backup", policy=Policy(max_retries=0)), now=datetime.now(UTC)
    )
    rule = api.call(
        "alice",
        "POST",
        "/v1/notifications/rules",
        json={"channel": "ops", "events": ["dead", "recovery"], "job": "backup"},
    )
    assert rule.status_code == 201, rule.text
    assert rule.json()["job_id"] == job.id and rule.json()["events"] == ["dead", "recovery"]
    assert (
        api.call(
            "alice",
            "POST",
            "/v1/notifications/rules",
            json={"channel": "ops", "events": ["dead"], "is_global": True},
        ).status_code
        == 403
    )
    assert (
        api.call(
            "bob",
            "POST",
            "/v1/notifications/rules",
            json={"channel": channel["id"], "events": ["dead"]},
        ).status_code
        == 404
    )
    assert (
        api.call(
            "bob",
            "POST",
            "/v1/notifications/rules",
            json={"channel": "ops", "events": ["dead"], "job": job.id},
        ).status_code
        == 404
    )
    assert (
        api.call(
            "alice",
            "POST",
            "/v1/notifications/rules",
            json={"channel": "ops", "events": ["sometimes"]},
        ).status_code
        == 422
    )
    root_ch = api.call(
        "root", "POST", "/v1/notifications/channels", json={"name": "all", "url": HOOK}
    ).json()
    assert (
        api.call(
            "root",
            "POST",
            "/v1/notifications/rules",
            json={"channel": root_ch["id"], "events": ["dead"], "is_global": True},
        ).status_code
        == 201
    )

    run_id = _dead_run(api.store, job.id)
    page = api.call("alice", "GET", "/v1/notifications").json()
    [n] = page["items"]
    assert n["event"] == "dead" and n["run_id"] == run_id and n["job_name"] == "backup"
    assert n["state"] == "pending" and n["detail"]["error"] == "exit 3"
    assert len(api.call("root", "GET", "/v1/notifications").json()["items"]) == 2  # + global
    assert api.call("bob", "GET", "/v1/notifications").json()["items"] == []
    detail = api.call("alice", "GET", f"/v1/notifications/{n['id']}").json()
    assert detail["deliveries"] == []
    assert api.call("bob", "GET", f"/v1/notifications/{n['id']}").status_code == 404
    assert api.call("alice", "GET", "/v1/notifications?state=later").status_code == 422

    assert (
        api.call("val", "DELETE", f"/v1/notifications/rules/{rule.json()['id']}").status_code == 403
    )
    assert (
        api.call("alice", "DELETE", f"/v1/notifications/rules/{rule.json()['id']}").status_code
        == 204
    )
    assert api.call("alice", "GET", "/v1/notifications/rules").json() == []
    assert api.call("alice", "DELETE", "/v1/notifications/channels/ops").status_code == 204
    assert api.call("alice", "DELETE", "/v1/notifications/channels/ops").status_code == 404


def test_expected_but_missing_jobs(api: Api) -> None:
    now = datetime.now(UTC)
    job = api.store.job_create(
        make_job(owner="alice", name="nightly", policy=Policy(deadline=3600)), now=now
    )
    api.store.job_create(make_job(owner="bob", name="other", policy=Policy(deadline=3600)), now=now)
    api.store.deadman_sweep(now=now - timedelta(hours=2))  # armed two hours ago: lapsed now
    api.store.deadman_sweep(now=now)
    [m] = api.call("alice", "GET", "/v1/notifications/missing").json()
    assert m["job_id"] == job.id and m["deadline"] == 3600 and m["overdue_seconds"] >= 3599
    assert len(api.call("root", "GET", "/v1/notifications/missing").json()) == 2
    assert api.call("val", "GET", "/v1/notifications/missing").json()[0]["name"] == "nightly"


def test_every_notification_route_declares_a_permission(api: Api, tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "other.db"))
    store.migrate()
    service = Service(
        ServiceDeps(
            store=lambda: store,
            clock=SystemClock,
            actions=ActionSettings(),
            check_action=compose.check_action_allowed,
        )
    )
    app = create_http_app(
        lambda: (True, {}), auth=Authenticator(store, SystemClock()), service=service
    )
    rules = {k: v for k, v in route_rules(app).items() if "/v1/notifications" in k}
    assert len(rules) == 9 and all(v and v.startswith("requires") for v in rules.values())
    for name in rules:
        method, path = name.split(" ")[0].split(",")[0], name.split(" ")[1]
        r = api.http.request(
            method,
            path.replace("{ref}", "x").replace("{rule_id}", "x").replace("{notification_id}", "x"),
        )
        assert r.status_code == 401, name
    store.close()

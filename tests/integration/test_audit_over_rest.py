"""The audit log over REST, end to end on the app ``oncely up`` assembles: changes made through
the REST resources are recorded with the caller as the actor, and each caller reads only what
its role and owner allow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from oncely import App, compose
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.auth.passwords import Passwords
from oncely.domain.principal import Role
from tests.integration.live_server import serve

PASSWORD = "correct horse battery staple"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[httpx.Client]:
    embedded = App(f"sqlite:///{tmp_path / 'oncely.db'}")
    auth = Authenticator(
        embedded.store,
        embedded.clock,
        passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)),
    )
    auth.create_user("root", PASSWORD, role=Role.ADMIN)
    auth.create_user("alice", PASSWORD)
    auth.create_user("bob", PASSWORD)
    auth.create_user("val", PASSWORD, role=Role.VIEWER, owner="alice")
    app = create_http_app(
        lambda: (True, {}),
        auth=auth,
        login_limits=compose.login_limits(embedded.settings),
        service=embedded.service,
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client
    embedded.close()


def _as(http: httpx.Client, name: str) -> dict[str, str]:
    r = http.post("/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_rest_changes_are_audited_with_the_caller_and_confined_by_owner(
    http: httpx.Client,
) -> None:
    alice, bob, val, root = (_as(http, n) for n in ("alice", "bob", "val", "root"))
    job = {"name": "report", "every": "1h", "task": "noop"}
    created = http.post("/v1/jobs", json=job, headers=alice)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert http.post("/v1/jobs", json=job, headers=bob).status_code == 201
    # A viewer cannot write; nothing is recorded for a refused change.
    assert http.post("/v1/jobs", json={**job, "name": "v"}, headers=val).status_code == 403

    mine = http.get("/v1/audit", headers=alice).json()["items"]
    assert [(e["action"], e["actor"], e["target_id"]) for e in mine] == [
        ("job.create", "alice", job_id)
    ]
    # The viewer of owner alice reads alice's entries; bob reads only his own.
    assert [e["target_id"] for e in http.get("/v1/audit", headers=val).json()["items"]] == [job_id]
    bobs = http.get("/v1/audit", headers=bob).json()["items"]
    assert [(e["actor"], e["owner"]) for e in bobs] == [("bob", "bob")]
    assert (
        http.get(
            "/v1/audit", params={"target_kind": "job", "target_id": job_id}, headers=bob
        ).json()["items"]
        == []
    )
    # The admin reads everything.
    everyone = http.get("/v1/audit", headers=root).json()["items"]
    assert {e["actor"] for e in everyone} == {"alice", "bob"}

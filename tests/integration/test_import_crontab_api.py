"""``POST /v1/import/crontab`` over real HTTP: admins only, dry run, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

import oncely
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.auth.passwords import Passwords
from oncely.config import Settings
from oncely.domain.principal import Role
from oncely.ports.store import JobQuery
from tests.integration.live_server import serve

PASSWORD = "correct horse battery staple"
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "crontabs"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[tuple[httpx.Client, oncely.App]]:
    app = oncely.App(
        settings=Settings(store=f"sqlite:///{tmp_path / 'o.db'}", allow_shell=True)  # type: ignore[arg-type]
    )
    auth = Authenticator(app.store, app.clock, passwords=FAST)
    auth.create_user("root", PASSWORD, role=Role.ADMIN)
    auth.create_user("alice", PASSWORD, role=Role.USER)
    asgi = create_http_app(lambda: (True, {}), auth=auth, service=app.service)
    with serve(asgi) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, app
    app.close()


def token(client: httpx.Client, name: str) -> dict[str, str]:
    r = client.post("/v1/auth/token", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_admin_imports_a_crontab_once(http: tuple[httpx.Client, oncely.App]) -> None:
    client, app = http
    root = token(client, "root")
    body = {"crontab": (CORPUS / "system-etc-crontab").read_text(), "system": True}

    dry = client.post("/v1/import/crontab", json={**body, "dry_run": True}, headers=root)
    assert dry.status_code == 200, dry.text
    assert dry.json()["applied"] is False and dry.json()["created"] == 4
    assert all(len(j["next_fires"]) == 3 for j in dry.json()["jobs"])
    assert app.list_jobs() == []

    done = client.post("/v1/import/crontab", json=body, headers=root)
    assert done.status_code == 200 and done.json()["created"] == 4
    again = client.post("/v1/import/crontab", json=body, headers=root)
    assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"]) == (
        0,
        0,
        4,
    )


def test_bad_lines_are_a_422_and_users_are_refused(http: tuple[httpx.Client, oncely.App]) -> None:
    client, app = http
    bad = {"crontab": (CORPUS / "user-bad").read_text()}
    r = client.post("/v1/import/crontab", json=bad, headers=token(client, "root"))
    assert r.status_code == 422
    assert (
        r.json()["error"]["field"] == "crontab"
        and "line 2: @reboot" in r.json()["error"]["message"]
    )
    assert app.service.jobs.search(app.principal, JobQuery()) == []

    user = client.post("/v1/import/crontab", json=bad, headers=token(client, "alice"))
    assert user.status_code == 403
    anonymous = client.post("/v1/import/crontab", json=bad)
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("expr", "zone"), [("30 2 * 3 0#2", "America/New_York"), ("30 1 * 3 0L", "Europe/London")]
)
def test_a_schedule_that_never_fires_is_a_422_naming_the_field(
    http: tuple[httpx.Client, oncely.App], expr: str, zone: str
) -> None:
    client, app = http
    alice = token(client, "alice")
    job = {"name": "gap", "cron": expr, "timezone": zone, "dst_gap": "skip", "task": "t"}
    r = client.post("/v1/jobs", json=job, headers=alice)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "dst_gap"
    assert "never fires" in r.json()["error"]["message"]
    assert app.service.jobs.search(app.principal, JobQuery()) == []
    # The impossible date of the other check, for comparison: field cron.
    r = client.post("/v1/jobs", json={**job, "cron": "0 0 30 2 *"}, headers=alice)
    assert r.status_code == 422 and r.json()["error"]["field"] == "cron"

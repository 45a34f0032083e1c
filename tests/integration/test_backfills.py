"""Backfills through the service, the CLI and REST on a real SQLite store: preview, exactly
once, the rate, list, cancel, and who may do it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

import oncely
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.auth.passwords import Passwords
from oncely.cli.main import main
from oncely.config import Settings
from oncely.domain.errors import InvalidInput, NotFound, PermissionDenied
from oncely.domain.principal import Principal, Role
from oncely.domain.runs import RunState
from oncely.ports.store import RunQuery
from oncely.wire import JobCreate
from tests.integration.live_server import serve

ALICE = Principal("alice", "alice", Role.USER)
BOB = Principal("bob", "bob", Role.USER)
VIEWER = Principal("vera", "alice", Role.VIEWER)
PASSWORD = "correct horse battery staple"
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


def hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[oncely.App]:
    a = oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'o.db'}"))  # type: ignore[arg-type]
    yield a
    a.close()


def window() -> tuple[datetime, datetime]:
    top = hour(datetime.now(UTC)) - timedelta(hours=1)
    return top - timedelta(hours=4), top  # five hourly fires


def test_preview_create_twice_list_cancel(app: oncely.App) -> None:
    job = app.service.jobs.create(ALICE, JobCreate(name="hourly", cron="0 * * * *", task="t"))
    start, end = window()
    plan = app.service.backfills.preview(ALICE, "hourly", start, end, rate=10)
    assert plan.count == 5 and plan.fires[0] == start and plan.fires[-1] == end
    assert app.store.run_search(None, RunQuery(job_id=job.id)) == []  # a preview makes nothing

    made = app.service.backfills.create(ALICE, "hourly", start, end, rate=10)
    assert (made.fires, made.created, made.rate) == (5, 5, 10)
    runs = sorted(app.store.run_search(None, RunQuery(job_id=job.id)), key=lambda r: r.due_at)
    assert [r.scheduled_for for r in runs] == list(plan.fires)  # oldest first
    gaps = {(b.due_at - a.due_at).total_seconds() for a, b in itertools.pairwise(runs)}
    assert gaps == {0.1}

    again = app.service.backfills.create(ALICE, job.id, start.isoformat(), end.isoformat())
    assert again.created == 0
    assert len(app.store.run_search(None, RunQuery(job_id=job.id))) == 5
    assert {b.id for b in app.service.backfills.list(VIEWER, "hourly")} == {made.id, again.id}

    done = app.service.backfills.cancel(ALICE, made.id)
    assert done.state == "cancelled" and done.cancelled == 5
    states = {r.state for r in app.store.run_search(None, RunQuery(job_id=job.id))}
    assert states == {RunState.CANCELLED}


def test_who_may_backfill(app: oncely.App) -> None:
    app.service.jobs.create(ALICE, JobCreate(name="hourly", cron="0 * * * *", task="t"))
    start, end = window()
    with pytest.raises(PermissionDenied):
        app.service.backfills.create(VIEWER, "hourly", start, end)
    with pytest.raises(NotFound):
        app.service.backfills.create(BOB, "hourly", start, end)
    made = app.service.backfills.create(ALICE, "hourly", start, end)
    with pytest.raises(PermissionDenied):
        app.service.backfills.cancel(VIEWER, made.id)
    with pytest.raises(NotFound):
        app.service.backfills.cancel(BOB, made.id)
    with pytest.raises(NotFound):
        app.service.backfills.list(BOB, "hourly")


def test_bad_periods_name_the_field(app: oncely.App) -> None:
    app.service.jobs.create(ALICE, JobCreate(name="hourly", cron="0 * * * *", task="t"))
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput) as future:
        app.service.backfills.preview(
            ALICE, "hourly", now - timedelta(hours=2), now + timedelta(hours=1)
        )
    assert future.value.field == "end"
    with pytest.raises(InvalidInput) as naive:
        app.service.backfills.preview(ALICE, "hourly", "2026-01-01T00:00:00", now)
    assert naive.value.field == "start"
    with pytest.raises(InvalidInput) as rate:
        app.service.backfills.preview(ALICE, "hourly", now - timedelta(hours=2), now, rate=0)
    assert rate.value.field == "rate"


def test_cli_shows_then_creates_with_yes(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    added = runner.invoke(
        main, ["--store", store, "jobs", "add", "hourly", "--cron", "0 * * * *", "--task", "t"]
    )
    assert added.exit_code == 0, added.stderr
    start, end = (t.isoformat() for t in window())
    shown = runner.invoke(
        main, ["--store", store, "jobs", "backfill", "hourly", "--from", start, "--to", end]
    )
    assert shown.exit_code == 0, shown.stderr
    assert "fires:  5" in shown.stdout and "add --yes" in shown.stderr
    listed = runner.invoke(main, ["--store", store, "jobs", "backfills", "hourly", "--json"])
    assert json.loads(listed.stdout) == []

    made = runner.invoke(
        main,
        [
            "--store",
            store,
            "jobs",
            "backfill",
            "hourly",
            "--from",
            start,
            "--to",
            end,
            "--yes",
            "--json",
        ],
    )
    assert made.exit_code == 0, made.stderr
    backfill = json.loads(made.stdout)["backfill"]
    assert backfill["created"] == 5
    cancelled = runner.invoke(main, ["--store", store, "jobs", "backfill-cancel", backfill["id"]])
    assert cancelled.exit_code == 0 and "5 runs cancelled" in cancelled.stdout


def test_rest(app: oncely.App) -> None:
    auth = Authenticator(app.store, app.clock, passwords=FAST)
    auth.create_user("alice", PASSWORD, role=Role.USER)
    auth.create_user("bob", PASSWORD, role=Role.USER)
    auth.create_user("val", PASSWORD, role=Role.VIEWER, owner="alice")
    job = app.service.jobs.create(ALICE, JobCreate(name="hourly", cron="0 * * * *", task="t"))
    start, end = window()
    body = {"start": start.isoformat(), "end": end.isoformat(), "rate": 5}
    asgi = create_http_app(lambda: (True, {}), auth=auth, service=app.service)
    with serve(asgi) as url, httpx.Client(base_url=url, timeout=30) as client:

        def as_(name: str) -> dict[str, str]:
            r = client.post("/v1/auth/token", json={"username": name, "password": PASSWORD})
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        alice, bob, val = as_("alice"), as_("bob"), as_("val")
        path = f"/v1/jobs/{job.id}/backfills"
        dry = client.post(path, json={**body, "dry_run": True}, headers=alice)
        assert dry.status_code == 200, dry.text
        assert dry.json()["count"] == 5 and dry.json()["backfill"] is None
        assert client.post(path, json=body, headers=val).status_code == 403
        assert client.post(path, json=body, headers=bob).status_code == 404
        made = client.post(path, json=body, headers=alice)
        assert made.status_code == 200 and made.json()["backfill"]["created"] == 5
        twice = client.post(path, json=body, headers=alice)
        assert twice.json()["backfill"]["created"] == 0
        assert len(client.get(path, headers=val).json()) == 2
        bad = client.post(path, json={**body, "end": "2999-01-01T00:00:00Z"}, headers=alice)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "end"
        backfill_id = made.json()["backfill"]["id"]
        assert client.post(f"/v1/backfills/{backfill_id}/cancel", headers=bob).status_code == 404
        done = client.post(f"/v1/backfills/{backfill_id}/cancel", headers=alice)
        assert done.status_code == 200 and done.json()["cancelled"] == 5

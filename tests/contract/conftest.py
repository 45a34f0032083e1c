"""The store conformance suite runs every test against each Store implementation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oncely.domain.actions import Action, HttpAction, PythonAction
from oncely.domain.ids import new_id
from oncely.domain.jobs import Job, shard_of
from oncely.domain.policy import Policy
from oncely.domain.schedule import CronSchedule, Schedule, initial_fire
from oncely.ports.store import Store

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "sqlite":
        from oncely.adapters.sqlite import SqliteStore

        s = SqliteStore(str(tmp_path / "oncely.db"))
    else:
        from oncely.adapters.postgres import PostgresStore

        schema = request.getfixturevalue("pg_schema")
        s = PostgresStore(request.getfixturevalue("pg_url"), schema=schema)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def make_job(
    *,
    owner: str = "alice",
    name: str | None = None,
    schedule: Schedule | None = None,
    action: Action | None = None,
    policy: Policy | None = None,
    payload: Any = None,
    now: datetime = T0,
    paused: bool = False,
    next_fire_at: datetime | None = None,
) -> Job:
    job_id = new_id(int(now.timestamp() * 1000))
    schedule = schedule or CronSchedule(expr="* * * * *")
    return Job(
        id=job_id,
        owner=owner,
        name=name or f"job-{job_id[-8:]}",
        schedule=schedule,
        action=action or PythonAction(task="noop"),
        payload=payload,
        policy=policy or Policy(),
        paused=paused,
        next_fire_at=next_fire_at if next_fire_at is not None else initial_fire(schedule, now),
        shard=shard_of(job_id),
        version=1,
        created_at=now,
        updated_at=now,
    )


def http_job(**kw: Any) -> Job:
    return make_job(action=HttpAction(url="https://example.com/hook"), **kw)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)

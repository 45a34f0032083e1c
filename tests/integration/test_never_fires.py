"""A cron schedule that can never fire is refused when a job is created or changed, through the
service (what the CLI and REST call), naming the field at fault, and quickly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import oncely
from oncely.config import Settings
from oncely.domain.errors import InvalidInput
from oncely.domain.principal import Principal, Role
from oncely.domain.schedule import make_schedule, next_fire
from oncely.ports.store import JobQuery
from oncely.wire import JobCreate, JobPatch

ALICE = Principal("alice", "alice", Role.USER)
NOW = datetime(2026, 12, 4, tzinfo=UTC)
# Every match falls in the spring-forward gap: 02:30 on the second Sunday of March in New York
# (clocks jump 02:00 -> 03:00), 01:30 on the last Sunday of March in London (01:00 -> 02:00).
NEVER = [("30 2 * 3 0#2", "America/New_York"), ("30 1 * 3 0L", "Europe/London")]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[oncely.App]:
    a = oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'o.db'}"))  # type: ignore[arg-type]
    yield a
    a.close()


@pytest.mark.parametrize(("expr", "zone"), NEVER)
def test_a_schedule_whose_matches_all_fall_in_dst_gaps_is_refused(
    app: oncely.App, expr: str, zone: str
) -> None:
    spec = {"name": "gap", "cron": expr, "timezone": zone, "task": "t"}
    with pytest.raises(InvalidInput) as refused:
        app.service.jobs.create(ALICE, JobCreate.model_validate({**spec, "dst_gap": "skip"}))
    assert refused.value.field == "dst_gap"
    assert "never fires" in str(refused.value) and "daylight-saving gap" in str(refused.value)
    assert app.service.jobs.search(ALICE, JobQuery()) == []  # nothing was created
    # With "shift" it fires at the end of the gap, so it is accepted; switching it to "skip"
    # afterwards is refused the same way and leaves the job as it was.
    job = app.service.jobs.create(ALICE, JobCreate.model_validate(spec))
    with pytest.raises(InvalidInput) as changed:
        app.service.jobs.update(ALICE, job.id, JobPatch(dst_gap="skip"))
    assert changed.value.field == "dst_gap"
    assert app.service.jobs.get(ALICE, job.id).schedule == job.schedule


def test_schedules_that_fire_under_skip_are_accepted() -> None:
    # Outside the gap, or in a month without one, or rare but real: all accepted.
    for expr, zone in [
        ("30 2 * * *", "America/New_York"),  # skips one day a year, fires on the others
        ("30 2 * 3,4 0#2", "America/New_York"),  # April's second Sunday has no gap
        ("0 0 * 2 MON#5", "UTC"),  # a leap-year 29 February on a Monday (2044)
    ]:
        schedule = make_schedule(cron=expr, timezone=zone, dst_gap="skip", now=NOW)
        assert next_fire(schedule, NOW) is not None


@pytest.mark.parametrize(("expr", "zone"), NEVER)
def test_the_search_is_bounded(expr: str, zone: str) -> None:
    # Before the bound, finding out walked a thousand years (~220 ms or more per call, which
    # any API caller could repeat); now a century, a step per year. Generous for a loaded box.
    make_schedule(cron=expr, timezone=zone, now=NOW)  # warm the zone and parse caches
    begin = time.perf_counter()
    with pytest.raises(InvalidInput):
        make_schedule(cron=expr, timezone=zone, dst_gap="skip", now=NOW)
    assert time.perf_counter() - begin < 0.15

"""Materialization and misfire decisions (pure: no store, no clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from oncely.domain.actions import PythonAction
from oncely.domain.firing import plan_fires
from oncely.domain.jobs import Job
from oncely.domain.policy import Policy
from oncely.domain.runs import RunState
from oncely.domain.schedule import AtSchedule, CronSchedule, EverySchedule, Schedule

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def job(schedule: Schedule, next_fire_at: datetime | None, **policy: object) -> Job:
    return Job(
        id="0190aaaa-0000-7000-8000-000000000001",
        owner="o",
        name="j",
        schedule=schedule,
        action=PythonAction(task="t"),
        payload=None,
        policy=Policy(**policy),  # type: ignore[arg-type]
        paused=False,
        next_fire_at=next_fire_at,
        shard=0,
        version=4,
        created_at=T0,
        updated_at=T0,
    )


EVERY_10S = CronSchedule(expr="*/10 * * * * *")


def test_materializes_fires_within_the_lookahead() -> None:
    plan = plan_fires(job(EVERY_10S, s(10)), now=T0, horizon=s(35))
    assert plan is not None
    assert [r.scheduled_for for r in plan.runs] == [s(10), s(20), s(30)]
    assert all(r.state is RunState.PENDING and r.due_at == r.scheduled_for for r in plan.runs)
    assert plan.next_fire_at == s(40)
    assert (plan.job_version, plan.old_next_fire_at) == (4, s(10))


def test_nothing_to_do_before_the_horizon_or_when_paused() -> None:
    assert plan_fires(job(EVERY_10S, s(40)), now=T0, horizon=s(35)) is None
    assert plan_fires(replace(job(EVERY_10S, s(10)), paused=True), now=T0, horizon=s(35)) is None
    assert plan_fires(job(EVERY_10S, None), now=T0, horizon=s(35)) is None


def test_a_late_fire_within_grace_just_runs_late() -> None:
    plan = plan_fires(job(EVERY_10S, s(-50), misfire="skip"), now=T0, horizon=s(5))
    assert plan is not None
    assert [r.scheduled_for for r in plan.runs] == [s(-50), s(-40), s(-30), s(-20), s(-10), s(0)]
    assert all(r.state is RunState.PENDING for r in plan.runs)


def test_run_once_coalesces_missed_fires_into_one_run() -> None:
    plan = plan_fires(job(EVERY_10S, s(-3600)), now=T0, horizon=s(5))
    assert plan is not None
    coalesced, *on_time = plan.runs
    assert coalesced.state is RunState.PENDING
    assert coalesced.fires == 354  # -3600 .. -70 inclusive, every 10 s
    assert coalesced.first_fire == s(-3600) and coalesced.scheduled_for == s(-70)
    assert coalesced.due_at == T0
    assert [r.scheduled_for for r in on_time] == [s(-60 + 10 * i) for i in range(7)]
    assert plan.next_fire_at == s(10)


def test_skip_records_the_missed_fires_as_one_missed_run() -> None:
    plan = plan_fires(job(EVERY_10S, s(-3600), misfire="skip"), now=T0, horizon=s(5))
    assert plan is not None
    missed = plan.runs[0]
    assert missed.state is RunState.MISSED and missed.fires == 354
    assert sum(r.fires for r in plan.runs) == 361  # every fire accounted for


def test_run_all_runs_each_missed_fire_up_to_the_cap() -> None:
    plan = plan_fires(
        job(EVERY_10S, s(-3600), misfire="run_all", misfire_cap=100), now=T0, horizon=s(5)
    )
    assert plan is not None
    ran = [r for r in plan.runs if r.state is RunState.PENDING and r.due_at == T0]
    assert [r.scheduled_for for r in ran[:100]] == [s(-3600 + 10 * i) for i in range(100)]
    [recorded] = [r for r in plan.runs if r.state is RunState.MISSED]
    assert recorded.fires == 254 and recorded.first_fire == s(-2600)
    assert sum(r.fires for r in plan.runs) == 361


def test_run_all_under_the_cap_runs_them_all() -> None:
    plan = plan_fires(job(EVERY_10S, s(-300), misfire="run_all"), now=T0, horizon=s(0))
    assert plan is not None
    assert all(r.state is RunState.PENDING for r in plan.runs)
    assert len(plan.runs) == 31


def test_a_very_long_outage_is_worked_through_in_blocks() -> None:
    j = job(CronSchedule(expr="* * * * * *"), s(-86_400))
    plan = plan_fires(j, now=T0, horizon=s(5), scan_limit=10_000)
    assert plan is not None
    [block] = plan.runs
    assert block.state is RunState.MISSED and block.fires == 10_000
    assert plan.next_fire_at == s(-86_400 + 10_000)
    total = block.fires
    while True:
        j = replace(j, next_fire_at=plan.next_fire_at)
        plan = plan_fires(j, now=T0, horizon=s(5), scan_limit=10_000)
        assert plan is not None
        total += sum(r.fires for r in plan.runs)
        if plan.next_fire_at is not None and plan.next_fire_at > s(5):
            break
    assert total == 86_400 + 6  # every second from -86400 to +5 inclusive
    last_policy_run = [r for r in plan.runs if r.fires > 1 and r.state is RunState.PENDING]
    assert len(last_policy_run) == 1  # run_once applies to the final block


def test_one_shot_at_job_fires_once_then_stops() -> None:
    at = AtSchedule(at=s(3))
    plan = plan_fires(job(at, s(3)), now=T0, horizon=s(5))
    assert plan is not None
    assert [r.scheduled_for for r in plan.runs] == [s(3)]
    assert plan.next_fire_at is None


def test_jitter_delays_due_time_but_not_the_fire() -> None:
    sched = EverySchedule(interval=timedelta(seconds=10), anchor=T0, jitter=timedelta(seconds=5))
    plan = plan_fires(job(sched, s(10)), now=T0, horizon=s(100))
    assert plan is not None
    for r in plan.runs:
        assert r.scheduled_for.timestamp() % 10 == 0
        assert r.scheduled_for <= r.due_at <= r.scheduled_for + timedelta(seconds=5)
    again = plan_fires(job(sched, s(10)), now=T0, horizon=s(100))
    assert again == plan  # deterministic: re-planning gives the same due times


def test_ahead_limit_bounds_one_tick() -> None:
    plan = plan_fires(
        job(CronSchedule(expr="* * * * * *"), s(1)), now=T0, horizon=s(5000), ahead_limit=50
    )
    assert plan is not None
    assert len(plan.runs) == 50 and plan.next_fire_at == s(51)

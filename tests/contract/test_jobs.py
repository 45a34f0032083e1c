"""Contract: storing, reading, pausing, replacing and deleting jobs."""

from __future__ import annotations

import pytest

from oncely.domain.errors import Conflict, NotFound
from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.runs import RunState
from oncely.domain.schedule import CronSchedule, EverySchedule
from oncely.ports.store import Store
from tests.contract.conftest import T0, http_job, later, make_job


def test_migrate_is_idempotent(store: Store) -> None:
    version = store.schema_version()
    assert version >= 1
    assert store.migrate() == version
    assert store.schema_version() == version


def test_create_and_read_back_round_trips_every_field(store: Store) -> None:
    job = make_job(
        name="nightly report",
        schedule=CronSchedule(expr="0 3 * * *", timezone="Europe/Paris", dst_fold="both"),
        policy=Policy(max_retries=5, timeout=30, overlap="forbid", queue="heavy", priority=7),
        payload={"to": ["a@example.com"], "n": 3, "nested": {"ok": True}},
    )
    stored = store.job_create(job, now=T0)
    assert stored == job
    assert store.job_get("alice", job.id) == job
    assert store.job_get(None, job.id) == job
    assert store.job_get_by_name("alice", "nightly report") == job


def test_other_owner_cannot_see_job(store: Store) -> None:
    job = store.job_create(make_job(owner="alice"), now=T0)
    assert store.job_get("mallory", job.id) is None
    assert store.job_get_by_name("mallory", job.name) is None
    assert store.job_list("mallory") == []
    assert store.job_set_paused("mallory", job.id, paused=True, next_fire_at=None, now=T0) is None
    assert store.job_delete("mallory", job.id, now=T0) is False
    with pytest.raises(NotFound):
        store.job_trigger("mallory", job.id, run_id=new_id(0), now=T0)
    assert store.job_get("alice", job.id) is not None


def test_duplicate_name_is_a_conflict_unless_replace(store: Store) -> None:
    first = store.job_create(make_job(name="sync"), now=T0)
    with pytest.raises(Conflict):
        store.job_create(make_job(name="sync"), now=T0)
    # The same name under another owner is a different job.
    store.job_create(make_job(name="sync", owner="bob"), now=T0)

    replacement = http_job(
        name="sync",
        schedule=EverySchedule(interval=__import__("datetime").timedelta(minutes=5), anchor=T0),
    )
    replaced = store.job_create(replacement, replace=True, now=later(1))
    assert replaced.id == first.id
    assert replaced.version == first.version + 1
    assert replaced.action == replacement.action
    assert replaced.schedule == replacement.schedule


def test_replace_cancels_runs_materialized_from_the_old_schedule(store: Store) -> None:
    job = store.job_create(make_job(name="r"), now=T0)
    lease = store.lease_acquire([f"shard:{job.shard}"], "s1", now=T0, ttl=_ttl())[0]
    from oncely.domain.firing import plan_fires

    plan = plan_fires(job, T0, later(180))
    assert plan is not None
    store.fires_commit([lease], [(job.shard, plan)], now=T0)
    assert {r.state for r in store.run_list("alice", job_id=job.id)} == {RunState.PENDING}

    store.job_create(make_job(name="r"), replace=True, now=later(1))
    assert {r.state for r in store.run_list("alice", job_id=job.id)} == {RunState.CANCELLED}


def test_list_pages_by_name(store: Store) -> None:
    for name in ["c", "a", "b", "d"]:
        store.job_create(make_job(name=name), now=T0)
    store.job_create(make_job(name="zz", owner="bob"), now=T0)
    page1 = store.job_list("alice", limit=2)
    assert [j.name for j in page1] == ["a", "b"]
    page2 = store.job_list("alice", limit=2, after_name="b")
    assert [j.name for j in page2] == ["c", "d"]
    assert len(store.job_list(None, limit=10)) == 5


def test_pause_cancels_future_pending_runs_and_hides_from_due(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    lease = store.lease_acquire([f"shard:{job.shard}"], "s1", now=T0, ttl=_ttl())[0]
    from oncely.domain.firing import plan_fires

    plan = plan_fires(job, T0, later(180))
    assert plan is not None
    store.fires_commit([lease], [(job.shard, plan)], now=T0)
    paused = store.job_set_paused("alice", job.id, paused=True, next_fire_at=None, now=later(1))
    assert paused is not None and paused.paused and paused.version == job.version + 1
    assert {r.state for r in store.run_list("alice", job_id=job.id)} == {RunState.CANCELLED}
    assert store.jobs_due([job.shard], later(10_000), 10) == []

    resumed = store.job_set_paused(
        "alice", job.id, paused=False, next_fire_at=later(600), now=later(2)
    )
    assert resumed is not None and not resumed.paused
    assert resumed.next_fire_at == later(600)
    assert [j.id for j in store.jobs_due([job.shard], later(600), 10)] == [job.id]


def test_delete_frees_the_name_keeps_history_and_cancels_waiting(store: Store) -> None:
    job = store.job_create(make_job(name="gone"), now=T0)
    run = store.job_trigger("alice", job.id, run_id=new_id(0), now=T0)
    assert store.job_delete("alice", job.id, now=later(1)) is True
    assert store.job_delete("alice", job.id, now=later(1)) is False
    assert store.job_get("alice", job.id) is None
    assert store.jobs_due([job.shard], later(10_000), 10) == []
    kept = store.run_get("alice", run.id)
    assert kept is not None and kept.state is RunState.CANCELLED
    # The name is free again.
    store.job_create(make_job(name="gone"), now=later(2))


def test_trigger_creates_a_manual_queued_run(store: Store) -> None:
    job = store.job_create(make_job(policy=Policy(queue="q1", priority=3)), now=T0)
    run_id = new_id(0)
    run = store.job_trigger("alice", job.id, run_id=run_id, now=later(5))
    assert run.id == run_id
    assert run.manual and run.state is RunState.QUEUED
    assert run.scheduled_for == later(5) == run.due_at
    assert (run.queue, run.priority, run.job_name) == ("q1", 3, job.name)
    with pytest.raises(NotFound):
        store.job_trigger("alice", new_id(0), run_id=new_id(0), now=T0)


def _ttl():  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(seconds=10)


def test_bulk_create_stores_every_job_with_every_field(store: Store) -> None:
    jobs = [
        make_job(name=f"bulk-{i:05d}", payload={"i": i} if i % 2 else None) for i in range(12_000)
    ]
    jobs.append(
        make_job(
            name="bulk-custom",
            schedule=CronSchedule(
                expr="30 2 * * *", timezone="Australia/Lord_Howe", dst_gap="skip", dst_fold="last"
            ),
            policy=Policy(max_retries=0, base_delay=2, timeout=5, misfire="skip", priority=-3),
            paused=True,
        )
    )
    assert store.jobs_create(jobs, now=T0) == len(jobs)
    for job in (jobs[0], jobs[7_777], jobs[-1]):
        assert store.job_get("alice", job.id) == job
    assert len(store.job_list("alice", limit=20_000)) == len(jobs)


def test_bulk_create_is_all_or_nothing(store: Store) -> None:
    store.job_create(make_job(name="taken"), now=T0)
    batch = [make_job(name=f"new-{i}") for i in range(6_000)]
    # The taken name sits in the second internal chunk: the first must roll back too.
    batch.insert(5_500, make_job(name="taken"))
    with pytest.raises(Conflict, match="'taken'"):
        store.jobs_create(batch, now=T0)
    assert [j.name for j in store.job_list("alice")] == ["taken"]

    twice = [make_job(name="a"), make_job(name="b"), make_job(name="a")]
    with pytest.raises(Conflict, match="given twice"):
        store.jobs_create(twice, now=T0)
    assert [j.name for j in store.job_list("alice")] == ["taken"]
    assert store.jobs_create([], now=T0) == 0

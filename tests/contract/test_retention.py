"""Retention in the store: finished runs past their age go with their attempts, in bounded
batches along a cursor; dead and waiting runs stay; a job's own retention wins; deleted jobs
are purged once their runs are gone; state counts come from live states only."""

from __future__ import annotations

from datetime import timedelta

from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome
from oncely.ports.store import ClaimParams, RetentionAges, Store
from tests.contract.conftest import T0, later, make_job
from tests.contract.test_runs import _result

DAY = 86400


def finish(store: Store, job, at, outcome=AttemptOutcome.SUCCEEDED) -> str:  # type: ignore[no-untyped-def]
    run = store.job_trigger(job.owner, job.id, run_id=new_id(int(at.timestamp() * 1000)), now=at)
    [claimed] = [
        c
        for c in store.run_claim(ClaimParams("w1", "default", 10, at, timedelta(seconds=30)))
        if c.run_id == run.id
    ]
    assert store.run_complete([_result(claimed, outcome, at + timedelta(seconds=1))]) == [True]
    return run.id


def test_prune_keeps_what_retention_keeps_and_purges_deleted_jobs(store: Store) -> None:
    plain = store.job_create(make_job(name="plain"), now=T0)
    short = store.job_create(make_job(name="short", policy=Policy(retention=3600)), now=T0)
    fragile = store.job_create(make_job(name="fragile", policy=Policy(max_retries=0)), now=T0)
    gone = store.job_create(make_job(name="gone"), now=T0)

    old = [finish(store, plain, later(i)) for i in range(5)]  # 9 days old: go
    recent = finish(store, plain, later(5 * DAY))  # 4 days old: stays (7 days)
    short_run = finish(store, short, later(9 * DAY))  # 2 h old, job keeps 1 h: goes
    dead = finish(store, fragile, later(0), AttemptOutcome.FAILED)  # dead: stays
    gone_run = finish(store, gone, later(10))
    store.job_delete(gone.owner, gone.id, now=later(20))
    waiting = store.job_trigger(plain.owner, plain.id, run_id=new_id(0), now=later(30)).id
    now = later(9 * DAY + 2 * 3600)

    deleted_runs = deleted_attempts = batches = 0
    after = None
    while True:
        batch = store.runs_prune(RetentionAges(), now=now, after=after, limit=2)
        deleted_runs += batch.runs
        deleted_attempts += batch.attempts
        batches += 1
        if batch.next_after is None:
            break
        assert batch.runs <= 2
        after = batch.next_after
    assert deleted_runs == 7 and deleted_attempts == 7
    assert batches >= 4, "bounded batches of at most 2"
    for run_id in [*old, short_run, gone_run]:
        assert store.run_get(None, run_id) is None
        assert store.attempt_list(None, run_id) == []
    for run_id in (recent, dead, waiting):
        assert store.run_get(None, run_id) is not None
    assert store.run_counts(None) == {"dead": 1, "queued": 1}

    # A second pass finds nothing; a job kept forever keeps everything.
    assert store.runs_prune(RetentionAges(), now=now, after=None, limit=100).runs == 0
    forever = RetentionAges(succeeded=None, skipped=None, missed=None, cancelled=None)
    assert store.runs_prune(forever, now=later(99 * DAY), after=None, limit=100).runs == 0

    assert store.jobs_purge(before=now, limit=10) == 1
    assert store.job_versions_list(None, gone.id) == []
    assert store.jobs_purge(before=now, limit=10) == 0
    assert store.job_get(None, plain.id) is not None

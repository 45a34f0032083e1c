"""Contract: backfills create a job's past fires as runs, each exactly once, due at the given
times, under the job's overlap policy; they are listed and cancelled."""

from __future__ import annotations

from datetime import datetime, timedelta

from oncely.domain.backfill import Backfill, due_times
from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.runs import RunState
from oncely.ports.store import ClaimParams, RunQuery, Store
from tests.contract.conftest import T0, later, make_job

TTL = timedelta(seconds=30)
PAST = [T0 - timedelta(hours=h) for h in (5, 4, 3, 2, 1)]  # oldest first


def backfill(store: Store, job_id: str, fires: list[datetime], rate: float = 2.0) -> Backfill:
    record = Backfill(
        id=new_id(int(T0.timestamp() * 1000)),
        owner="alice",
        job_id=job_id,
        start=fires[0],
        end=fires[-1],
        rate=rate,
        fires=len(fires),
        created=0,
        state="active",
        created_at=T0,
        created_by="root",
    )
    runs = list(zip(fires, due_times(fires, now=T0, rate=rate), strict=True))
    return store.backfill_create("alice", record, runs, now=T0, actor="root")


def runs_of(store: Store, job_id: str) -> list:  # type: ignore[type-arg]
    return sorted(
        store.run_search(None, RunQuery(job_id=job_id, limit=1000)), key=lambda r: r.scheduled_for
    )


def test_each_fire_once_oldest_first_spaced_by_the_rate(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    made = backfill(store, job.id, PAST, rate=2.0)
    assert (made.fires, made.created, made.state) == (5, 5, "active")
    runs = runs_of(store, job.id)
    assert [r.scheduled_for for r in runs] == PAST
    assert [r.due_at for r in runs] == [T0 + timedelta(seconds=0.5 * i) for i in range(5)]
    assert {r.state for r in runs} == {RunState.PENDING}

    # The same window again, and a wider one: only the fires without a run are created.
    again = backfill(store, job.id, PAST, rate=2.0)
    assert (again.fires, again.created) == (5, 0)
    wider = backfill(store, job.id, [T0 - timedelta(hours=6), *PAST])
    assert (wider.fires, wider.created) == (6, 1)
    assert len(runs_of(store, job.id)) == 6
    listed = store.backfill_list("alice", job.id)
    assert {b.id: b.created for b in listed} == {made.id: 5, again.id: 0, wider.id: 1}


def test_backfilled_runs_are_claimed_when_due_under_the_overlap_policy(store: Store) -> None:
    job = store.job_create(make_job(policy=Policy(overlap="forbid")), now=T0)
    backfill(store, job.id, PAST[:2], rate=1.0)  # due at T0 and T0+1s
    claim = ClaimParams("w1", "default", 10, T0, TTL)
    first = store.run_claim(claim)
    assert [c.scheduled_for for c in first] == [PAST[0]]  # the second is not due yet
    # Due while the first still runs: overlap "forbid" skips it.
    assert store.run_claim(ClaimParams("w1", "default", 10, later(2), TTL)) == []
    states = [r.state for r in runs_of(store, job.id)]
    assert states == [RunState.RUNNING, RunState.SKIPPED]


def test_cancel_cancels_the_runs_not_yet_started(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    made = backfill(store, job.id, PAST, rate=1.0)
    started = store.run_claim(ClaimParams("w1", "default", 10, T0, TTL))
    assert len(started) == 1
    cancelled = store.backfill_cancel("alice", made.id, now=later(0.5), actor="root")
    assert cancelled is not None
    assert (cancelled.state, cancelled.cancelled) == ("cancelled", 4)
    states = [r.state for r in runs_of(store, job.id)]
    assert states == [RunState.RUNNING] + [RunState.CANCELLED] * 4
    assert store.backfill_get("alice", made.id) == cancelled
    assert [e.action for e in store.audit_list(None, target_kind="backfill")] == [
        "backfill.cancel",
        "job.backfill",
    ]


def test_other_owners_see_nothing(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    made = backfill(store, job.id, PAST)
    assert store.backfill_get("bob", made.id) is None
    assert store.backfill_list("bob", job.id) == []
    assert store.backfill_cancel("bob", made.id, now=later(1)) is None
    assert store.backfill_get(None, made.id) == made
    assert store.backfill_get("alice", "not-an-id") is None

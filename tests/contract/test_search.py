"""Contract: manual runs have their own key space; job and run searches page and filter
along their indexes and never cross owners."""

from __future__ import annotations

from datetime import timedelta

from oncely.domain.actions import HttpAction, PythonAction
from oncely.domain.firing import plan_fires
from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.runs import RunState
from oncely.ports.store import ClaimParams, JobQuery, RunQuery, Store
from tests.contract.conftest import T0, later, make_job

TTL = timedelta(seconds=30)


def test_a_manual_trigger_at_a_fire_instant_does_not_swallow_the_fire(store: Store) -> None:
    job = make_job()  # every minute: first fire at T0 + 60 s
    store.job_create(job, now=T0)
    fire_at = job.next_fire_at
    assert fire_at is not None
    manual = store.job_trigger(job.owner, job.id, run_id=new_id(0), now=fire_at)
    again = store.job_trigger(job.owner, job.id, run_id=new_id(1), now=fire_at)
    assert manual.scheduled_for == again.scheduled_for == fire_at
    [lease] = store.lease_acquire([f"shard:{job.shard}"], "s", now=fire_at, ttl=TTL)
    plan = plan_fires(job, fire_at, fire_at)
    assert plan is not None and [r.scheduled_for for r in plan.runs] == [fire_at]
    result = store.fires_commit([lease], [(job.shard, plan)], now=fire_at)
    assert result.runs_created == 1
    runs = store.run_search(None, RunQuery(job_id=job.id))
    assert sorted(r.manual for r in runs) == [False, True, True]
    # The fire's own key still holds: committing the same fire again creates nothing.
    job2 = store.job_get(None, job.id)
    assert job2 is not None
    replay = plan_fires(job, fire_at, fire_at)
    assert replay is not None
    assert store.fires_commit([lease], [(job.shard, replay)], now=fire_at).runs_created == 0


def test_job_search_pages_by_name_and_id_and_stays_in_the_owner(store: Store) -> None:
    for i in range(7):
        store.job_create(make_job(name=f"job {i:02d}"), now=T0)
    store.job_create(make_job(owner="bob", name="job 03b"), now=T0)
    seen: list[str] = []
    after = None
    while True:
        page = store.job_search("alice", JobQuery(limit=3, after=after))
        seen += [j.name for j in page]
        if len(page) < 3:
            break
        after = (page[-1].name, page[-1].id)
    assert seen == [f"job {i:02d}" for i in range(7)]
    everyone = store.job_search(None, JobQuery(limit=100))
    assert [j.name for j in everyone][3:5] == ["job 03", "job 03b"]
    assert [j.name for j in store.job_search("bob", JobQuery())] == ["job 03b"]
    assert store.job_search("carol", JobQuery()) == []


def test_job_search_filters(store: Store) -> None:
    a = make_job(name="Nightly Backup", policy=Policy(queue="heavy"))
    b = make_job(name="hourly ping", action=HttpAction(url="https://example.com/x"))
    c = make_job(name="backup check", paused=True, action=PythonAction(task="check"))
    for job in (a, b, c):
        store.job_create(job, now=T0)

    def names(**kw: object) -> list[str]:
        return [j.name for j in store.job_search("alice", JobQuery(**kw))]  # type: ignore[arg-type]

    assert names(name_contains="BACKUP") == ["Nightly Backup", "backup check"]
    assert names(paused=True) == ["backup check"]
    assert names(paused=False) == ["Nightly Backup", "hourly ping"]
    assert names(queue="heavy") == ["Nightly Backup"]
    assert names(action_kind="http") == ["hourly ping"]
    assert names(action_kind="python", name_contains="night") == ["Nightly Backup"]
    # Last outcome: the newest finished run's state.
    run = store.job_trigger("alice", b.id, run_id=new_id(0), now=T0)
    assert names(last_outcome=RunState.CANCELLED) == []
    store.run_cancel("alice", run.id, now=later(1))
    assert names(last_outcome=RunState.CANCELLED) == ["hourly ping"]
    store.job_trigger("alice", b.id, run_id=new_id(1), now=later(2))  # waiting, not finished
    assert names(last_outcome=RunState.CANCELLED) == ["hourly ping"]
    assert names(last_outcome=RunState.SUCCEEDED) == []


def test_run_search_filters_pages_and_scopes(store: Store) -> None:
    a = make_job(name="a")
    b = make_job(name="b")
    other = make_job(owner="bob", name="a")
    for job in (a, b, other):
        store.job_create(job, now=T0)
    made = []
    for i in range(5):
        made.append(store.job_trigger("alice", a.id, run_id=new_id(i), now=later(i)))
    store.job_trigger("alice", b.id, run_id=new_id(10), now=later(10))
    store.job_trigger("bob", other.id, run_id=new_id(20), now=later(20))
    store.run_cancel("alice", made[1].id, now=later(30))

    def ids(owner: str | None, **kw: object) -> list[str]:
        return [r.id for r in store.run_search(owner, RunQuery(**kw))]  # type: ignore[arg-type]

    assert len(ids("alice")) == 6 and len(ids(None)) == 7 and len(ids("bob")) == 1
    assert ids("alice", job_id=a.id) == [r.id for r in reversed(made)]
    assert ids("bob", job_id=a.id) == []  # another owner's job: nothing, not an error
    assert ids("alice", states=[RunState.CANCELLED]) == [made[1].id]
    assert ids("alice", job_id=a.id, since=later(1), until=later(3)) == [made[2].id, made[1].id]
    pages: list[str] = []
    before = None
    while True:
        page = store.run_search("alice", RunQuery(limit=4, before=before))
        pages += [r.id for r in page]
        if len(page) < 4:
            break
        before = (page[-1].scheduled_for, page[-1].id)
    assert pages == ids("alice") and len(pages) == 6


def test_a_manual_run_may_carry_its_own_payload(store: Store) -> None:
    import json

    from oncely.ports.store import ClaimParams, PayloadOverride

    job = make_job(payload={"from": "job"})
    store.job_create(job, now=T0)
    plain = store.job_trigger(job.owner, job.id, run_id=new_id(0), now=T0)
    own = store.job_trigger(
        job.owner,
        job.id,
        run_id=new_id(1),
        now=T0,
        payload=PayloadOverride({"from": "trigger"}, json.dumps({"from": "trigger"})),
    )
    null = store.job_trigger(
        job.owner, job.id, run_id=new_id(2), now=T0, payload=PayloadOverride(None, "null")
    )
    claimed = store.run_claim(ClaimParams("w", "default", 10, later(1), TTL))
    payloads = {c.run_id: c.payload for c in claimed}
    assert payloads == {plain.id: {"from": "job"}, own.id: {"from": "trigger"}, null.id: None}
    stored = store.job_get(job.owner, job.id)
    assert stored is not None and stored.payload == {"from": "job"}


def test_job_count_matches_the_search_filters_within_the_owner_up_to_a_cap(store: Store) -> None:
    jobs = [
        make_job(name="Nightly Backup", policy=Policy(queue="heavy")),
        make_job(name="hourly ping", action=HttpAction(url="https://example.com/x")),
        make_job(name="backup check", paused=True, action=PythonAction(task="check")),
        make_job(name="backup of bob", owner="bob"),
    ]
    for job in jobs:
        store.job_create(job, now=T0)

    def count(owner: str | None = "alice", cap: int = 10_000, **kw: object) -> int:
        return store.job_count(owner, JobQuery(**kw), cap=cap)  # type: ignore[arg-type]

    assert count() == 3
    assert count(None) == 4
    assert count(name_contains="BACKUP") == 2
    assert count(None, name_contains="backup") == 3
    assert count(paused=True) == 1
    assert count(queue="heavy") == 1
    assert count(action_kind="http") == 1
    assert count(last_outcome=RunState.SUCCEEDED) == 0
    # Paging fields are ignored; the cap bounds the count.
    assert count(limit=1, after=("a", "0")) == 3
    assert count(cap=2) == 2
    store.job_delete("alice", jobs[0].id, now=later(1))
    assert count() == 2


def test_run_search_by_worker_is_a_prefix_of_the_latest_attempts_worker(store: Store) -> None:
    job = make_job(name="w", policy=Policy(queue="w"))
    store.job_create(job, now=T0)
    runs = [store.job_trigger("alice", job.id, run_id=new_id(i), now=later(i)) for i in range(3)]
    for worker in ("worker:h1:10:aa", "worker:h2:20:bb"):
        claimed = store.run_claim(ClaimParams(worker, "w", 1, later(5), TTL))
        assert len(claimed) == 1

    def ids(owner: str | None, worker: str) -> list[str]:
        return [r.id for r in store.run_search(owner, RunQuery(worker=worker))]

    first, second = runs[0].id, runs[1].id  # claimed in due order
    assert ids("alice", "worker:h1:10:aa") == [first]
    assert ids("alice", "worker:h2") == [second]
    assert ids(None, "worker:h") == [second, first]  # newest first; the waiting run has none
    assert ids("alice", "h1") == []  # a prefix, not "contains"
    assert ids("bob", "worker:h") == []  # never another owner's runs

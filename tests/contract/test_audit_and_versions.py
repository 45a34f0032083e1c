"""Contract: the audit log, job versions and job_update, written with the change they record."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from oncely.domain.actions import HttpAction
from oncely.domain.errors import Conflict
from oncely.domain.firing import plan_fires
from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, RunState, decide_after_attempt
from oncely.domain.schedule import CronSchedule, initial_fire
from oncely.ports.store import AttemptResult, ClaimParams, Store
from tests.contract.conftest import T0, later, make_job


def _actions(store: Store, owner: str | None = None, **kw: object) -> list[str]:
    return [e.action for e in store.audit_list(owner, **kw)]  # type: ignore[arg-type]


def test_every_job_and_run_change_is_audited_with_its_actor(store: Store) -> None:
    job = store.job_create(make_job(name="report"), now=T0, actor="alice")
    store.job_create(make_job(name="report"), replace=True, now=later(1), actor="alice")
    store.job_set_paused(
        "alice", job.id, paused=True, next_fire_at=None, now=later(2), actor="alice"
    )
    store.job_set_paused(
        None, job.id, paused=False, next_fire_at=later(60), now=later(3), actor="root"
    )
    run = store.job_trigger("alice", job.id, run_id=new_id(0), now=later(4), actor="alice")
    store.run_cancel("alice", run.id, now=later(5), actor="alice")
    store.job_delete("alice", job.id, now=later(6), actor="alice")

    entries = store.audit_list("alice")
    assert [e.action for e in entries] == [
        "job.delete",
        "run.cancel",
        "job.trigger",
        "job.resume",
        "job.pause",
        "job.replace",
        "job.create",
    ]
    assert [e.at for e in entries] == [later(s) for s in (6, 5, 4, 3, 2, 1, 0)]
    assert {e.owner for e in entries} == {"alice"}
    assert entries[3].actor == "root"
    assert entries[6].details == {"name": "report", "version": 1}
    assert entries[5].details == {"name": "report", "version": 2}
    assert entries[4].target_kind == "job" and entries[4].target_id == job.id
    assert entries[2].details["run_id"] == run.id
    assert entries[1].target_kind == "run" and entries[1].target_id == run.id
    assert entries[1].details["job_id"] == job.id


def test_no_actor_no_entry(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    store.job_trigger("alice", job.id, run_id=new_id(0), now=T0)
    store.job_delete("alice", job.id, now=T0)
    assert store.audit_list(None) == []


def test_requeue_and_bulk_creation_are_audited(store: Store) -> None:
    jobs = [make_job(name=f"bulk-{i}") for i in range(3)]
    store.jobs_create(jobs, now=T0, actor="importer")
    entries = store.audit_list(None)
    assert {(e.action, e.actor, e.owner) for e in entries} == {("job.create", "importer", "alice")}
    assert sorted(e.target_id or "" for e in entries) == sorted(j.id for j in jobs)

    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    run = store.job_trigger("alice", job.id, run_id=new_id(0), now=T0)
    [claimed] = store.run_claim(ClaimParams("w1", "default", 1, T0, timedelta(seconds=30)))
    decision = decide_after_attempt(AttemptOutcome.FAILED, 0, claimed.policy, later(1))
    store.run_complete(
        [
            AttemptResult(
                run_id=run.id,
                token=claimed.token,
                attempt=claimed.attempt,
                worker_id="w1",
                outcome=AttemptOutcome.FAILED,
                decision=decision,
                started_at=claimed.started_at,
                finished_at=later(1),
            )
        ]
    )
    store.run_requeue(None, run.id, now=later(2), actor="root")
    [entry] = store.audit_list("alice", target_kind="run", target_id=run.id)
    assert (entry.action, entry.actor, entry.owner) == ("run.requeue", "root", "alice")


def test_a_refused_change_leaves_no_entry(store: Store) -> None:
    job = store.job_create(make_job(name="x"), now=T0, actor="alice")
    with pytest.raises(Conflict):
        store.job_create(make_job(name="x"), now=T0, actor="alice")
    run = store.job_trigger("alice", job.id, run_id=new_id(0), now=T0)
    store.run_cancel("alice", run.id, now=later(1))
    with pytest.raises(Conflict):
        store.run_cancel("alice", run.id, now=later(2), actor="alice")
    assert store.job_delete("mallory", job.id, now=later(3), actor="mallory") is False
    assert _actions(store, None) == ["job.create"]


def test_audit_is_confined_by_owner_and_filtered_by_target_and_time(store: Store) -> None:
    a = store.job_create(make_job(owner="alice", name="a"), now=T0, actor="alice")
    b = store.job_create(make_job(owner="bob", name="b"), now=later(1), actor="bob")
    store.job_trigger("alice", a.id, run_id=new_id(0), now=later(2), actor="alice")
    store.audit_record("root", "user.create", target_kind="user", target_id="u1", now=later(3))

    assert _actions(store, "alice") == ["job.trigger", "job.create"]
    assert _actions(store, "bob") == ["job.create"]
    assert _actions(store, "mallory") == []
    # Admins see everything, server-wide entries (no owner) included.
    assert _actions(store, None) == ["user.create", "job.trigger", "job.create", "job.create"]
    # One target; another owner's target reads as empty.
    assert _actions(store, None, target_kind="job", target_id=b.id) == ["job.create"]
    assert _actions(store, "alice", target_kind="job", target_id=b.id) == []
    assert _actions(store, None, target_kind="user") == ["user.create"]
    assert _actions(store, "alice", target_kind="job") == ["job.trigger", "job.create"]
    # Time: since inclusive, until exclusive.
    assert _actions(store, None, since=later(1), until=later(3)) == ["job.trigger", "job.create"]
    assert [e.owner for e in store.audit_list(None, since=later(1), until=later(2))] == ["bob"]


def test_audit_pages_by_time_then_id(store: Store) -> None:
    store.job_create(make_job(), now=T0, actor="alice")
    for i in range(7):
        # Two entries share each instant: the id breaks the tie.
        store.audit_record(
            f"a{i}", "job.note", target_kind="job", owner="alice", now=later(1 + i // 2)
        )
    seen: list[int] = []
    before = None
    while True:
        page = store.audit_list("alice", limit=3, before=before)
        if not page:
            break
        seen.extend(e.id for e in page)
        before = (page[-1].at, page[-1].id)
    everything = store.audit_list("alice", limit=100)
    assert seen == [e.id for e in everything]
    assert len(seen) == 8
    keys = [(e.at, e.id) for e in everything]
    assert keys == sorted(keys, reverse=True)


def test_replace_keeps_the_previous_definition(store: Store) -> None:
    first = store.job_create(make_job(name="sync", payload="bare string"), now=T0)
    store.job_create(
        dataclasses.replace(
            make_job(name="sync", payload={"n": 1}),
            action=HttpAction(url="https://example.com/x"),
        ),
        replace=True,
        now=later(1),
        actor="alice",
    )
    [version] = store.job_versions_list("alice", first.id)
    assert version.version == 1
    assert (version.changed_at, version.changed_by) == (later(1), "alice")
    assert (version.name, version.schedule, version.action) == (
        first.name,
        first.schedule,
        first.action,
    )
    assert version.payload == "bare string"
    assert version.policy == first.policy and version.paused is False
    assert store.job_versions_list("bob", first.id) == []
    assert store.job_versions_list(None, "not-an-id") == []


def _update(job, **changes):  # type: ignore[no-untyped-def]
    new = dataclasses.replace(job, **changes)
    return dataclasses.replace(new, next_fire_at=initial_fire(new.schedule, later(10)))


def test_update_changes_the_definition_versions_it_and_cancels_pending(store: Store) -> None:
    job = store.job_create(make_job(name="u", payload={"a": 1}), now=T0)
    lease = store.lease_acquire([f"shard:{job.shard}"], "s1", now=T0, ttl=timedelta(seconds=10))
    plan = plan_fires(job, T0, later(180))
    assert plan is not None
    store.fires_commit(lease, [(job.shard, plan)], now=T0)

    new_schedule = CronSchedule(expr="*/5 * * * *", timezone="Europe/Paris")
    wanted = _update(job, schedule=new_schedule, policy=Policy(max_retries=9), name="u2")
    updated = store.job_update("alice", wanted, expected_version=1, now=later(10), actor="alice")
    assert updated is not None
    assert updated.version == 2
    assert (updated.name, updated.schedule, updated.policy) == ("u2", new_schedule, wanted.policy)
    assert updated.payload == {"a": 1}
    assert updated.next_fire_at == wanted.next_fire_at
    assert updated.created_at == job.created_at and updated.updated_at == later(10)
    assert store.job_get("alice", job.id) == updated
    assert store.job_get_by_name("alice", "u") is None
    assert {r.state for r in store.run_list("alice", job_id=job.id)} == {RunState.CANCELLED}

    [previous] = store.job_versions_list("alice", job.id)
    assert (previous.version, previous.name, previous.schedule) == (1, "u", job.schedule)
    [entry] = store.audit_list("alice", target_kind="job", target_id=job.id)
    assert entry.action == "job.update"
    assert entry.details["changed"] == ["name", "schedule", "policy"]
    assert entry.details["version"] == 2


def test_update_refuses_a_stale_version_a_taken_name_and_other_owners(store: Store) -> None:
    job = store.job_create(make_job(name="u"), now=T0)
    store.job_create(make_job(name="taken"), now=T0)
    store.job_set_paused("alice", job.id, paused=True, next_fire_at=None, now=later(1))
    with pytest.raises(Conflict, match="version"):
        store.job_update("alice", _update(job, payload=1), expected_version=1, now=later(2))
    with pytest.raises(Conflict, match="taken"):
        store.job_update("alice", _update(job, name="taken"), now=later(2), actor="alice")
    assert store.job_update("bob", _update(job, payload=1), now=later(2)) is None
    ghost = _update(job, payload=1, id=new_id(0))
    assert store.job_update(None, ghost, now=later(2)) is None
    stored = store.job_get("alice", job.id)
    assert stored is not None and stored.version == 2 and stored.name == "u"
    assert store.job_versions_list("alice", job.id) == []
    assert store.audit_list(None) == []


def test_update_with_the_same_definition_changes_nothing(store: Store) -> None:
    job = store.job_create(make_job(name="same"), now=T0)
    unchanged = store.job_update("alice", _update(job), expected_version=1, now=later(5))
    assert unchanged == job
    assert store.job_versions_list("alice", job.id) == []


def test_versions_page_newest_first_and_survive_deletion(store: Store) -> None:
    job = store.job_create(make_job(name="v"), now=T0)
    current = job
    for i in range(4):
        updated = store.job_update(
            "alice", _update(current, payload={"i": i}), now=later(i + 1), actor="alice"
        )
        assert updated is not None
        current = updated
    store.job_delete("alice", job.id, now=later(9))
    versions = store.job_versions_list("alice", job.id, limit=2)
    assert [v.version for v in versions] == [4, 3]
    rest = store.job_versions_list("alice", job.id, before_version=3)
    assert [v.version for v in rest] == [2, 1]
    assert [v.payload for v in rest] == [{"i": 0}, None]

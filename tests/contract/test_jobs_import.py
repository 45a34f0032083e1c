"""``Store.jobs_import``: creates and versioned updates in one transaction, all or none."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oncely.domain.errors import Conflict
from oncely.domain.schedule import CronSchedule
from oncely.ports.store import Store
from tests.contract.conftest import T0, later, make_job


def test_import_creates_and_updates_together(store: Store) -> None:
    old = make_job(name="nightly", schedule=CronSchedule(expr="0 2 * * *"))
    store.job_create(old, now=T0)
    changed = replace(old, schedule=CronSchedule(expr="0 3 * * *", timezone="Europe/Paris"))
    new = make_job(name="hourly", schedule=CronSchedule(expr="0 * * * *"))
    store.jobs_import([new], [(changed, old.version)], now=later(1), actor="root")

    got = store.job_get("alice", old.id)
    assert got is not None and got.schedule == changed.schedule and got.version == old.version + 1
    assert [v.version for v in store.job_versions_list("alice", old.id)] == [old.version]
    made = store.job_get("alice", new.id)
    assert made is not None
    assert replace(made, created_at=new.created_at, updated_at=new.updated_at) == new
    actions = sorted(e.action for e in store.audit_list(None, limit=10))
    assert actions == ["job.create", "job.update"]


def test_import_is_all_or_nothing(store: Store) -> None:
    kept = make_job(name="kept", schedule=CronSchedule(expr="0 2 * * *"))
    store.job_create(kept, now=T0)
    taken = make_job(name="taken")
    store.job_create(taken, now=T0)
    update = replace(kept, schedule=CronSchedule(expr="0 4 * * *"))

    # A create whose name is taken: the update before it rolls back too.
    with pytest.raises(Conflict, match="'taken'"):
        store.jobs_import(
            [make_job(name="fresh"), make_job(name="taken")],
            [(update, kept.version)],
            now=later(1),
        )
    # An update read at a stale version: the creates roll back too.
    with pytest.raises(Conflict, match="changed meanwhile"):
        store.jobs_import([make_job(name="fresh")], [(update, kept.version + 5)], now=later(2))
    # An update of a job deleted meanwhile.
    store.job_delete("alice", taken.id, now=later(3))
    with pytest.raises(Conflict, match="deleted meanwhile"):
        store.jobs_import([make_job(name="fresh")], [(taken, taken.version)], now=later(4))

    assert sorted(j.name for j in store.job_list("alice")) == ["kept"]
    assert store.job_get("alice", kept.id) == kept


def test_import_of_identical_definitions_changes_nothing(store: Store) -> None:
    job = make_job(name="same")
    store.job_create(job, now=T0)
    store.jobs_import([], [(job, job.version)], now=later(1), actor="root")
    assert store.job_get("alice", job.id) == job
    assert store.job_versions_list("alice", job.id) == []

"""The service layer on a real SQLite store: who may do what, isolation between owners,
mass assignment, unambiguous lookups, patches and bulk actions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import oncely
from oncely.config import Settings
from oncely.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from oncely.domain.principal import Principal, Role
from oncely.domain.runs import RunState
from oncely.ports.store import JobQuery, RunQuery
from oncely.service import Service
from oncely.wire import JobCreate, JobPatch

ADMIN = Principal("root", "ops", Role.ADMIN)
ALICE = Principal("alice", "alice", Role.USER)
BOB = Principal("bob", "bob", Role.USER)
VIEWER = Principal("vera", "alice", Role.VIEWER)


def make_app(tmp_path: Path, **settings: object) -> oncely.App:
    return oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'o.db'}", **settings))  # type: ignore[arg-type]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[oncely.App]:
    a = make_app(tmp_path, allow_shell=True, http_allow_private=False)
    yield a
    a.close()


@pytest.fixture
def svc(app: oncely.App) -> Service:
    return app.service


def spec(name: str, **kw: object) -> JobCreate:
    return JobCreate.model_validate({"name": name, "every": "1h", "task": "t", **kw})


def test_roles_decide_what_a_caller_may_do(svc: Service) -> None:
    with pytest.raises(PermissionDenied):
        svc.jobs.create(VIEWER, spec("v"))
    job = svc.jobs.create(ALICE, spec("a"))
    assert job.owner == "alice"
    assert svc.jobs.get(VIEWER, job.id).id == job.id  # same owner: a viewer reads
    for change in (
        lambda: svc.jobs.trigger(VIEWER, job.id),
        lambda: svc.jobs.set_paused(VIEWER, job.id, paused=True),
        lambda: svc.jobs.delete(VIEWER, job.id),
        lambda: svc.jobs.update(VIEWER, job.id, JobPatch(retries=1)),
    ):
        with pytest.raises(PermissionDenied):
            change()


def test_shell_and_sql_only_for_privileged_callers_and_only_when_enabled(
    svc: Service, tmp_path: Path
) -> None:
    with pytest.raises(PermissionDenied):
        svc.jobs.create(ALICE, spec("sh", task=None, shell=["true"]))
    with pytest.raises(PermissionDenied):
        svc.jobs.create(
            ALICE, spec("q", task=None, sql={"connection": "x", "statement": "select 1"})
        )
    assert svc.jobs.create(ADMIN, spec("sh", task=None, shell=["true"])).action.kind == "shell"
    off = make_app(tmp_path / "off")
    (tmp_path / "off").mkdir(exist_ok=True)
    with pytest.raises(InvalidInput, match="shell actions are disabled"):
        off.service.jobs.create(ADMIN, spec("sh", task=None, shell=["true"]))
    off.close()


def test_http_targets_are_checked_at_creation(svc: Service) -> None:
    for url in (
        "http://127.0.0.1:8080/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://10.1.2.3/x",
        "http://localhost/x",
    ):
        with pytest.raises(InvalidInput) as caught:
            svc.jobs.create(ALICE, spec("h", task=None, http=url))
        assert caught.value.field is not None and caught.value.field.startswith("http")
    assert svc.jobs.search(ALICE, JobQuery()) == []


def test_another_owner_s_jobs_and_runs_are_absent(svc: Service) -> None:
    job = svc.jobs.create(ALICE, spec("mine"))
    run = svc.jobs.trigger(ALICE, job.id)
    for act in (
        lambda: svc.jobs.get(BOB, job.id),
        lambda: svc.jobs.trigger(BOB, job.id),
        lambda: svc.jobs.set_paused(BOB, job.id, paused=True),
        lambda: svc.jobs.update(BOB, job.id, JobPatch(retries=0)),
        lambda: svc.jobs.delete(BOB, job.id),
        lambda: svc.jobs.by_name(BOB, "mine"),
        lambda: svc.runs.get(BOB, run.id),
        lambda: svc.runs.attempts(BOB, run.id),
        lambda: svc.runs.cancel(BOB, run.id),
        lambda: svc.runs.requeue(BOB, run.id),
    ):
        with pytest.raises(NotFound):
            act()
    assert svc.jobs.search(BOB, JobQuery()) == []
    assert svc.runs.search(BOB, RunQuery()) == []
    assert svc.runs.search(BOB, RunQuery(job_id=job.id)) == []
    assert svc.jobs.set_paused_where(BOB, JobQuery(), paused=True) == 0
    assert not svc.jobs.get(ALICE, job.id).paused
    # Admins see everyone.
    assert svc.jobs.get(ADMIN, job.id).owner == "alice"
    assert [r.id for r in svc.runs.search(ADMIN, RunQuery())] == [run.id]


def test_fields_a_caller_may_not_set_are_refused() -> None:
    for field, value in (
        ("owner", "bob"),
        ("version", 7),
        ("state", "running"),
        ("token", 1),
        ("id", "x"),
        ("next_fire_at", "2030-01-01T00:00:00Z"),
    ):
        with pytest.raises(Exception) as caught:
            JobCreate.model_validate({"name": "n", "every": "1h", "task": "t", field: value})
        assert field in str(caught.value)
    with pytest.raises(Exception, match="owner"):
        JobPatch.model_validate({"owner": "bob"})


def test_names_never_shadow_ids(app: oncely.App, svc: Service) -> None:
    first = svc.jobs.create(ALICE, spec("first"))
    with pytest.raises(InvalidInput, match="must not look like an id"):
        svc.jobs.create(ALICE, spec(first.id))
    with pytest.raises(InvalidInput, match="must not look like an id"):
        svc.jobs.create(ALICE, spec(first.id.replace("-", "")))
    assert svc.jobs.find(ALICE, first.id).name == "first"
    assert svc.jobs.find(ALICE, "first").id == first.id
    app.add_job("x", every="1h", task="t")
    assert app.get_job(app.get_job("x").id).name == "x"


def test_patch_changes_the_given_fields_and_keeps_the_rest(svc: Service) -> None:
    job = svc.jobs.create(ALICE, spec("p", retries=5, payload={"k": 1}, queue="heavy"))
    patched = svc.jobs.update(ALICE, job.id, JobPatch(cron="0 9 * * *", timezone="Europe/Paris"))
    assert patched.id == job.id and patched.version == job.version + 1
    assert patched.schedule.kind == "cron"  # type: ignore[union-attr]
    assert patched.policy.max_retries == 5 and patched.policy.queue == "heavy"
    assert patched.payload == {"k": 1}
    again = svc.jobs.update(ALICE, job.id, JobPatch(payload={"k": 2}, retries=1))
    assert again.payload == {"k": 2} and again.policy.max_retries == 1
    assert again.schedule == patched.schedule
    with pytest.raises(InvalidInput, match="hour"):
        svc.jobs.update(ALICE, job.id, JobPatch(cron="0 25 * * *"))
    with pytest.raises(PermissionDenied):
        svc.jobs.update(ALICE, job.id, JobPatch.model_validate({"shell": ["true"]}))
    assert svc.jobs.get(ALICE, job.id).version == again.version
    renamed = svc.jobs.update(ALICE, job.id, JobPatch(name="renamed"))
    assert renamed.id == job.id and svc.jobs.by_name(ALICE, "renamed").id == job.id
    versions = svc.deps.store().job_versions_list("alice", job.id)
    assert len(versions) >= 3


def test_bulk_pause_resume_and_requeue(svc: Service, app: oncely.App) -> None:
    for i in range(4):
        svc.jobs.create(ALICE, spec(f"nightly {i}"))
    svc.jobs.create(ALICE, spec("hourly"))
    svc.jobs.create(BOB, spec("nightly bob"))
    assert (
        svc.jobs.set_paused_where(
            ALICE, JobQuery(name_contains="nightly"), paused=True, reason="maintenance"
        )
        == 4
    )
    assert {j.name for j in svc.jobs.search(ALICE, JobQuery(paused=True))} == {
        f"nightly {i}" for i in range(4)
    }
    assert not svc.jobs.by_name(BOB, "nightly bob").paused
    assert svc.jobs.set_paused_where(ALICE, JobQuery(paused=True), paused=False) == 4
    # Requeue: only dead runs; the filter stays in the owner's scope.
    with pytest.raises(InvalidInput, match="dead"):
        svc.runs.requeue_where(ALICE, RunQuery(states=[RunState.QUEUED]))
    assert svc.runs.requeue_where(ALICE, RunQuery()) == 0


def test_one_time_shape_creates_an_at_job(svc: Service) -> None:
    from oncely.wire import OneTimeJobCreate

    job = svc.jobs.create_one_time(
        ALICE,
        OneTimeJobCreate(
            job_type="email_send",
            schedule_time="2030-01-01T09:00:00Z",  # type: ignore[arg-type]
            payload={"to": "a@example.com"},
            retries=3,
        ),
    )
    assert job.action.kind == "python" and job.name.startswith("email_send ")
    assert job.next_fire_at is not None and job.next_fire_at.isoformat().startswith("2030-01-01T09")
    with pytest.raises(Conflict):
        svc.jobs.create(ALICE, spec(job.name))

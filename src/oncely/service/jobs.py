"""Jobs, as a caller may see and change them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from oncely.domain.actions import (
    Action,
    EmailAction,
    HttpAction,
    PythonAction,
    ShellAction,
    SqlAction,
    action_from_dict,
    validate_action,
)
from oncely.domain.errors import InvalidInput, NotFound
from oncely.domain.ids import looks_like_id, new_id
from oncely.domain.jobs import SHARD_COUNT, Job, encode_payload, shard_of, validate_job_parts
from oncely.domain.policy import Policy
from oncely.domain.principal import Permission, Principal
from oncely.domain.runs import Run
from oncely.domain.schedule import (
    AtSchedule,
    CronSchedule,
    EverySchedule,
    initial_fire,
    make_schedule,
    next_fire,
    parse_interval,
)
from oncely.ports.store import AuditEntry, JobQuery, JobVersion, PayloadOverride
from oncely.service.deps import ServiceDeps, actor, require
from oncely.wire import (
    EmailSpec,
    HttpSpec,
    JobCreate,
    JobFields,
    JobPatch,
    OneTimeJobCreate,
    ShellSpec,
    SqlSpec,
    invalid_from,
)

log = logging.getLogger("oncely.service")

KEEP: Any = object()
"""``trigger(payload=KEEP)``: the run gets the job's own payload."""

BULK_LIMIT = 10_000
"""The most jobs or runs one bulk call changes (a filter matching more is refused)."""
_PAGE = 500

_SCHEDULE_FIELDS = ("cron", "at", "every")
_SCHEDULE_PARTS = (
    *_SCHEDULE_FIELDS,
    "timezone",
    "dst_gap",
    "dst_fold",
    "start",
    "end",
    "jitter",
    "anchor",
)
_ACTION_FIELDS = ("task", "http", "shell", "sql", "email")


def build_action(fields: JobFields | JobPatch) -> Action:
    given = [k for k in _ACTION_FIELDS if getattr(fields, k)]
    if len(given) != 1:
        raise InvalidInput("give exactly one of task, http, shell, sql or email", field="action")
    if fields.task is not None:
        return validate_action(PythonAction(task=fields.task))
    if fields.http is not None:
        http = fields.http if isinstance(fields.http, HttpSpec) else HttpSpec(url=fields.http)
        return action_from_dict({"kind": "http", **http.model_dump()})
    if fields.shell is not None:
        shell = fields.shell
        if not isinstance(shell, ShellSpec):
            shell = ShellSpec(argv=shell)
        return action_from_dict({"kind": "shell", **shell.model_dump()})
    if fields.email is not None:
        return action_from_dict({"kind": "email", **fields.email.model_dump()})
    assert fields.sql is not None
    return action_from_dict({"kind": "sql", **fields.sql.model_dump()})


def build_policy(fields: JobFields) -> Policy:
    return Policy(
        max_retries=fields.retries,
        base_delay=fields.base_delay,
        max_delay=fields.max_delay,
        timeout=fields.timeout,
        overlap=fields.overlap,
        misfire=fields.misfire,
        misfire_grace=fields.misfire_grace,
        queue=fields.queue,
        priority=fields.priority,
        deadline=deadline_seconds(fields.deadline),
        retention=fields.retention,
    )


def deadline_seconds(value: str | float | None) -> float | None:
    """``26h``, ``90m`` or seconds -> seconds (checked by ``Policy``)."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    try:
        return parse_interval(value).total_seconds()
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("every", "deadline"), field="deadline") from None


def build_job(
    fields: JobFields,
    *,
    name: str,
    owner: str,
    now: datetime,
    job_id: str | None = None,
    created_at: datetime | None = None,
    version: int = 1,
) -> Job:
    """A new job (or a new definition of job ``job_id``) from validated wire fields."""
    schedule = make_schedule(
        cron=fields.cron,
        at=fields.at,
        every=fields.every,
        timezone=fields.timezone,
        dst_gap=fields.dst_gap,
        dst_fold=fields.dst_fold,
        start=fields.start,
        end=fields.end,
        jitter=fields.jitter,
        anchor=fields.anchor,
        now=now,
    )
    action = build_action(fields)
    policy = build_policy(fields)
    validate_job_parts(owner, name, action, fields.payload, policy)
    job_id = job_id or new_id(int(now.timestamp() * 1000))
    return Job(
        id=job_id,
        owner=owner,
        name=name,
        schedule=schedule,
        action=action,
        payload=fields.payload,
        policy=policy,
        paused=fields.paused,
        next_fire_at=initial_fire(schedule, now),
        shard=shard_of(job_id),
        version=version,
        created_at=created_at or now,
        updated_at=now,
    )


def fields_of(job: Job) -> dict[str, Any]:
    """A stored job as ``JobFields`` input: what a PATCH starts from."""
    out: dict[str, Any] = {"payload": job.payload, "paused": job.paused}
    s = job.schedule
    if isinstance(s, AtSchedule):
        out["at"] = s.at
    else:
        out.update(start=s.start, end=s.end, jitter=s.jitter.total_seconds() or None)
        if isinstance(s, EverySchedule):
            out.update(every=s.interval.total_seconds(), anchor=s.anchor)
        else:
            assert isinstance(s, CronSchedule)
            out.update(cron=s.expr, timezone=s.timezone, dst_gap=s.dst_gap, dst_fold=s.dst_fold)
    a = job.action
    if isinstance(a, PythonAction):
        out["task"] = a.task
    elif isinstance(a, HttpAction):
        out["http"] = HttpSpec(
            url=a.url,
            method=a.method,
            headers=dict(a.headers),
            body=a.body,
            timeout=a.timeout,
            success_statuses=list(a.success_statuses),
        )
    elif isinstance(a, ShellAction):
        out["shell"] = ShellSpec(argv=list(a.argv), env=dict(a.env), cwd=a.cwd)
    elif isinstance(a, EmailAction):
        out["email"] = EmailSpec(to=list(a.to), subject=a.subject, body=a.body, cc=list(a.cc))
    else:
        out["sql"] = SqlSpec(
            connection=a.connection,
            statement=a.statement,
            params=dict(a.params) if a.params is not None else None,
        )
    p = job.policy
    out.update(
        retries=p.max_retries,
        base_delay=p.base_delay,
        max_delay=p.max_delay,
        timeout=p.timeout,
        overlap=p.overlap,
        misfire=p.misfire,
        misfire_grace=p.misfire_grace,
        queue=p.queue,
        priority=p.priority,
        deadline=p.deadline,
        retention=p.retention,
    )
    return out


def is_privileged(action: Action) -> bool:
    """Actions that run code on the server."""
    return isinstance(action, ShellAction | SqlAction)


class JobService:
    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    # -- helpers --------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.deps.clock().now()

    def _allow_action(self, who: Principal, action: Action) -> None:
        """Shell and SQL only for privileged callers, and only as the server allows; every
        action checked against the server's rules (an HTTP host is resolved and checked)."""
        if is_privileged(action):
            require(who, Permission.PRIVILEGED_ACTIONS)
        self.deps.check_action(action, self.deps.actions)

    # -- reading --------------------------------------------------------------------------

    def get(self, who: Principal, job_id: str) -> Job:
        """The job with this id, in the caller's scope."""
        require(who, Permission.READ)
        job = self.deps.store().job_get(who.scope, job_id) if looks_like_id(job_id) else None
        if job is None:
            raise NotFound(f"no job with id {job_id!r}")
        return job

    def by_name(self, who: Principal, name: str, *, owner: str | None = None) -> Job:
        """The caller's job of this name (an admin may name another owner)."""
        require(who, Permission.READ)
        owner = owner if owner is not None and who.is_admin else who.owner
        job = self.deps.store().job_get_by_name(owner, name)
        if job is None:
            raise NotFound(f"no job named {name!r}")
        return job

    def find(self, who: Principal, ref: str) -> Job:
        """By id if ``ref`` is shaped like one, else by name (names never look like ids)."""
        return self.get(who, ref) if looks_like_id(ref) else self.by_name(who, ref)

    def search(self, who: Principal, query: JobQuery, *, owner: str | None = None) -> list[Job]:
        """A page of the caller's jobs. An admin sees every owner's unless it names one."""
        require(who, Permission.READ)
        scope = who.scope if not who.is_admin else owner
        return self.deps.store().job_search(scope, query)

    def count(self, who: Principal, query: JobQuery, *, cap: int = 10_000) -> int:
        """How many of the caller's jobs the filters match, up to ``cap`` (an admin: every
        owner's)."""
        require(who, Permission.READ)
        return self.deps.store().job_count(who.scope, query, cap=cap)

    def versions(self, who: Principal, job_id: str, *, limit: int = 20) -> list[JobVersion]:
        """The job's previous definitions, newest first."""
        job = self.get(who, job_id)
        return self.deps.store().job_versions_list(who.scope, job.id, limit=limit)

    def audit(self, who: Principal, job_id: str, *, limit: int = 20) -> list[AuditEntry]:
        """The audit entries about this job, newest first."""
        job = self.get(who, job_id)
        return self.deps.store().audit_list(
            who.scope, target_kind="job", target_id=job.id, limit=limit
        )

    def due_soon(self, who: Principal, *, within: timedelta, limit: int = 10) -> list[Job]:
        """The caller's active jobs whose next fire is within ``within`` from now, soonest
        first (along the scheduler's own index on ``next_fire_at``). For a non-admin the
        earliest few hundred of every owner are looked at, then confined to its own."""
        require(who, Permission.READ)
        horizon = self._now() + within
        looked = limit if who.scope is None else max(limit * 20, 200)
        jobs = self.deps.store().jobs_due(list(range(SHARD_COUNT)), horizon, looked)
        return [j for j in jobs if who.scope is None or j.owner == who.scope][:limit]

    # -- creating -------------------------------------------------------------------------

    def create(self, who: Principal, spec: JobCreate, *, replace: bool = False) -> Job:
        require(who, Permission.WRITE)
        now = self._now()
        job = build_job(spec, name=spec.name, owner=who.owner, now=now)
        self._allow_action(who, job.action)
        if replace:
            existing = self.deps.store().job_get_by_name(who.owner, spec.name)
            if existing is not None and is_privileged(existing.action):
                require(who, Permission.PRIVILEGED_ACTIONS)
        stored = self.deps.store().job_create(job, replace=replace, now=now, actor=actor(who))
        self.deps.wake_scheduler()
        return stored

    def create_one_time(self, who: Principal, spec: OneTimeJobCreate) -> Job:
        """One run of registered task ``job_type`` at ``schedule_time``."""
        name = spec.name or f"{spec.job_type} {new_id(int(self._now().timestamp() * 1000))[-12:]}"
        full = _validated(
            JobCreate,
            {
                "name": name,
                "at": spec.schedule_time,
                "task": spec.job_type,
                "payload": spec.payload,
                "retries": spec.retries,
                "queue": spec.queue,
            },
        )
        return self.create(who, full)

    def create_many(self, who: Principal, specs: Iterable[Mapping[str, Any] | JobCreate]) -> int:
        """Many jobs in one transaction, all or none; a bad spec names its index."""
        require(who, Permission.WRITE)
        now = self._now()
        jobs: list[Job] = []
        for i, raw in enumerate(specs):
            try:
                spec = raw if isinstance(raw, JobCreate) else _validated(JobCreate, raw)
                job = build_job(spec, name=spec.name, owner=who.owner, now=now)
            except InvalidInput as exc:
                shown = raw.name if isinstance(raw, JobCreate) else raw.get("name")
                raise InvalidInput(f"job {i} ({shown!r}): {exc}", field=exc.field) from None
            self._allow_action(who, job.action)
            jobs.append(job)
        stored = self.deps.store().jobs_create(jobs, now=now, actor=actor(who))
        self.deps.wake_scheduler()
        return stored

    # -- changing -------------------------------------------------------------------------

    def update(self, who: Principal, job_id: str, patch: JobPatch) -> Job:
        """Change the given fields; the rest keep their values."""
        require(who, Permission.WRITE)
        current = self.get(who, job_id)
        if is_privileged(current.action):
            require(who, Permission.PRIVILEGED_ACTIONS)
        given = patch.model_fields_set
        merged = fields_of(current)
        if given & set(_SCHEDULE_FIELDS):
            # A new kind of schedule starts from its defaults, not from the old one's parts.
            for key in _SCHEDULE_PARTS:
                merged.pop(key, None)
        if given & set(_ACTION_FIELDS):
            for key in _ACTION_FIELDS:
                merged.pop(key, None)
        merged.update({k: getattr(patch, k) for k in given if k != "name"})
        for key, value in list(merged.items()):
            if value is None and key in given and key in JobFields.model_fields:
                default = JobFields.model_fields[key].default
                merged[key] = default
        fields = _validated(JobFields, merged)
        now = self._now()
        name = patch.name if patch.name is not None else current.name
        job = build_job(
            fields,
            name=name,
            owner=current.owner,
            now=now,
            job_id=current.id,
            created_at=current.created_at,
            version=current.version,
        )
        self._allow_action(who, job.action)
        schedule_changed = job.schedule != current.schedule
        job = _with(
            job, next_fire_at=job.next_fire_at if schedule_changed else current.next_fire_at
        )
        stored = self.deps.store().job_update(who.scope, job, now=now, actor=actor(who))
        if stored is None:
            raise NotFound(f"no job with id {job_id!r}")
        self.deps.wake_scheduler()
        return stored

    def set_paused(
        self, who: Principal, job_id: str, *, paused: bool, reason: str | None = None
    ) -> Job:
        require(who, Permission.WRITE)
        job = self.get(who, job_id)
        now = self._now()
        if paused:
            next_at = job.next_fire_at
        elif isinstance(job.schedule, AtSchedule):
            # A one-shot job keeps its instant (it fires now if that passed while paused).
            next_at = job.next_fire_at
        else:
            # The paused stretch is not backfilled: the next fire is the next one from now.
            next_at = next_fire(job.schedule, now)
        updated = self.deps.store().job_set_paused(
            who.scope, job.id, paused=paused, next_fire_at=next_at, now=now, actor=actor(who)
        )
        if updated is None:
            raise NotFound(f"no job with id {job_id!r}")
        if reason:
            log.info(
                "%s %s job %s: %s", who.subject, "paused" if paused else "resumed", job.id, reason
            )
        if not paused:
            self.deps.wake_scheduler()
        return updated

    def set_paused_where(
        self, who: Principal, query: JobQuery, *, paused: bool, reason: str | None = None
    ) -> int:
        """Pause or resume every job of the caller's scope the filter matches."""
        require(who, Permission.WRITE)
        matched = self._all_matching(who, query)
        changed = 0
        for job in matched:
            if job.paused == paused:
                continue
            try:
                self.set_paused(who, job.id, paused=paused, reason=reason)
            except NotFound:
                continue  # deleted meanwhile
            changed += 1
        self.deps.store().audit_record(
            who.subject,
            "job.pause_bulk" if paused else "job.resume_bulk",
            target_kind="job",
            owner=who.scope,
            details={"filter": _query_details(query), "reason": reason, "count": changed},
            now=self._now(),
        )
        return changed

    def _all_matching(self, who: Principal, query: JobQuery) -> list[Job]:
        found: list[Job] = []
        after = None
        while True:
            page = self.deps.store().job_search(
                who.scope, _replace_query(query, limit=_PAGE, after=after)
            )
            found += page
            if len(found) > BULK_LIMIT:
                raise InvalidInput(
                    f"the filter matches more than {BULK_LIMIT} jobs; narrow it", field="filter"
                )
            if len(page) < _PAGE:
                return found
            after = (page[-1].name, page[-1].id)

    def delete(self, who: Principal, job_id: str) -> None:
        require(who, Permission.WRITE)
        job = self.get(who, job_id)
        if is_privileged(job.action):
            require(who, Permission.PRIVILEGED_ACTIONS)
        if not self.deps.store().job_delete(who.scope, job.id, now=self._now(), actor=actor(who)):
            raise NotFound(f"no job with id {job_id!r}")

    def trigger(self, who: Principal, job_id: str, *, payload: Any = KEEP) -> Run:
        """Run the job now, once, outside its schedule (its own run: never a fire's). With
        ``payload``, this run gets it instead of the job's (the job is not changed)."""
        override = None
        if payload is not KEEP:
            text = encode_payload(payload)
            override = PayloadOverride(payload, "null" if text is None else text)
        require(who, Permission.WRITE)
        job = self.get(who, job_id)
        if is_privileged(job.action):
            require(who, Permission.PRIVILEGED_ACTIONS)
        now = self._now()
        run = self.deps.store().job_trigger(
            who.scope,
            job.id,
            run_id=new_id(int(now.timestamp() * 1000)),
            now=now,
            actor=actor(who),
            payload=override,
        )
        self.deps.wake_worker(run.queue)
        return run


def _validated(model: Any, data: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise invalid_from(exc) from None


def _query_details(query: JobQuery) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, bool | int) else v)
        for k, v in vars(query).items()
        if k not in ("limit", "after") and v is not None
    }


def _with(job: Job, **changes: Any) -> Job:
    from dataclasses import replace

    return replace(job, **changes)


def _replace_query(query: JobQuery, **changes: Any) -> JobQuery:
    from dataclasses import replace

    return replace(query, **changes)


__all__ = ["JobService", "build_job", "fields_of"]

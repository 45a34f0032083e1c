"""The REST resources under ``/v1``: jobs, runs, schedule previews.

Each route is a thin caller of the service: it turns the request into wire models, passes the
caller's ``Principal`` (from ``oncely.api.auth``, which also declares the route's permission),
and turns the answer into wire models. Nothing here decides who may do what.

Handlers are plain ``def``: FastAPI runs them on its thread pool, where blocking store calls
belong. Lists page with opaque cursors (keyset: the last item's sort key), never offsets.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from oncely.api.auth import AdminPrincipal, Reader, Writer
from oncely.domain.errors import InvalidInput
from oncely.domain.jobs import SHARD_COUNT
from oncely.domain.principal import Principal
from oncely.domain.runs import RunState
from oncely.domain.schedule import make_schedule
from oncely.ports.store import JobQuery, RunQuery
from oncely.service import Service
from oncely.service.cluster import ClusterStatus
from oncely.wire import (
    ActionKind,
    BulkFilter,
    BulkPause,
    BulkRequeue,
    BulkResult,
    ClusterOut,
    ErrorOut,
    JobBody,
    JobOut,
    JobPage,
    JobPatch,
    MemberOut,
    OneTimeJobCreate,
    PreviewFire,
    PreviewOut,
    PreviewRequest,
    QueueOut,
    RunDetail,
    RunFilter,
    RunOut,
    RunPage,
    RunStateName,
    TakeoverOut,
    TriggerRequest,
    job_out,
    run_detail,
    run_out,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such job or run in the caller's scope"},
    409: {"model": ErrorOut, "description": "Conflicts with the stored state"},
    413: {"model": ErrorOut, "description": "Request body too large"},
    422: {"model": ErrorOut, "description": "Invalid input; ``error.field`` names the field"},
}
MAX_PAGE = 500


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=1000)] | None = None


def _encode(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode(cursor: str, size: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        parts = None
    if (
        not isinstance(parts, list)
        or len(parts) != size
        or not all(isinstance(p, str) for p in parts)
    ):
        raise InvalidInput("cursor is not one this server gave out", field="cursor")
    return parts


def _run_before(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    at, run_id = _decode(cursor, 2)
    try:
        return datetime.fromisoformat(at), run_id
    except ValueError:
        raise InvalidInput("cursor is not one this server gave out", field="cursor") from None


def _run_page(runs: list[Any], limit: int, now: datetime) -> RunPage:
    cursor = None
    if len(runs) == limit:
        last = runs[-1]
        cursor = _encode(last.scheduled_for.isoformat(), last.id)
    return RunPage(items=[run_out(r, now) for r in runs], next_cursor=cursor)


def _states(states: list[RunStateName] | None) -> list[RunState] | None:
    return None if not states else [RunState(s) for s in states]


def _job_query(f: BulkFilter, **extra: Any) -> JobQuery:
    return JobQuery(
        name_contains=f.name_contains,
        paused=f.paused,
        queue=f.queue,
        action_kind=f.action_kind,
        last_outcome=None if f.last_outcome is None else RunState(f.last_outcome),
        **extra,
    )


def v1_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ERRORS)
    jobs, runs = service.jobs, service.runs

    def now() -> datetime:
        return service.deps.clock().now()

    # -- jobs -----------------------------------------------------------------------------

    @router.post(
        "/jobs",
        status_code=201,
        operation_id="create_job",
        tags=["jobs"],
        response_model=JobOut,
    )
    def create_job(
        who: Writer,
        body: Annotated[JobBody, Body()],
        replace: Annotated[bool, Query(description="Redefine the job of that name")] = False,
    ) -> JobOut:
        """Create a job: the full shape, or ``{"job_type", "schedule_time", "payload",
        "retries"}`` for one run of registered task ``job_type``."""
        if isinstance(body, OneTimeJobCreate):
            if replace:
                raise InvalidInput("replace applies to the full job shape", field="replace")
            return job_out(jobs.create_one_time(who, body))
        return job_out(jobs.create(who, body, replace=replace))

    @router.get("/jobs", operation_id="list_jobs", tags=["jobs"], response_model=JobPage)
    def list_jobs(
        who: Reader,
        name_contains: Annotated[str | None, Query(max_length=200)] = None,
        paused: bool | None = None,
        queue: Annotated[str | None, Query(max_length=64)] = None,
        action_kind: ActionKind | None = None,
        last_outcome: RunStateName | None = None,
        owner: Annotated[
            str | None, Query(max_length=128, description="Admins: one owner's jobs")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> JobPage:
        """The caller's jobs by name (an admin's: every owner's, or ``owner``'s)."""
        after = None if cursor is None else tuple(_decode(cursor, 2))
        query = _job_query(
            BulkFilter(
                name_contains=name_contains,
                paused=paused,
                queue=queue,
                action_kind=action_kind,
                last_outcome=last_outcome,
            ),
            limit=limit,
            after=after,
        )
        found = jobs.search(who, query, owner=owner)
        next_cursor = _encode(found[-1].name, found[-1].id) if len(found) == limit else None
        return JobPage(items=[job_out(j) for j in found], next_cursor=next_cursor)

    @router.post(
        "/jobs/bulk/pause", operation_id="pause_jobs", tags=["jobs"], response_model=BulkResult
    )
    def pause_jobs(who: Writer, body: BulkPause) -> BulkResult:
        """Pause every job of the caller's the filter matches."""
        count = jobs.set_paused_where(who, _job_query(body.filter), paused=True, reason=body.reason)
        return BulkResult(count=count)

    @router.post(
        "/jobs/bulk/resume", operation_id="resume_jobs", tags=["jobs"], response_model=BulkResult
    )
    def resume_jobs(who: Writer, body: BulkPause) -> BulkResult:
        """Resume every job of the caller's the filter matches (no backfill)."""
        count = jobs.set_paused_where(
            who, _job_query(body.filter), paused=False, reason=body.reason
        )
        return BulkResult(count=count)

    @router.get("/jobs/{job_id}", operation_id="get_job", tags=["jobs"], response_model=JobOut)
    def get_job(who: Reader, job_id: Annotated[str, Path(max_length=64)]) -> JobOut:
        return job_out(jobs.get(who, job_id))

    @router.patch("/jobs/{job_id}", operation_id="update_job", tags=["jobs"], response_model=JobOut)
    def update_job(
        who: Writer, job_id: Annotated[str, Path(max_length=64)], body: JobPatch
    ) -> JobOut:
        """Change the given fields; the others keep their values."""
        return job_out(jobs.update(who, job_id, body))

    @router.delete("/jobs/{job_id}", status_code=204, operation_id="delete_job", tags=["jobs"])
    def delete_job(who: Writer, job_id: Annotated[str, Path(max_length=64)]) -> Response:
        """Delete a job; its runs stay readable by id."""
        jobs.delete(who, job_id)
        return Response(status_code=204)

    @router.post(
        "/jobs/{job_id}/pause", operation_id="pause_job", tags=["jobs"], response_model=JobOut
    )
    def pause_job(
        who: Writer,
        job_id: Annotated[str, Path(max_length=64)],
        body: Annotated[Reason | None, Body()] = None,
    ) -> JobOut:
        reason = body.reason if body else None
        return job_out(jobs.set_paused(who, job_id, paused=True, reason=reason))

    @router.post(
        "/jobs/{job_id}/resume", operation_id="resume_job", tags=["jobs"], response_model=JobOut
    )
    def resume_job(
        who: Writer,
        job_id: Annotated[str, Path(max_length=64)],
        body: Annotated[Reason | None, Body()] = None,
    ) -> JobOut:
        reason = body.reason if body else None
        return job_out(jobs.set_paused(who, job_id, paused=False, reason=reason))

    @router.post(
        "/jobs/{job_id}/trigger",
        status_code=201,
        operation_id="trigger_job",
        tags=["jobs"],
        response_model=RunOut,
    )
    def trigger_job(
        who: Writer,
        job_id: Annotated[str, Path(max_length=64)],
        body: Annotated[TriggerRequest | None, Body()] = None,
    ) -> RunOut:
        """Run the job now, once, outside its schedule (a manual run never takes a fire's
        place); ``payload`` replaces the job's payload for this run only."""
        if body is not None and "payload" in body.model_fields_set:
            return run_out(jobs.trigger(who, job_id, payload=body.payload), now())
        return run_out(jobs.trigger(who, job_id), now())

    @router.get(
        "/jobs/{job_id}/runs", operation_id="list_job_runs", tags=["runs"], response_model=RunPage
    )
    def list_job_runs(
        who: Reader,
        job_id: Annotated[str, Path(max_length=64)],
        state: Annotated[list[RunStateName] | None, Query(max_length=9)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> RunPage:
        """A job's runs, newest first."""
        job = jobs.get(who, job_id)
        query = RunQuery(
            limit=limit,
            before=_run_before(cursor),
            job_id=job.id,
            states=_states(state),
            since=_aware(since, "since"),
            until=_aware(until, "until"),
        )
        return _run_page(runs.search(who, query), limit, now())

    # -- runs -----------------------------------------------------------------------------

    @router.get("/runs", operation_id="list_runs", tags=["runs"], response_model=RunPage)
    def list_runs(
        who: Reader,
        job_id: Annotated[str | None, Query(max_length=64)] = None,
        state: Annotated[list[RunStateName] | None, Query(max_length=9)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        owner: Annotated[
            str | None, Query(max_length=128, description="Admins: one owner's runs")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> RunPage:
        """Runs across the caller's jobs, newest first."""
        query = RunQuery(
            limit=limit,
            before=_run_before(cursor),
            job_id=job_id,
            states=_states(state),
            since=_aware(since, "since"),
            until=_aware(until, "until"),
        )
        return _run_page(runs.search(who, query, owner=owner), limit, now())

    @router.post(
        "/runs/bulk/requeue",
        operation_id="requeue_runs",
        tags=["runs"],
        response_model=BulkResult,
    )
    def requeue_runs(who: Writer, body: BulkRequeue) -> BulkResult:
        """Requeue every dead run of the caller's the filter matches."""
        return BulkResult(count=runs.requeue_where(who, _run_query(body.filter)))

    @router.get("/runs/{run_id}", operation_id="get_run", tags=["runs"], response_model=RunDetail)
    def get_run(who: Reader, run_id: Annotated[str, Path(max_length=64)]) -> RunDetail:
        """A run with its attempts."""
        run = runs.get(who, run_id)
        return run_detail(run, runs.attempts(who, run.id), now())

    @router.post(
        "/runs/{run_id}/cancel", operation_id="cancel_run", tags=["runs"], response_model=RunOut
    )
    def cancel_run(who: Writer, run_id: Annotated[str, Path(max_length=64)]) -> RunOut:
        return run_out(runs.cancel(who, run_id), now())

    @router.post(
        "/runs/{run_id}/requeue", operation_id="requeue_run", tags=["runs"], response_model=RunOut
    )
    def requeue_run(who: Writer, run_id: Annotated[str, Path(max_length=64)]) -> RunOut:
        """Queue a dead run again with a fresh retry budget."""
        return run_out(runs.requeue(who, run_id), now())

    # -- schedules ------------------------------------------------------------------------

    @router.post(
        "/preview", operation_id="preview_schedule", tags=["schedules"], response_model=PreviewOut
    )
    def preview_schedule(who: Reader, body: PreviewRequest) -> PreviewOut:
        """The next fires of a cron schedule, in its zone and in UTC, DST effects flagged."""
        return preview_out(body, now())

    # -- cluster --------------------------------------------------------------------------

    @router.get(
        "/cluster", operation_id="cluster_status", tags=["cluster"], response_model=ClusterOut
    )
    def cluster_status(who: AdminPrincipal) -> ClusterOut:
        """Members (live or not, with the shards each holds), unheld shards, recent
        takeovers and queue depths (admins)."""
        return cluster_out(service.cluster.status(who))

    return router


def cluster_out(status: ClusterStatus) -> ClusterOut:
    held = {
        int(lease.name.split(":")[1]): lease
        for lease in status.shards
        if lease.expires_at > status.now
    }
    per_holder: dict[str, int] = {}
    for lease in held.values():
        per_holder[lease.holder] = per_holder.get(lease.holder, 0) + 1
    return ClusterOut(
        now=status.now,
        members=[
            MemberOut(
                id=m.id,
                host=m.host,
                pid=m.pid,
                roles=list(m.roles),
                version=m.version,
                started_at=m.started_at,
                heartbeat_at=m.heartbeat_at,
                live=status.live(m),
                shards=per_holder.get(m.id, 0),
            )
            for m in status.members
        ],
        shard_count=SHARD_COUNT,
        shards_held=len(held),
        unheld_shards=[n for n in range(SHARD_COUNT) if n not in held],
        takeovers=[
            TakeoverOut(
                name=t.name,
                at=t.at,
                old_holder=t.old_holder,
                new_holder=t.new_holder,
                expired_at=t.expired_at,
            )
            for t in status.takeovers
        ],
        queues=[
            QueueOut(queue=q.queue, waiting=q.waiting, due=q.due, oldest_due_at=q.oldest_due_at)
            for q in status.queues
        ],
    )


def preview_out(body: PreviewRequest, now: datetime) -> PreviewOut:
    from oncely.domain.describe import schedule_in_words
    from oncely.domain.preview import preview

    schedule = make_schedule(
        cron=body.cron,
        timezone=body.timezone,
        dst_gap=body.dst_gap,
        dst_fold=body.dst_fold,
        now=now,
    )
    after = _aware(body.after, "after") or now
    entries = preview(schedule, after, body.count)
    return PreviewOut(
        description=schedule_in_words(schedule),
        timezone=body.timezone,
        fires=[
            PreviewFire(utc=e.utc, local=e.local, fires=e.fires, dst=e.dst, note=e.note)
            for e in entries
        ],
    )


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(f"{field} needs a UTC offset, as in 2030-01-01T00:00:00Z", field=field)
    return value.astimezone(UTC)


def _run_query(f: RunFilter) -> RunQuery:
    return RunQuery(
        job_id=f.job_id,
        states=_states(f.states),
        since=_aware(f.since, "filter.since"),
        until=_aware(f.until, "filter.until"),
    )


__all__ = ["Principal", "v1_router"]

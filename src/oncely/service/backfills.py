"""Backfills, as a caller may make, see and cancel them (``oncely.domain.backfill``).

A backfill is shown before it is made: ``preview`` lists the fires of the job's schedule in a
past window (``oncely.domain.migrate.backfill_fires``: exactly the fires the scheduler would
have made, bounded to 10,000); ``create`` makes them runs, each at most once. Making or
cancelling one changes what runs, so it needs the write permission (a viewer cannot), and a
shell or SQL job's needs the privileged-action permission, as triggering it does; another
owner's job or backfill is absent (``NotFound``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from oncely.domain.backfill import DEFAULT_RATE, Backfill, due_times, validate_rate
from oncely.domain.errors import InvalidInput, NotFound
from oncely.domain.ids import looks_like_id, new_id
from oncely.domain.jobs import Job
from oncely.domain.migrate import backfill_fires
from oncely.domain.principal import Permission, Principal
from oncely.service.deps import ServiceDeps, actor, require
from oncely.service.jobs import JobService, is_privileged

__all__ = ["SAMPLE", "BackfillPreview", "BackfillService", "parse_instant"]

SAMPLE = 5
"""Fires shown from each end of a preview."""


@dataclass(frozen=True)
class BackfillPreview:
    job: Job
    start: datetime
    end: datetime
    rate: float
    fires: tuple[datetime, ...]

    @property
    def count(self) -> int:
        return len(self.fires)

    @property
    def sample(self) -> tuple[datetime, ...]:
        if len(self.fires) <= 2 * SAMPLE:
            return self.fires
        return (*self.fires[:SAMPLE], *self.fires[-SAMPLE:])


def parse_instant(value: datetime | str, field: str) -> datetime:
    """An aware datetime, or ISO 8601 text with an offset."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f'{field} "{value}" is not an ISO 8601 date-time such as 2026-01-01T00:00:00Z',
                field=field,
            ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} needs a UTC offset (Z or +02:00)", field=field)
    return value


class BackfillService:
    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps
        self._jobs = JobService(deps)

    def _job(self, who: Principal, ref: str) -> Job:
        require(who, Permission.WRITE)
        job = self._jobs.find(who, ref)
        if is_privileged(job.action):
            require(who, Permission.PRIVILEGED_ACTIONS)
        return job

    def preview(
        self,
        who: Principal,
        job_ref: str,
        start: datetime | str,
        end: datetime | str,
        *,
        rate: float = DEFAULT_RATE,
    ) -> BackfillPreview:
        """The fires a backfill of [start, end] would create runs for (nothing is made)."""
        job = self._job(who, job_ref)
        rate = validate_rate(rate)
        first, last = parse_instant(start, "start"), parse_instant(end, "end")
        if job.paused:
            raise InvalidInput(
                f"job {job.name!r} is paused: resume it before backfilling", field="job"
            )
        fires = backfill_fires(job.schedule, first, last, now=self.deps.clock().now())
        if not fires:
            raise InvalidInput("the schedule has no fire in that period", field="start")
        return BackfillPreview(job, first, last, rate, tuple(fires))

    def create(
        self,
        who: Principal,
        job_ref: str,
        start: datetime | str,
        end: datetime | str,
        *,
        rate: float = DEFAULT_RATE,
    ) -> Backfill:
        """Make the previewed fires runs: oldest first, due 1/rate apart from now, each fire
        at most once (a fire that has a run is left alone)."""
        plan = self.preview(who, job_ref, start, end, rate=rate)
        now = self.deps.clock().now()
        record = Backfill(
            id=new_id(int(now.timestamp() * 1000)),
            owner=plan.job.owner,
            job_id=plan.job.id,
            start=plan.start,
            end=plan.end,
            rate=plan.rate,
            fires=plan.count,
            created=0,
            state="active",
            created_at=now,
            created_by=actor(who),
        )
        runs = list(zip(plan.fires, due_times(plan.fires, now=now, rate=plan.rate), strict=True))
        made = self.deps.store().backfill_create(who.scope, record, runs, now=now, actor=actor(who))
        self.deps.wake_worker(plan.job.policy.queue)
        return made

    def list(self, who: Principal, job_ref: str) -> list[Backfill]:
        require(who, Permission.READ)
        job = self._jobs.find(who, job_ref)
        return self.deps.store().backfill_list(who.scope, job.id)

    def cancel(self, who: Principal, backfill_id: str) -> Backfill:
        """Cancel the backfill's runs that have not started."""
        require(who, Permission.WRITE)
        store = self.deps.store()
        found = store.backfill_get(who.scope, backfill_id) if looks_like_id(backfill_id) else None
        if found is None:
            raise NotFound(f"no backfill with id {backfill_id!r}")
        self._job_of(who, found)
        done = store.backfill_cancel(
            who.scope, backfill_id, now=self.deps.clock().now(), actor=actor(who)
        )
        if done is None:
            raise NotFound(f"no backfill with id {backfill_id!r}")
        return done

    def _job_of(self, who: Principal, backfill: Backfill) -> None:
        job = self.deps.store().job_get(who.scope, backfill.job_id)
        if job is not None and is_privileged(job.action):
            require(who, Permission.PRIVILEGED_ACTIONS)

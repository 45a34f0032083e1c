"""Coming from cron: what importing a crontab would change, and which fires a backfill makes.

Pure planning for the service layer, which checks who may do it (only admins create shell
jobs) and then executes the plan:

* ``plan_import`` compares a parsed crontab with the owner's stored jobs, by name (crontab job
  names are stable, see ``oncely.domain.crontab``): jobs to create, to update (same name, new
  schedule, command, input or environment), unchanged, and stale (imported from this crontab
  before, no longer in it). A stored job of the same name that is not a shell job is a
  conflict: importing never turns another kind of job into a shell job.
* ``backfill_fires`` lists the fires of a schedule in a past period (both ends inclusive), as
  the scheduler would have made them, refusing a period that is not past or holds too many.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oncely.domain.actions import Action, ShellAction
from oncely.domain.crontab import Crontab, CrontabJob, CrontabProblem
from oncely.domain.errors import InvalidInput
from oncely.domain.schedule import Schedule, fires_between

__all__ = ["MAX_BACKFILL", "ImportPlan", "StoredJob", "backfill_fires", "plan_import"]

MAX_BACKFILL = 10_000
"""The most fires one backfill may create."""


@dataclass(frozen=True)
class StoredJob:
    """What planning needs of a stored job."""

    name: str
    schedule: Schedule
    action: Action


@dataclass(frozen=True)
class ImportPlan:
    create: tuple[CrontabJob, ...] = ()
    update: tuple[CrontabJob, ...] = ()
    unchanged: tuple[CrontabJob, ...] = ()
    stale: tuple[str, ...] = ()
    conflicts: tuple[CrontabProblem, ...] = ()
    problems: tuple[CrontabProblem, ...] = ()

    @property
    def changes_anything(self) -> bool:
        return bool(self.create or self.update)


def plan_import(
    crontab: Crontab, stored: Iterable[StoredJob], *, previously_imported: Iterable[str] = ()
) -> ImportPlan:
    """What importing ``crontab`` into an owner's ``stored`` jobs would do.

    ``previously_imported``: the names an earlier import of the same crontab created; those no
    longer in it are reported as stale (the caller decides whether to pause or delete them)."""
    by_name: Mapping[str, StoredJob] = {job.name: job for job in stored}
    create: list[CrontabJob] = []
    update: list[CrontabJob] = []
    unchanged: list[CrontabJob] = []
    conflicts: list[CrontabProblem] = []
    for job in crontab.jobs:
        existing = by_name.get(job.name)
        if existing is None:
            create.append(job)
        elif not isinstance(existing.action, ShellAction):
            conflicts.append(
                CrontabProblem(
                    job.line,
                    job.text,
                    f"a {existing.action.kind} job named {job.name!r} exists; importing does "
                    "not replace it with a shell job (rename one of them)",
                )
            )
        elif existing.schedule == job.schedule and existing.action == job.action:
            unchanged.append(job)
        else:
            update.append(job)
    in_file = {job.name for job in crontab.jobs}
    stale = tuple(sorted(n for n in set(previously_imported) if n not in in_file and n in by_name))
    return ImportPlan(
        tuple(create),
        tuple(update),
        tuple(unchanged),
        stale,
        tuple(conflicts),
        crontab.problems,
    )


def backfill_fires(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    limit: int = MAX_BACKFILL,
) -> list[datetime]:
    """The fires of ``schedule`` in [start, end], a period that has passed by ``now``.

    Raises ``InvalidInput`` naming ``start`` or ``end`` when the period is empty, not yet over,
    or holds more than ``limit`` fires (the message says how to narrow it)."""
    for name, value in (("start", start), ("end", end), ("now", now)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(f"{name} must have a UTC offset", field=name)
    start, end, now = start.astimezone(UTC), end.astimezone(UTC), now.astimezone(UTC)
    if start >= end:
        raise InvalidInput(
            f"start ({start.isoformat()}) must be before end ({end.isoformat()})", field="end"
        )
    if end > now:
        raise InvalidInput(
            f"end ({end.isoformat()}) is in the future; a backfill covers a past period "
            "(the schedule itself makes the future fires)",
            field="end",
        )
    fires = fires_between(schedule, start - timedelta(microseconds=1), end, limit + 1)
    if len(fires) > limit:
        raise InvalidInput(
            f"the period holds more than {limit} fires (the {limit + 1}th is at "
            f"{fires[limit].isoformat()}); choose an end before it",
            field="end",
        )
    return fires

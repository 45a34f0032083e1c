"""Turning a job's schedule into runs: lookahead materialization and misfire handling.

The scheduler calls ``plan_fires`` for each job whose ``next_fire_at`` falls before its
horizon and commits the returned plan in one transaction. This function decides; it does
not read clocks or stores, so every misfire rule is tested here without waiting for time.

Fires are sorted into two kinds by ``now - misfire_grace``:

- *on time* (not older than the grace): materialized as ``pending`` runs, due at the fire
  plus the job's deterministic jitter (a late-but-within-grace fire is simply due now);
- *missed* (older than the grace, found after every scheduler was down): handled by the
  job's misfire policy — ``run_once`` makes one run for the latest missed fire that stands for
  all of them, ``run_all`` makes a run for each up to ``misfire_cap`` and records the rest as
  one ``missed`` run, ``skip`` records them as one ``missed`` run. A coalesced run carries
  how many fires it stands for (``fires``) and the first of them, so nothing is silent.

A single call scans at most ``scan_limit`` fires of one job. A longer outage (a one-second
job down for days) is worked through over several ticks; each full block of missed fires
that is not the last is recorded as a ``missed`` run of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from oncely.domain.jobs import Job
from oncely.domain.runs import RunState
from oncely.domain.schedule import jitter_offset, next_fire

MISSED_SCAN_LIMIT = 10_000
AHEAD_LIMIT = 1_000
"""Most on-time runs materialized for one job in one tick (a per-second job needs a few)."""


@dataclass(frozen=True)
class PlannedRun:
    scheduled_for: datetime
    due_at: datetime
    state: RunState
    fires: int = 1
    first_fire: datetime | None = None


@dataclass(frozen=True)
class FirePlan:
    """What to commit for one job: new runs and the job's next fire.

    ``job_version`` makes the commit conditional: if a user changed the job meanwhile, the
    plan is dropped and recomputed from the new version.
    """

    job_id: str
    job_version: int
    old_next_fire_at: datetime
    next_fire_at: datetime | None
    runs: list[PlannedRun] = field(default_factory=list)


def plan_fires(
    job: Job,
    now: datetime,
    horizon: datetime,
    *,
    scan_limit: int = MISSED_SCAN_LIMIT,
    ahead_limit: int = AHEAD_LIMIT,
) -> FirePlan | None:
    """Plan the runs for ``job``'s fires up to ``horizon``; None if there is nothing to do."""
    fire = job.next_fire_at
    if job.paused or fire is None or fire > horizon:
        return None
    policy = job.policy
    grace_edge = now - timedelta(seconds=policy.misfire_grace)

    missed: list[datetime] = []
    on_time: list[datetime] = []
    current: datetime | None = fire
    scanned = 0
    while current is not None and current <= horizon and scanned < scan_limit:
        if current < grace_edge:
            missed.append(current)
        else:
            if len(on_time) >= ahead_limit:
                break
            on_time.append(current)
        scanned += 1
        current = next_fire(job.schedule, current)

    runs: list[PlannedRun] = []
    more_missed_follow = current is not None and current < grace_edge
    if missed:
        if more_missed_follow:
            # A block in the middle of a long outage: the policy applies to the last block.
            runs.append(_coalesced(missed, RunState.MISSED, now))
        else:
            runs.extend(_apply_misfire(job, missed, now))
    for scheduled in on_time:
        due = scheduled + jitter_offset(job.schedule, job.id, scheduled)
        runs.append(PlannedRun(scheduled_for=scheduled, due_at=due, state=RunState.PENDING))

    return FirePlan(
        job_id=job.id,
        job_version=job.version,
        old_next_fire_at=fire,
        next_fire_at=current,
        runs=runs,
    )


def _coalesced(fires: list[datetime], state: RunState, now: datetime) -> PlannedRun:
    return PlannedRun(
        scheduled_for=fires[-1],
        due_at=now,
        state=state,
        fires=len(fires),
        first_fire=fires[0] if len(fires) > 1 else None,
    )


def _apply_misfire(job: Job, missed: list[datetime], now: datetime) -> list[PlannedRun]:
    policy = job.policy
    if policy.misfire == "skip":
        return [_coalesced(missed, RunState.MISSED, now)]
    if policy.misfire == "run_once":
        return [_coalesced(missed, RunState.PENDING, now)]
    # run_all: the earliest fires run in order, up to the cap; the rest are recorded.
    kept, rest = missed[: policy.misfire_cap], missed[policy.misfire_cap :]
    runs = [PlannedRun(scheduled_for=f, due_at=now, state=RunState.PENDING) for f in kept]
    if rest:
        runs.append(_coalesced(rest, RunState.MISSED, now))
    return runs

"""Jobs as a JSON document: ``oncely export json`` and ``oncely import json``.

Design note
-----------
A backup, or a move between stores (SQLite to PostgreSQL and back), must give every job back
exactly: its name, schedule (every kind, zone, DST policies, bounds, jitter, anchor), action
(every kind, with its environment, input, headers...), payload, policy and paused flag. The
document holds those and nothing the target store makes itself: no id, version, shard,
timestamps or next fire (a job imported elsewhere is a new job there, whose next fire is
computed from its schedule at import). Jobs are sorted by name and written with sorted keys,
so exporting, importing into another store and exporting again gives the same bytes.

Shape: ``{"format": "oncely-jobs", "version": 1, "jobs": [{"name", "schedule", "action",
"payload", "policy", "paused"}, ...]}``; the dicts are the ones the stores keep
(``schedule_to_dict``, ``action_to_dict``, ``policy_to_dict``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from oncely.domain.actions import Action, action_from_dict, action_to_dict, validate_action
from oncely.domain.errors import InvalidInput
from oncely.domain.jobs import Job, validate_job_name
from oncely.domain.policy import Policy, policy_from_dict, policy_to_dict
from oncely.domain.schedule import (
    AtSchedule,
    CronSchedule,
    Schedule,
    make_schedule,
    schedule_from_dict,
    schedule_to_dict,
)

__all__ = ["FORMAT", "MAX_JOBS_FILE_BYTES", "JobSpec", "dump_jobs", "load_jobs"]

FORMAT = "oncely-jobs"
VERSION = 1
MAX_JOBS_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class JobSpec:
    """A job's definition, as a jobs file holds it."""

    name: str
    schedule: Schedule
    action: Action
    payload: Any
    policy: Policy
    paused: bool

    @classmethod
    def of(cls, job: Job) -> JobSpec:
        return cls(job.name, job.schedule, job.action, job.payload, job.policy, job.paused)


def dump_jobs(jobs: Iterable[Job | JobSpec]) -> str:
    specs = sorted((j if isinstance(j, JobSpec) else JobSpec.of(j) for j in jobs), key=_name)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "jobs": [
            {
                "name": s.name,
                "schedule": schedule_to_dict(s.schedule),
                "action": action_to_dict(s.action),
                "payload": s.payload,
                "policy": policy_to_dict(s.policy),
                "paused": s.paused,
            }
            for s in specs
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _name(spec: JobSpec) -> str:
    return spec.name


def load_jobs(text: str, *, now: datetime) -> list[JobSpec]:
    """Read a jobs file, validating each job as creating it would. ``InvalidInput`` names the
    job (its index and name) and the field at fault."""
    if len(text.encode("utf-8", errors="replace")) > MAX_JOBS_FILE_BYTES:
        raise InvalidInput("the jobs file is larger than 256 MiB", field="jobs")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}", field="jobs") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidInput(f'not an oncely jobs file (no "format": "{FORMAT}")', field="format")
    if document.get("version") != VERSION:
        raise InvalidInput(
            f"jobs file version {document.get('version')!r}; this oncely reads {VERSION}",
            field="version",
        )
    raw_jobs = document.get("jobs")
    if not isinstance(raw_jobs, list):
        raise InvalidInput('"jobs" must be a list', field="jobs")
    specs: list[JobSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_jobs):
        shown = raw.get("name") if isinstance(raw, dict) else None
        try:
            spec = _spec(raw, now)
        except InvalidInput as exc:
            raise InvalidInput(f"job {i} ({shown!r}): {exc}", field=exc.field) from None
        if spec.name in seen:
            raise InvalidInput(f"job {i}: the name {spec.name!r} is given twice", field="name")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def _spec(raw: Any, now: datetime) -> JobSpec:
    if not isinstance(raw, dict):
        raise InvalidInput("a job must be an object", field="jobs")
    unknown = set(raw) - {"name", "schedule", "action", "payload", "policy", "paused"}
    if unknown:
        raise InvalidInput(f"unknown fields {sorted(unknown)}", field=sorted(unknown)[0])
    name = validate_job_name(raw.get("name"))  # type: ignore[arg-type]
    if not isinstance(raw.get("schedule"), dict):
        raise InvalidInput("schedule must be an object", field="schedule")
    schedule = _checked(schedule_from_dict(raw["schedule"]), now)
    if not isinstance(raw.get("action"), dict):
        raise InvalidInput("action must be an object", field="action")
    action = validate_action(action_from_dict(raw["action"]))
    try:
        policy = policy_from_dict(dict(raw.get("policy") or {}))
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidInput(f"malformed policy: {exc}", field="policy") from None
    paused = raw.get("paused", False)
    if not isinstance(paused, bool):
        raise InvalidInput("paused must be true or false", field="paused")
    return JobSpec(name, schedule, action, raw.get("payload"), policy, paused)


def _checked(schedule: Schedule, now: datetime) -> Schedule:
    """The schedule validated as creating it would (a cron that parses, a known zone...)."""
    if isinstance(schedule, AtSchedule):
        return schedule
    common: dict[str, Any] = {
        "start": schedule.start,
        "end": schedule.end,
        "jitter": schedule.jitter,
        "now": now.astimezone(UTC),
    }
    if isinstance(schedule, CronSchedule):
        make_schedule(
            cron=schedule.expr,
            timezone=schedule.timezone,
            dst_gap=schedule.dst_gap,
            dst_fold=schedule.dst_fold,
            **common,
        )
    else:
        make_schedule(every=schedule.interval, anchor=schedule.anchor, **common)
    return schedule  # as written: validating must not change a job that moves between stores

"""Conversions between domain objects and the column values both stores share.

Rows come in as mappings of column name to value; timestamps arrive either as aware
datetimes (PostgreSQL) or as integer microseconds since the epoch (SQLite), so the caller
passes the conversion for its dialect.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from oncely.domain.actions import Action, action_from_dict, action_to_dict
from oncely.domain.jobs import Job
from oncely.domain.policy import Policy, policy_from_dict, policy_to_dict
from oncely.domain.principal import Role
from oncely.domain.runs import Attempt, AttemptOutcome, Run, RunState
from oncely.domain.schedule import Schedule, schedule_from_dict, schedule_to_dict
from oncely.domain.users import ApiKey, User
from oncely.ports.store import AuditEntry, ClaimedRun, JobVersion


class Row(Protocol):
    """A result row addressable by column name (a dict from psycopg, an sqlite3.Row)."""

    def __getitem__(self, key: str, /) -> Any: ...


ToDatetime = Callable[[Any], datetime]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch (exact, sortable)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


def _json(value: Any) -> Any:
    """JSON columns come back parsed (psycopg jsonb) or as text (SQLite)."""
    if isinstance(value, str):
        return json.loads(value)
    return value


# What the schedule and policy columns leave out. Bytes per stored job matter at millions of
# jobs, and most jobs keep most defaults: a default policy is stored as three keys, not ten.
# These values are part of the storage format, frozen here on purpose: they are not read from
# ``Policy``, so changing a default there can never change what an already stored job means.
# ``queue``, ``priority`` and ``overlap`` are always stored: SQL reads them.
_STORED_POLICY_DEFAULTS: dict[str, Any] = {
    "max_retries": 3,
    "base_delay": 1.0,
    "max_delay": 300.0,
    "timeout": None,
    "misfire": "run_once",
    "misfire_grace": 60.0,
    "misfire_cap": 100,
    "deadline": None,
    "retention": None,
}
_STORED_SCHEDULE_DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "dst_gap": "shift",
    "dst_fold": "first",
    "start": None,
    "end": None,
    "jitter": 0.0,
}


def _compact(data: dict[str, Any], defaults: dict[str, Any]) -> str:
    kept = {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}
    return json.dumps(kept, separators=(",", ":"))


def job_columns(job: Job) -> dict[str, Any]:
    """The JSON-bearing columns of a job, serialized as text."""
    return {
        "schedule": _compact(schedule_to_dict(job.schedule), _STORED_SCHEDULE_DEFAULTS),
        "action": json.dumps(action_to_dict(job.action), separators=(",", ":")),
        "payload": None
        if job.payload is None
        else json.dumps(job.payload, separators=(",", ":"), ensure_ascii=False),
        "policy": _compact(policy_to_dict(job.policy), _STORED_POLICY_DEFAULTS),
    }


def schedule_from_row(value: Any) -> Schedule:
    if isinstance(value, str):
        return _schedule_from_text(value)
    return schedule_from_dict({**_STORED_SCHEDULE_DEFAULTS, **value})


# Decoded once per distinct stored text. The hot paths (a claim of 500 runs, a scheduler
# pass over 10,000 due jobs) decode the same few policies and actions over and over: most
# jobs share them. The domain objects are frozen, so one instance can serve every row; the
# queries of the hot paths select these columns as text to hit the cache (jsonb would come
# back as a fresh dict each time). Payloads are never cached: tasks get their own copy.
_DECODED_KINDS = 4096


@functools.lru_cache(maxsize=_DECODED_KINDS)
def _schedule_from_text(text: str) -> Schedule:
    return schedule_from_dict({**_STORED_SCHEDULE_DEFAULTS, **json.loads(text)})


@functools.lru_cache(maxsize=_DECODED_KINDS)
def _policy_from_text(text: str) -> Policy:
    return policy_from_dict({**_STORED_POLICY_DEFAULTS, **json.loads(text)})


@functools.lru_cache(maxsize=_DECODED_KINDS)
def _action_from_text(text: str) -> Action:
    return action_from_dict(json.loads(text))


def action_from_row(value: Any) -> Action:
    if isinstance(value, str):
        return _action_from_text(value)
    return action_from_dict(value)


def job_from_row(row: Row, ts: ToDatetime) -> Job:
    payload = row["payload"]
    return Job(
        id=str(row["id"]),
        owner=row["owner"],
        name=row["name"],
        schedule=schedule_from_row(row["schedule"]),
        action=action_from_row(row["action"]),
        payload=None if payload is None else _json(payload),
        policy=policy_from_row(row["policy"]),
        paused=bool(row["paused"]),
        next_fire_at=None if row["next_fire_at"] is None else ts(row["next_fire_at"]),
        shard=row["shard"],
        version=row["version"],
        created_at=ts(row["created_at"]),
        updated_at=ts(row["updated_at"]),
    )


def policy_from_row(value: Any) -> Policy:
    if isinstance(value, str):
        return _policy_from_text(value)
    return policy_from_dict({**_STORED_POLICY_DEFAULTS, **value})


def payload_from_row(value: Any) -> Any:
    return None if value is None else _json(value)


def _opt(value: Any, ts: ToDatetime) -> datetime | None:
    return None if value is None else ts(value)


def run_from_row(row: Row, ts: ToDatetime) -> Run:
    return Run(
        id=str(row["id"]),
        job_id=str(row["job_id"]),
        owner=row["owner"],
        job_name=row["job_name"],
        scheduled_for=ts(row["scheduled_for"]),
        due_at=ts(row["due_at"]),
        state=RunState(row["state"]),
        queue=row["queue"],
        priority=row["priority"],
        attempt=row["attempt"],
        failures=row["failures"],
        fires=row["fires"],
        first_fire=_opt(row["first_fire"], ts),
        manual=bool(row["manual"]),
        token=row["token"],
        worker_id=row["worker_id"],
        lease_expires_at=_opt(row["lease_expires_at"], ts),
        started_at=_opt(row["started_at"], ts),
        finished_at=_opt(row["finished_at"], ts),
        error=row["error"],
        output=row["output"],
        created_at=ts(row["created_at"]),
    )


def attempt_from_row(row: Row, ts: ToDatetime) -> Attempt:
    return Attempt(
        run_id=str(row["run_id"]),
        number=row["number"],
        token=row["token"],
        worker_id=row["worker_id"],
        started_at=ts(row["started_at"]),
        finished_at=ts(row["finished_at"]),
        outcome=AttemptOutcome(row["outcome"]),
        error=row["error"],
        output=row["output"],
    )


def claimed_from_row(row: Row, ts: ToDatetime) -> ClaimedRun:
    """A claimed run joined with its job's action, payload and policy."""
    return ClaimedRun(
        run_id=str(row["id"]),
        job_id=str(row["job_id"]),
        job_name=row["job_name"],
        owner=row["owner"],
        queue=row["queue"],
        scheduled_for=ts(row["scheduled_for"]),
        attempt=row["attempt"],
        failures=row["failures"],
        token=row["token"],
        started_at=ts(row["started_at"]),
        lease_expires_at=ts(row["lease_expires_at"]),
        action=action_from_row(row["action"]),
        payload=payload_from_row(row["payload"]),
        policy=policy_from_row(row["policy"]),
    )


# -- users, keys, audit, job versions -----------------------------------------------------


def user_from_row(row: Row, ts: ToDatetime) -> User:
    return User(
        id=str(row["id"]),
        name=row["name"],
        password_hash=row["password_hash"],
        role=Role(row["role"]),
        owner=row["owner"],
        created_at=ts(row["created_at"]),
        updated_at=ts(row["updated_at"]),
        disabled_at=_opt(row["disabled_at"], ts),
        session_epoch=row["session_epoch"],
    )


def apikey_from_row(row: Row, ts: ToDatetime) -> ApiKey:
    return ApiKey(
        id=str(row["id"]),
        prefix=row["prefix"],
        secret_hash=row["secret_hash"],
        user_id=str(row["user_id"]),
        name=row["name"],
        created_at=ts(row["created_at"]),
        expires_at=_opt(row["expires_at"], ts),
        revoked_at=_opt(row["revoked_at"], ts),
        last_used_at=_opt(row["last_used_at"], ts),
    )


def audit_from_row(row: Row, ts: ToDatetime) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        at=ts(row["at"]),
        actor=row["actor"],
        owner=row["owner"],
        action=row["action"],
        target_kind=row["target_kind"],
        target_id=row["target_id"],
        details=_json(row["details"]) or {},
    )


def job_version_from_row(row: Row, ts: ToDatetime) -> JobVersion:
    # The definition is parsed once as a whole, so its payload is a value already (a bare
    # JSON string payload must not be parsed a second time).
    definition = _json(row["definition"])
    return JobVersion(
        job_id=str(row["job_id"]),
        version=row["version"],
        name=definition["name"],
        schedule=schedule_from_row(definition["schedule"]),
        action=action_from_dict(definition["action"]),
        payload=definition["payload"],
        policy=policy_from_row(definition["policy"]),
        paused=bool(definition["paused"]),
        changed_at=ts(row["changed_at"]),
        changed_by=row["changed_by"],
    )


def definition_changes(old: Job, new: Job) -> list[str]:
    """The names of the definition fields that differ between two versions of a job."""
    return [
        name
        for name in ("name", "schedule", "action", "payload", "policy")
        if getattr(old, name) != getattr(new, name)
    ]

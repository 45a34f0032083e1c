"""The PostgreSQL store's backfills (``oncely.domain.backfill``); ``PostgresStore`` inherits
these. The runs are inserted under the unique fire key (a fire that already has a run is left
alone), in one transaction with the backfill's record and the links to the runs it created.
Backfilled runs are due from now on, so the worker's polling finds them (no NOTIFY needed for
correctness)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow, dict_row

from oncely.adapters.codec import policy_from_row
from oncely.domain.backfill import Backfill
from oncely.domain.errors import NotFound
from oncely.domain.ids import new_id

Conn = psycopg.Connection[TupleRow]
Row = dict[str, Any]

_JOB = """
SELECT * FROM jobs WHERE id = %(id)s AND deleted_at IS NULL
  AND (%(owner)s::text IS NULL OR owner = %(owner)s)"""
_RUNS = """
INSERT INTO runs (id, job_id, owner, scheduled_for, due_at, state, queue, priority, overlap,
                  fires, created_at)
SELECT x.id, %(job_id)s, %(owner)s, x.scheduled_for, x.due_at, 'pending', %(queue)s,
       %(priority)s, %(overlap)s, 1, %(now)s
FROM unnest(%(ids)s::uuid[], %(scheduled_fors)s::timestamptz[], %(due_ats)s::timestamptz[])
     AS x (id, scheduled_for, due_at)
ON CONFLICT (job_id, scheduled_for, (CASE WHEN manual THEN id END)) DO NOTHING
RETURNING id"""
_INSERT = """
INSERT INTO backfills (id, owner, job_id, range_start, range_end, rate, fires, created, state,
                       created_at, created_by)
VALUES (%(id)s, %(owner)s, %(job_id)s, %(range_start)s, %(range_end)s, %(rate)s, %(fires)s,
        %(created)s, 'active', %(created_at)s, %(created_by)s)
RETURNING *"""
_LINK = """
INSERT INTO backfill_runs (backfill_id, run_id)
SELECT %(backfill_id)s, unnest(%(run_ids)s::uuid[])"""
_GET = """
SELECT * FROM backfills WHERE id = %(id)s AND (%(owner)s::text IS NULL OR owner = %(owner)s)"""
_LOCK = _GET + " FOR UPDATE"
_LIST = """
SELECT * FROM backfills WHERE job_id = %(job_id)s
  AND (%(owner)s::text IS NULL OR owner = %(owner)s)
ORDER BY created_at DESC, id DESC LIMIT %(limit)s"""
_CANCEL_RUNS = """
UPDATE runs SET state = 'cancelled', finished_at = %(now)s
WHERE state = 'pending'
  AND id IN (SELECT run_id FROM backfill_runs WHERE backfill_id = %(id)s)"""
_CANCEL = """
UPDATE backfills SET state = 'cancelled', cancelled_at = %(now)s,
                     cancelled = cancelled + %(count)s
WHERE id = %(id)s RETURNING *"""
_AUDIT = """
INSERT INTO audit_log (at, actor, owner, action, target_kind, target_id, details)
VALUES (%(at)s, %(actor)s, %(owner)s, %(action)s, 'backfill', %(target_id)s, %(details)s::jsonb)"""


def _fetch(conn: Conn, sql: str, params: dict[str, Any]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.encode(), params)
        return cur.fetchall() if cur.description else []


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _backfill(row: Row) -> Backfill:
    return Backfill(
        id=str(row["id"]),
        owner=row["owner"],
        job_id=str(row["job_id"]),
        start=row["range_start"],
        end=row["range_end"],
        rate=row["rate"],
        fires=row["fires"],
        created=row["created"],
        state=row["state"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        cancelled_at=row["cancelled_at"],
        cancelled=row["cancelled"],
    )


def _audit(conn: Conn, actor: str | None, now: datetime, b: Backfill, action: str) -> None:
    if actor is None:
        return
    details = {"job_id": b.job_id, "created": b.created, "cancelled": b.cancelled}
    _fetch(
        conn,
        _AUDIT,
        {
            "at": now,
            "actor": actor,
            "owner": b.owner,
            "action": action,
            "target_id": b.id,
            "details": json.dumps(details, separators=(",", ":")),
        },
    )


class PostgresBackfills:
    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[Conn]: ...

        @property
        def _pool(self) -> Any: ...

    def backfill_create(
        self,
        owner: str | None,
        backfill: Backfill,
        runs: Sequence[tuple[datetime, datetime]],
        *,
        now: datetime,
        actor: str | None = None,
    ) -> Backfill:
        job_id = _uuid(backfill.job_id)
        if job_id is None:
            raise NotFound(f"no job with id {backfill.job_id!r}")
        with self._tx() as conn:
            jobs = _fetch(conn, _JOB, {"id": job_id, "owner": owner})
            if not jobs:
                raise NotFound(f"no job with id {backfill.job_id!r}")
            job = jobs[0]
            policy = policy_from_row(job["policy"])
            ms = int(now.timestamp() * 1000)
            created = _fetch(
                conn,
                _RUNS,
                {
                    "job_id": job_id,
                    "owner": job["owner"],
                    "queue": policy.queue,
                    "priority": policy.priority,
                    "overlap": policy.overlap,
                    "now": now,
                    "ids": [UUID(new_id(ms)) for _ in runs],
                    "scheduled_fors": [s for s, _ in runs],
                    "due_ats": [d for _, d in runs],
                },
            )
            rows = _fetch(
                conn,
                _INSERT,
                {
                    "id": UUID(backfill.id),
                    "owner": job["owner"],
                    "job_id": job_id,
                    "range_start": backfill.start,
                    "range_end": backfill.end,
                    "rate": backfill.rate,
                    "fires": backfill.fires,
                    "created": len(created),
                    "created_at": now,
                    "created_by": backfill.created_by,
                },
            )
            if created:
                _fetch(
                    conn,
                    _LINK,
                    {"backfill_id": UUID(backfill.id), "run_ids": [r["id"] for r in created]},
                )
            stored = _backfill(rows[0])
            _audit(conn, actor, now, stored, "job.backfill")
        return stored

    def backfill_get(self, owner: str | None, backfill_id: str) -> Backfill | None:
        uid = _uuid(backfill_id)
        if uid is None:
            return None
        with self._pool.connection() as conn:
            rows = _fetch(conn, _GET, {"id": uid, "owner": owner})
        return _backfill(rows[0]) if rows else None

    def backfill_list(self, owner: str | None, job_id: str, *, limit: int = 100) -> list[Backfill]:
        uid = _uuid(job_id)
        if uid is None:
            return []
        with self._pool.connection() as conn:
            rows = _fetch(conn, _LIST, {"job_id": uid, "owner": owner, "limit": limit})
        return [_backfill(r) for r in rows]

    def backfill_cancel(
        self, owner: str | None, backfill_id: str, *, now: datetime, actor: str | None = None
    ) -> Backfill | None:
        uid = _uuid(backfill_id)
        if uid is None:
            return None
        with self._tx() as conn:
            if not _fetch(conn, _LOCK, {"id": uid, "owner": owner}):
                return None
            with conn.cursor() as cur:
                cur.execute(_CANCEL_RUNS.encode(), {"id": uid, "now": now})
                count = cur.rowcount
            stored = _backfill(_fetch(conn, _CANCEL, {"id": uid, "now": now, "count": count})[0])
            _audit(conn, actor, now, stored, "backfill.cancel")
        return stored


__all__ = ["PostgresBackfills"]

"""The SQLite store's backfills (``oncely.domain.backfill``); ``SqliteStore`` inherits these.

A backfill's runs are inserted with the scheduler's own statement (``run_insert``: a fire that
already has a run is left alone), in one transaction with the backfill's record and the links
to the runs it created."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from oncely.adapters.codec import from_micros, policy_from_row, to_micros
from oncely.adapters.sqlfile import load_queries
from oncely.domain.backfill import Backfill
from oncely.domain.errors import NotFound
from oncely.domain.ids import new_id

_Q = load_queries("oncely.adapters.sqlite", "queries.sql")

_JOB = """
SELECT * FROM jobs WHERE id = :id AND deleted_at IS NULL AND (:owner IS NULL OR owner = :owner)"""
_INSERT = """
INSERT INTO backfills (id, owner, job_id, range_start, range_end, rate, fires, created, state,
                       created_at, created_by)
VALUES (:id, :owner, :job_id, :range_start, :range_end, :rate, :fires, :created, 'active',
        :created_at, :created_by)"""
_LINK = "INSERT INTO backfill_runs (backfill_id, run_id) VALUES (:backfill_id, :run_id)"
_GET = "SELECT * FROM backfills WHERE id = :id AND (:owner IS NULL OR owner = :owner)"
_LIST = """
SELECT * FROM backfills WHERE job_id = :job_id AND (:owner IS NULL OR owner = :owner)
ORDER BY created_at DESC, id DESC LIMIT :limit"""
_CANCEL_RUNS = """
UPDATE runs SET state = 'cancelled', finished_at = :now
WHERE state = 'pending' AND id IN (SELECT run_id FROM backfill_runs WHERE backfill_id = :id)"""
_CANCEL = """
UPDATE backfills SET state = 'cancelled', cancelled_at = :now, cancelled = cancelled + :count
WHERE id = :id"""


def _backfill(row: sqlite3.Row) -> Backfill:
    return Backfill(
        id=row["id"],
        owner=row["owner"],
        job_id=row["job_id"],
        start=from_micros(row["range_start"]),
        end=from_micros(row["range_end"]),
        rate=row["rate"],
        fires=row["fires"],
        created=row["created"],
        state=row["state"],
        created_at=from_micros(row["created_at"]),
        created_by=row["created_by"],
        cancelled_at=None if row["cancelled_at"] is None else from_micros(row["cancelled_at"]),
        cancelled=row["cancelled"],
    )


def _audit(
    conn: sqlite3.Connection, actor: str | None, now: datetime, b: Backfill, action: str
) -> None:
    if actor is None:
        return
    details = {"job_id": b.job_id, "created": b.created, "cancelled": b.cancelled}
    conn.execute(
        _Q["audit_insert"],
        {
            "at": to_micros(now),
            "actor": actor,
            "owner": b.owner,
            "action": action,
            "target_kind": "backfill",
            "target_id": b.id,
            "details": json.dumps(details, separators=(",", ":")),
        },
    )


class SqliteBackfills:
    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _conn(self) -> sqlite3.Connection: ...

    def backfill_create(
        self,
        owner: str | None,
        backfill: Backfill,
        runs: Sequence[tuple[datetime, datetime]],
        *,
        now: datetime,
        actor: str | None = None,
    ) -> Backfill:
        with self._write() as conn:
            job = conn.execute(_JOB, {"id": backfill.job_id, "owner": owner}).fetchone()
            if job is None:
                raise NotFound(f"no job with id {backfill.job_id!r}")
            policy = policy_from_row(job["policy"])
            created: list[str] = []
            for scheduled_for, due_at in runs:
                run_id = new_id(to_micros(now) // 1000)
                cur = conn.execute(
                    _Q["run_insert"],
                    {
                        "id": run_id,
                        "job_id": backfill.job_id,
                        "owner": job["owner"],
                        "scheduled_for": to_micros(scheduled_for),
                        "due_at": to_micros(due_at),
                        "state": "pending",
                        "queue": policy.queue,
                        "priority": policy.priority,
                        "overlap": policy.overlap,
                        "fires": 1,
                        "first_fire": None,
                        "manual": 0,
                        "finished_at": None,
                        "created_at": to_micros(now),
                    },
                )
                if cur.rowcount:
                    created.append(run_id)
            conn.execute(
                _INSERT,
                {
                    "id": backfill.id,
                    "owner": job["owner"],
                    "job_id": backfill.job_id,
                    "range_start": to_micros(backfill.start),
                    "range_end": to_micros(backfill.end),
                    "rate": backfill.rate,
                    "fires": backfill.fires,
                    "created": len(created),
                    "created_at": to_micros(now),
                    "created_by": backfill.created_by,
                },
            )
            conn.executemany(_LINK, [{"backfill_id": backfill.id, "run_id": r} for r in created])
            stored = _backfill(conn.execute(_GET, {"id": backfill.id, "owner": None}).fetchone())
            _audit(conn, actor, now, stored, "job.backfill")
        return stored

    def backfill_get(self, owner: str | None, backfill_id: str) -> Backfill | None:
        row = self._conn().execute(_GET, {"id": backfill_id, "owner": owner}).fetchone()
        return None if row is None else _backfill(row)

    def backfill_list(self, owner: str | None, job_id: str, *, limit: int = 100) -> list[Backfill]:
        rows = (
            self._conn()
            .execute(_LIST, {"job_id": job_id, "owner": owner, "limit": limit})
            .fetchall()
        )
        return [_backfill(r) for r in rows]

    def backfill_cancel(
        self, owner: str | None, backfill_id: str, *, now: datetime, actor: str | None = None
    ) -> Backfill | None:
        with self._write() as conn:
            row = conn.execute(_GET, {"id": backfill_id, "owner": owner}).fetchone()
            if row is None:
                return None
            count = conn.execute(_CANCEL_RUNS, {"id": backfill_id, "now": to_micros(now)}).rowcount
            conn.execute(_CANCEL, {"id": backfill_id, "now": to_micros(now), "count": count})
            stored = _backfill(conn.execute(_GET, {"id": backfill_id, "owner": None}).fetchone())
            _audit(conn, actor, now, stored, "backfill.cancel")
        return stored


__all__ = ["SqliteBackfills"]

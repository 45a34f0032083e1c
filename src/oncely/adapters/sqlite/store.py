"""The SQLite store.

Design notes:

- One connection per thread (sqlite3 connections must not be shared across threads without
  care); WAL mode so readers never block the writer; ``synchronous=NORMAL`` is durable
  across process crashes in WAL mode (only a power loss can lose the last commits).
- Every write transaction starts with ``BEGIN IMMEDIATE``: it takes the database's write
  lock up front, so a transaction never fails half-way on a lock upgrade, and writers from
  other processes (``oncely jobs add`` while ``oncely up`` runs) queue on ``busy_timeout``.
  Within one process a lock serializes writers too, so they wait on a mutex rather than spin.
- A transactional task (``run_complete_with``) runs its code inside the write lock, so every
  other writer (shard leases, claims, heartbeats) waits for it. Its transaction is therefore
  capped at ``task_transaction_cap`` seconds (0.25 by default; the URL parameter
  ``?task_transaction_cap=``), or its job's timeout if shorter: past it, a running SQL
  statement is interrupted (a progress handler), and a task that returns late is rolled back
  and fails (``TransactionCancelled``). Python code that sleeps inside the lock cannot be
  interrupted: it delays the other writers until it returns, and is then rolled back. Keep
  transactional tasks short on SQLite: other writers wait up to the cap for each
  transactional task queued ahead of them.
- Fencing tokens come from the ``meta`` row ``fencing``, bumped in the same transaction that
  grants the lease: as long as the database file lives they only grow.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from oncely.adapters.codec import (
    apikey_from_row,
    attempt_from_row,
    audit_from_row,
    claimed_from_row,
    definition_changes,
    from_micros,
    job_columns,
    job_from_row,
    job_version_from_row,
    policy_from_row,
    run_from_row,
    to_micros,
    user_from_row,
)
from oncely.adapters.sqlfile import load_migrations, load_queries
from oncely.adapters.sqlite.backfills import SqliteBackfills
from oncely.adapters.sqlite.notify import (
    SqliteNotifications,
    outbox_after_attempt,
    outbox_missed,
)
from oncely.domain.errors import Conflict, NotFound
from oncely.domain.firing import FirePlan
from oncely.domain.ids import new_id
from oncely.domain.jobs import Job, refuse_duplicate_names, refuse_taken_names
from oncely.domain.overlap import ClaimCandidate, overlap_settled, resolve_overlap
from oncely.domain.principal import Role
from oncely.domain.runs import Attempt, Run, RunState
from oncely.domain.users import ApiKey, User
from oncely.ports.clock import TimeSample
from oncely.ports.store import (
    APIKEY_TOUCH_INTERVAL,
    MEMBER_RETENTION,
    TAKEOVER_RETENTION,
    AttemptResult,
    AuditEntry,
    Claimed,
    ClaimParams,
    CommitResult,
    ExpiredRun,
    JobQuery,
    JobVersion,
    Lease,
    Member,
    PayloadOverride,
    PruneBatch,
    QueueDepth,
    RetentionAges,
    RunQuery,
    Takeover,
    TransactionCancelled,
    TxControl,
)

T = TypeVar("T")
Q = load_queries("oncely.adapters.sqlite", "queries.sql")


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _from_us(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


class SqliteStore(SqliteNotifications, SqliteBackfills):
    dialect = "sqlite"
    supports_listen = False

    def __init__(
        self, path: str, *, busy_timeout: float = 30.0, task_transaction_cap: float = 0.25
    ) -> None:
        self.path = path
        self.task_transaction_cap = task_transaction_cap
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False

    # -- connections ----------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("store is closed")
            if self.path != ":memory:":
                parent = os.path.dirname(os.path.abspath(self.path))
                os.makedirs(parent, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, query: str, params: dict[str, Any]) -> list[sqlite3.Row]:
        return self._conn().execute(Q[query], params).fetchall()

    def setup_warnings(self) -> list[str]:
        return []  # SQLite reuses freed pages by itself: nothing to vacuum for the claim

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._all.clear()

    # -- lifecycle ------------------------------------------------------------------------

    def migrate(self) -> int:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
                )
                applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
                version = max(applied, default=0)
                for number, name, sql in load_migrations("oncely.adapters.sqlite"):
                    if number in applied:
                        continue
                    # executescript would COMMIT our transaction; run statement by statement.
                    for statement in _split_sql(sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (number, name, to_micros(datetime.now(UTC))),
                    )
                    version = number
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return version

    def schema_version(self) -> int:
        conn = self._conn()
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
        ).fetchone()
        if not exists:
            return 0
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def db_now(self) -> datetime:
        return datetime.now(UTC)

    def db_time_sample(self) -> TimeSample:
        sent = time.monotonic()
        return TimeSample(datetime.now(UTC), sent, time.monotonic())

    # -- jobs -----------------------------------------------------------------------------

    def job_create(
        self, job: Job, *, replace: bool = False, now: datetime, actor: str | None = None
    ) -> Job:
        cols = job_columns(job)
        with self._write() as conn:
            existing = conn.execute(
                Q["job_by_name"], {"owner": job.owner, "name": job.name}
            ).fetchone()
            if existing is not None:
                if not replace:
                    raise Conflict(f"a job named {job.name!r} already exists")
                conn.execute(
                    Q["job_snapshot"],
                    {"id": existing["id"], "now": to_micros(now), "actor": actor},
                )
                conn.execute(
                    Q["job_replace"],
                    {
                        **cols,
                        "id": existing["id"],
                        "paused": int(job.paused),
                        "next_fire_at": _us(job.next_fire_at),
                        "now": to_micros(now),
                    },
                )
                conn.execute(
                    Q["runs_cancel_pending_of_job"],
                    {"job_id": existing["id"], "now": to_micros(now), "due_after": 0},
                )
                job_id = existing["id"]
            else:
                conn.execute(Q["job_insert"], _job_params(job))
                job_id = job.id
            row = conn.execute(Q["job_by_id"], {"id": job_id, "owner": None}).fetchone()
            _audit(
                conn,
                actor,
                now,
                owner=job.owner,
                action="job.replace" if existing is not None else "job.create",
                kind="job",
                target_id=job_id,
                details={"name": job.name, "version": row["version"]},
            )
        return job_from_row(row, from_micros)

    def jobs_create(self, jobs: Sequence[Job], *, now: datetime, actor: str | None = None) -> int:
        refuse_duplicate_names(jobs)
        if not jobs:
            return 0
        with self._write() as conn:
            return self._jobs_create_in(conn, jobs, now, actor)

    def jobs_import(
        self,
        creates: Sequence[Job],
        updates: Sequence[tuple[Job, int]],
        *,
        now: datetime,
        actor: str | None = None,
    ) -> None:
        refuse_duplicate_names([*creates, *(job for job, _ in updates)])
        with self._write() as conn:
            for job, version in updates:
                if self._job_update_in(conn, job.owner, job, version, now, actor) is None:
                    raise Conflict(f"job {job.name!r} was deleted meanwhile; import again")
            if creates:
                self._jobs_create_in(conn, creates, now, actor)

    def _jobs_create_in(
        self, conn: sqlite3.Connection, jobs: Sequence[Job], now: datetime, actor: str | None
    ) -> int:
        params = [_job_params(job) for job in jobs]
        before = conn.total_changes
        conn.executemany(Q["job_insert_or_skip"], params)
        stored = conn.total_changes - before
        if stored != len(jobs):
            names = {
                (r["owner"], r["name"])
                for r in conn.execute(Q["jobs_by_ids"], {"ids": json.dumps([j.id for j in jobs])})
            }
            refuse_taken_names(jobs, names)
        if actor is not None:
            conn.executemany(
                Q["audit_insert"],
                [
                    _audit_params(
                        actor,
                        now,
                        owner=job.owner,
                        action="job.create",
                        kind="job",
                        target_id=job.id,
                        details={"name": job.name, "version": job.version},
                    )
                    for job in jobs
                ],
            )
        return stored

    def job_get(self, owner: str | None, job_id: str) -> Job | None:
        rows = self._read("job_by_id", {"id": job_id, "owner": owner})
        return job_from_row(rows[0], from_micros) if rows else None

    def job_get_by_name(self, owner: str, name: str) -> Job | None:
        rows = self._read("job_by_name", {"owner": owner, "name": name})
        return job_from_row(rows[0], from_micros) if rows else None

    def job_list(
        self, owner: str | None, *, limit: int = 100, after_name: str | None = None
    ) -> list[Job]:
        rows = self._read("job_list", {"owner": owner, "after_name": after_name, "limit": limit})
        return [job_from_row(r, from_micros) for r in rows]

    def job_search(self, owner: str | None, query: JobQuery) -> list[Job]:
        rows = self._read(
            "job_search_all" if owner is None else "job_search_owner",
            {
                "owner": owner,
                "limit": query.limit,
                "after_name": None if query.after is None else query.after[0],
                "after_id": None if query.after is None else query.after[1],
                "name_contains": query.name_contains,
                "paused": None if query.paused is None else int(query.paused),
                "queue": query.queue,
                "action_kind": query.action_kind,
                "last_outcome": None if query.last_outcome is None else str(query.last_outcome),
            },
        )
        return [job_from_row(r, from_micros) for r in rows]

    def job_count(self, owner: str | None, query: JobQuery, *, cap: int = 10_000) -> int:
        rows = self._read(
            "job_count_all" if owner is None else "job_count_owner",
            {
                "owner": owner,
                "cap": cap,
                "name_contains": query.name_contains,
                "paused": None if query.paused is None else int(query.paused),
                "queue": query.queue,
                "action_kind": query.action_kind,
                "last_outcome": None if query.last_outcome is None else str(query.last_outcome),
            },
        )
        return int(rows[0]["n"])

    def job_set_paused(
        self,
        owner: str | None,
        job_id: str,
        *,
        paused: bool,
        next_fire_at: datetime | None,
        now: datetime,
        actor: str | None = None,
    ) -> Job | None:
        with self._write() as conn:
            cur = conn.execute(
                Q["job_set_paused"],
                {
                    "id": job_id,
                    "owner": owner,
                    "paused": int(paused),
                    "next_fire_at": _us(next_fire_at),
                    "now": to_micros(now),
                },
            )
            if cur.rowcount == 0:
                return None
            if paused:
                conn.execute(
                    Q["runs_cancel_pending_of_job"],
                    {"job_id": job_id, "now": to_micros(now), "due_after": to_micros(now)},
                )
            row = conn.execute(Q["job_by_id"], {"id": job_id, "owner": None}).fetchone()
            _audit(
                conn,
                actor,
                now,
                owner=row["owner"],
                action="job.pause" if paused else "job.resume",
                kind="job",
                target_id=job_id,
                details={"name": row["name"], "version": row["version"]},
            )
        return job_from_row(row, from_micros)

    def job_update(
        self,
        owner: str | None,
        job: Job,
        *,
        expected_version: int | None = None,
        now: datetime,
        actor: str | None = None,
    ) -> Job | None:
        with self._write() as conn:
            return self._job_update_in(conn, owner, job, expected_version, now, actor)

    def _job_update_in(
        self,
        conn: sqlite3.Connection,
        owner: str | None,
        job: Job,
        expected_version: int | None,
        now: datetime,
        actor: str | None,
    ) -> Job | None:
        row = conn.execute(Q["job_by_id"], {"id": job.id, "owner": owner}).fetchone()
        if row is None:
            return None
        current = job_from_row(row, from_micros)
        if expected_version is not None and current.version != expected_version:
            raise Conflict(
                f"job {current.name!r} is at version {current.version}, "
                f"not {expected_version}: it changed meanwhile; read it again",
            )
        changed = definition_changes(current, job)
        if not changed:
            return current
        if "name" in changed:
            taken = conn.execute(
                Q["job_by_name"], {"owner": current.owner, "name": job.name}
            ).fetchone()
            if taken is not None:
                raise Conflict(f"a job named {job.name!r} already exists")
        conn.execute(Q["job_snapshot"], {"id": job.id, "now": to_micros(now), "actor": actor})
        conn.execute(
            Q["job_update"],
            {
                **job_columns(job),
                "id": job.id,
                "name": job.name,
                "next_fire_at": _us(job.next_fire_at),
                "now": to_micros(now),
            },
        )
        conn.execute(
            Q["runs_cancel_pending_of_job"],
            {"job_id": job.id, "now": to_micros(now), "due_after": 0},
        )
        row = conn.execute(Q["job_by_id"], {"id": job.id, "owner": None}).fetchone()
        _audit(
            conn,
            actor,
            now,
            owner=current.owner,
            action="job.update",
            kind="job",
            target_id=job.id,
            details={"name": job.name, "version": row["version"], "changed": changed},
        )
        return job_from_row(row, from_micros)

    def job_versions_list(
        self,
        owner: str | None,
        job_id: str,
        *,
        limit: int = 100,
        before_version: int | None = None,
    ) -> list[JobVersion]:
        rows = self._read(
            "job_versions_list",
            {"job_id": job_id, "owner": owner, "limit": limit, "before_version": before_version},
        )
        return [job_version_from_row(r, from_micros) for r in rows]

    def job_delete(
        self, owner: str | None, job_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(
                Q["job_soft_delete"], {"id": job_id, "owner": owner, "now": to_micros(now)}
            ).fetchone()
            if row is None:
                return False
            conn.execute(Q["runs_cancel_waiting_of_job"], {"job_id": job_id, "now": to_micros(now)})
            _audit(
                conn,
                actor,
                now,
                owner=row["owner"],
                action="job.delete",
                kind="job",
                target_id=job_id,
                details={"name": row["name"]},
            )
        return True

    def job_trigger(
        self,
        owner: str | None,
        job_id: str,
        *,
        run_id: str,
        now: datetime,
        actor: str | None = None,
        payload: PayloadOverride | None = None,
    ) -> Run:
        with self._write() as conn:
            row = conn.execute(Q["job_by_id"], {"id": job_id, "owner": owner}).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id}")
            job = job_from_row(row, from_micros)
            cur = conn.execute(
                Q["run_insert"],
                {
                    "id": run_id,
                    "job_id": job.id,
                    "owner": job.owner,
                    "scheduled_for": to_micros(now),
                    "due_at": to_micros(now),
                    "state": RunState.QUEUED.value,
                    "queue": job.policy.queue,
                    "priority": job.policy.priority,
                    "overlap": job.policy.overlap,
                    "fires": 1,
                    "first_fire": None,
                    "manual": 1,
                    "finished_at": None,
                    "created_at": to_micros(now),
                },
            )
            if cur.rowcount == 0:
                raise Conflict("a run of this job is already scheduled for this instant; retry")
            if payload is not None:
                conn.execute(Q["run_set_payload"], {"id": run_id, "payload": payload.text})
            run_row = conn.execute(Q["run_by_id"], {"id": run_id, "owner": None}).fetchone()
            _audit(
                conn,
                actor,
                now,
                owner=job.owner,
                action="job.trigger",
                kind="job",
                target_id=job.id,
                details={"name": job.name, "run_id": run_id},
            )
        return run_from_row(run_row, from_micros)

    # -- leases and scheduling ------------------------------------------------------------

    def _next_tokens(self, conn: sqlite3.Connection, count: int) -> int:
        """Reserve ``count`` fencing tokens; return the first."""
        last = conn.execute(Q["fencing_next"], {"count": count}).fetchone()[0]
        return int(last) - count + 1

    def lease_acquire(
        self, names: Sequence[str], holder: str, *, now: datetime, ttl: timedelta
    ) -> list[Lease]:
        held: list[Lease] = []
        expires = now + ttl
        now_us = to_micros(now)
        with self._write() as conn:
            for name in dict.fromkeys(names):
                row = conn.execute(Q["lease_get"], {"name": name}).fetchone()
                taken_from = taken_token = None
                if row is not None and row["holder"] == holder and row["expires_at"] > now_us:
                    token = int(row["token"])
                    acquired = _from_us(row["acquired_at"])
                elif row is None or row["expires_at"] <= now_us:
                    token = self._next_tokens(conn, 1)
                    acquired = now
                    if row is not None and row["holder"] != holder:
                        taken_from, taken_token = str(row["holder"]), int(row["token"])
                        conn.execute(
                            Q["takeover_insert"],
                            {
                                "at": now_us,
                                "expired_at": row["expires_at"],
                                "old_token": row["token"],
                                "new_token": token,
                                "name": name,
                                "old_holder": taken_from,
                                "new_holder": holder,
                            },
                        )
                else:
                    continue
                conn.execute(
                    Q["lease_upsert"],
                    {
                        "name": name,
                        "holder": holder,
                        "token": token,
                        "expires_at": to_micros(expires),
                        "acquired_at": _us(acquired),
                    },
                )
                held.append(Lease(name, holder, token, expires, acquired, taken_from, taken_token))
            if any(lease.taken_from for lease in held):
                conn.execute(Q["takeovers_forget"], {"before": to_micros(now - TAKEOVER_RETENTION)})
        return held

    def lease_renew(self, leases: Sequence[Lease], *, now: datetime, ttl: timedelta) -> list[Lease]:
        renewed: list[Lease] = []
        expires = now + ttl
        with self._write() as conn:
            for lease in leases:
                row = conn.execute(
                    Q["lease_renew"],
                    {
                        "name": lease.name,
                        "token": lease.token,
                        "holder": lease.holder,
                        "now": to_micros(now),
                        "expires_at": to_micros(expires),
                    },
                ).fetchone()
                if row is not None:
                    renewed.append(
                        Lease(
                            lease.name,
                            lease.holder,
                            lease.token,
                            expires,
                            _from_us(row["acquired_at"]),
                        )
                    )
        return renewed

    def lease_release(self, leases: Sequence[Lease]) -> None:
        with self._write() as conn:
            for lease in leases:
                conn.execute(Q["lease_release"], {"name": lease.name, "token": lease.token})

    def lease_list(self, prefix: str) -> list[Lease]:
        return [
            Lease(
                r["name"],
                r["holder"],
                r["token"],
                from_micros(r["expires_at"]),
                _from_us(r["acquired_at"]),
            )
            for r in self._read("lease_list", {"prefix": prefix})
        ]

    def takeover_list(self, *, limit: int = 20) -> list[Takeover]:
        return [
            Takeover(
                name=r["name"],
                at=from_micros(r["at"]),
                old_holder=r["old_holder"],
                new_holder=r["new_holder"],
                old_token=r["old_token"],
                new_token=r["new_token"],
                expired_at=from_micros(r["expired_at"]),
            )
            for r in self._read("takeover_list", {"limit": limit})
        ]

    # -- cluster membership ---------------------------------------------------------------

    def member_heartbeat(self, member: Member, *, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                Q["member_upsert"],
                {
                    "id": member.id,
                    "now": to_micros(now),
                    "started_at": to_micros(member.started_at),
                    "pid": member.pid,
                    "host": member.host,
                    "roles": ",".join(member.roles),
                    "version": member.version,
                },
            )
            conn.execute(Q["members_forget"], {"before": to_micros(now - MEMBER_RETENTION)})

    def member_leave(self, member_id: str) -> None:
        with self._write() as conn:
            conn.execute(Q["member_delete"], {"id": member_id})

    def member_list(self) -> list[Member]:
        return [
            Member(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                roles=tuple(filter(None, r["roles"].split(","))),
                version=r["version"],
                started_at=from_micros(r["started_at"]),
                heartbeat_at=from_micros(r["heartbeat_at"]),
            )
            for r in self._read("member_list", {})
        ]

    def queue_depths(self, *, now: datetime) -> list[QueueDepth]:
        return [
            QueueDepth(
                queue=r["queue"],
                waiting=r["waiting"],
                due=r["due"] or 0,
                oldest_due_at=_from_us(r["oldest_due_at"]),
            )
            for r in self._read("queue_depths", {"now": to_micros(now)})
        ]

    def jobs_due(self, shards: Sequence[int], horizon: datetime, limit: int) -> list[Job]:
        rows = self._read(
            "jobs_due",
            {"horizon": to_micros(horizon), "limit": limit, "shards": json.dumps(list(shards))},
        )
        return [job_from_row(r, from_micros) for r in rows]

    def fires_commit(
        self, leases: Sequence[Lease], plans: Sequence[tuple[int, FirePlan]], *, now: datetime
    ) -> CommitResult:
        by_shard = {_shard_of_lease(lease): lease for lease in leases}
        created = advanced = 0
        lost: set[int] = set()
        missed: list[str] = []  # missed runs created: their notifications commit with them
        with self._write() as conn:
            valid: set[int] = set()
            for shard in {s for s, _ in plans}:
                lease = by_shard.get(shard)
                ok = (
                    lease is not None
                    and conn.execute(
                        Q["lease_valid"],
                        {"name": lease.name, "token": lease.token, "now": to_micros(now)},
                    ).fetchone()
                )
                (valid if ok else lost).add(shard)
            for shard, plan in plans:
                if shard not in valid:
                    continue
                cur = conn.execute(
                    Q["job_advance"],
                    {
                        "id": plan.job_id,
                        "version": plan.job_version,
                        "old_next_fire_at": to_micros(plan.old_next_fire_at),
                        "next_fire_at": _us(plan.next_fire_at),
                    },
                )
                if cur.rowcount == 0:
                    continue  # the job changed since it was read; it is planned again
                advanced += 1
                if not plan.runs:
                    continue
                job = conn.execute(Q["job_by_id"], {"id": plan.job_id, "owner": None}).fetchone()
                policy = policy_from_row(job["policy"])
                created += _insert_runs(
                    conn, job, policy.queue, policy.priority, policy.overlap, plan, now, missed
                )
            if missed:
                outbox_missed(conn, missed, now)
        return CommitResult(created, advanced, frozenset(lost))

    # -- runs: the worker side ------------------------------------------------------------

    def run_claim(self, params: ClaimParams) -> Claimed:
        now = to_micros(params.now)
        expires = to_micros(params.now + params.lease_ttl)
        with self._write() as conn:
            rows = conn.execute(
                Q["claim_candidates"],
                {
                    "queue": params.queue,
                    "now": now,
                    "horizon": max(now, to_micros(params.prefetch_until or params.now)),
                    "limit": params.limit,
                },
            ).fetchall()
            if not rows:
                return Claimed()
            candidates = [
                ClaimCandidate(r["id"], r["job_id"], r["overlap"], from_micros(r["scheduled_for"]))
                for r in rows
            ]
            live: dict[str, list[str]] = {}
            picked = {c.run_id for c in candidates}
            for job_id in {c.job_id for c in candidates if c.overlap != "allow"}:
                live[job_id] = [
                    r["id"]
                    for r in conn.execute(Q["live_runs_of_job"], {"job_id": job_id})
                    if r["id"] not in picked
                ]
            decision = resolve_overlap(candidates, live)
            for run_id in decision.skip:
                conn.execute(
                    Q["run_skip"],
                    {"id": run_id, "now": now, "reason": "skipped: a run of this job was live"},
                )
            for run_id in decision.cancel:
                reason = "cancelled: replaced by a newer run"
                conn.execute(Q["run_cancel_running"], {"id": run_id, "now": now, "reason": reason})
                conn.execute(Q["run_set_cancelled"], {"id": run_id, "now": now, "reason": reason})
            settled = overlap_settled(decision, candidates, live)
            if not decision.claim:
                return Claimed((), **settled)
            first = self._next_tokens(conn, len(decision.claim))
            conn.executemany(
                Q["run_start"],
                [
                    {
                        "id": run_id,
                        "token": first + i,
                        "worker_id": params.worker_id,
                        "lease_expires_at": expires,
                        "now": now,
                    }
                    for i, run_id in enumerate(decision.claim)
                ],
            )
            details = [
                conn.execute(Q["claimed_details"], {"id": run_id}).fetchone()
                for run_id in decision.claim
            ]
        return Claimed([claimed_from_row(r, from_micros) for r in details], **settled)

    def run_heartbeat(
        self, worker_id: str, held: Sequence[tuple[str, int]], *, now: datetime, ttl: timedelta
    ) -> set[str]:
        if not held:
            return set()
        expires = to_micros(now + ttl)
        kept: set[str] = set()
        with self._write() as conn:
            for run_id, token in held:
                row = conn.execute(
                    Q["run_heartbeat"],
                    {
                        "id": run_id,
                        "token": token,
                        "worker_id": worker_id,
                        "lease_expires_at": expires,
                    },
                ).fetchone()
                if row is not None:
                    kept.add(row[0])
        return kept

    def run_complete(self, results: Sequence[AttemptResult]) -> list[bool]:
        if not results:
            return []
        with self._write() as conn:
            return [_finish(conn, result) for result in results]

    def run_complete_with(
        self,
        result: Callable[[T], AttemptResult],
        effect: Callable[[Any], T],
        *,
        timeout: float | None = None,
        control: TxControl | None = None,
    ) -> tuple[bool, T | None]:
        conn = self._conn()
        cap = self.task_transaction_cap
        if timeout is not None:
            cap = min(cap, timeout)
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            deadline = started + cap

            def overdue() -> int:
                # Called by SQLite every few thousand VM steps: non-zero interrupts.
                return 1 if time.monotonic() > deadline else 0

            conn.set_progress_handler(overdue, 10_000)
            if control is not None:
                control.bind(conn.interrupt)
            try:
                try:
                    value = effect(conn)
                finally:
                    conn.set_progress_handler(None, 0)
                    if control is not None:
                        control.bind(None)
                _refuse_late(control, time.monotonic() - started, cap)
                accepted = _finish(conn, result(value))
            except sqlite3.OperationalError as exc:
                conn.execute("ROLLBACK")
                if "interrupt" in str(exc):
                    raise TransactionCancelled(
                        f"interrupted after {cap:g} s: a transactional task may hold the SQLite "
                        "write lock that long"
                    ) from exc
                raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if not accepted:
                conn.execute("ROLLBACK")
                return False, None
            conn.execute("COMMIT")
        return True, value

    def runs_expired(self, *, now: datetime, limit: int) -> list[ExpiredRun]:
        return [
            ExpiredRun(
                run_id=r["id"],
                token=r["token"],
                attempt=r["attempt"],
                failures=r["failures"],
                worker_id=r["worker_id"],
                started_at=from_micros(r["started_at"]),
                policy=policy_from_row(r["policy"]),
                job_id=r["job_id"],
                job_name=r["job_name"],
                queue=r["queue"],
            )
            for r in self._read("runs_expired", {"now": to_micros(now), "limit": limit})
        ]

    def runs_next_due(self, queues: Sequence[str]) -> datetime | None:
        earliest: int | None = None
        for queue in queues:
            row = self._read("runs_next_due", {"queue": queue})[0]
            if row["due"] is not None and (earliest is None or row["due"] < earliest):
                earliest = row["due"]
        return None if earliest is None else from_micros(earliest)

    def listen(self, on_due: Callable[[], None], stop: threading.Event) -> None:
        raise NotImplementedError("SQLite has no LISTEN; workers wake on the next due time")

    # -- runs: the reading and admin side -------------------------------------------------

    def run_get(self, owner: str | None, run_id: str) -> Run | None:
        rows = self._read("run_by_id", {"id": run_id, "owner": owner})
        return run_from_row(rows[0], from_micros) if rows else None

    def run_list(
        self,
        owner: str | None,
        *,
        job_id: str | None = None,
        states: Sequence[RunState] | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        rows = self._read(
            "run_list",
            {
                "owner": owner,
                "job_id": job_id,
                "states": None if states is None else json.dumps([str(s) for s in states]),
                "before_at": None if before is None else to_micros(before[0]),
                "before_id": None if before is None else before[1],
                "limit": limit,
            },
        )
        return [run_from_row(r, from_micros) for r in rows]

    def run_search(self, owner: str | None, query: RunQuery) -> list[Run]:
        if query.job_id is not None:
            name = "run_search_job"
        else:
            name = "run_search_all" if owner is None else "run_search_owner"
        rows = self._read(
            name,
            {
                "owner": owner,
                "job_id": query.job_id,
                "states": None
                if query.states is None
                else json.dumps([str(s) for s in query.states]),
                "since": _us(query.since),
                "until": _us(query.until),
                "worker": query.worker or None,
                "before_at": None if query.before is None else to_micros(query.before[0]),
                "before_id": None if query.before is None else query.before[1],
                "limit": query.limit,
            },
        )
        return [run_from_row(r, from_micros) for r in rows]

    def attempt_list(self, owner: str | None, run_id: str) -> list[Attempt]:
        rows = self._read("attempt_list", {"run_id": run_id, "owner": owner})
        return [attempt_from_row(r, from_micros) for r in rows]

    def run_cancel(
        self, owner: str | None, run_id: str, *, now: datetime, actor: str | None = None
    ) -> Run | None:
        with self._write() as conn:
            row = conn.execute(Q["run_by_id"], {"id": run_id, "owner": owner}).fetchone()
            if row is None:
                return None
            if RunState(row["state"]) not in (
                RunState.PENDING,
                RunState.QUEUED,
                RunState.RETRYING,
                RunState.RUNNING,
            ):
                raise Conflict(f"run {run_id} has already ended ({row['state']})")
            reason = "cancelled by a user"
            params = {"id": run_id, "now": to_micros(now), "reason": reason}
            conn.execute(Q["run_cancel_running"], params)
            conn.execute(Q["run_set_cancelled"], params)
            row = conn.execute(Q["run_by_id"], {"id": run_id, "owner": None}).fetchone()
            _audit_run(conn, actor, now, row, "run.cancel")
        return run_from_row(row, from_micros)

    def run_requeue(
        self, owner: str | None, run_id: str, *, now: datetime, actor: str | None = None
    ) -> Run | None:
        with self._write() as conn:
            row = conn.execute(Q["run_by_id"], {"id": run_id, "owner": owner}).fetchone()
            if row is None:
                return None
            cur = conn.execute(Q["run_requeue"], {"id": run_id, "now": to_micros(now)})
            if cur.rowcount == 0:
                raise Conflict(f"only dead runs can be requeued; run {run_id} is {row['state']}")
            row = conn.execute(Q["run_by_id"], {"id": run_id, "owner": None}).fetchone()
            _audit_run(conn, actor, now, row, "run.requeue")
        return run_from_row(row, from_micros)

    def run_counts(self, owner: str | None) -> dict[str, int]:
        rows = self._read("run_counts", {"owner": owner})
        return {r["state"]: r["n"] for r in rows if r["n"]}

    # -- retention ------------------------------------------------------------------------

    def runs_prune(
        self,
        ages: RetentionAges,
        *,
        now: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> PruneBatch:
        cutoffs = ages.cutoffs(now)
        shortest = self._read("retention_shortest_job_age", {})[0]["shortest"]
        horizon = ages.horizon(now, shortest)
        if horizon is None:
            return PruneBatch(0, 0, None)
        after_at, after_id = (to_micros(after[0]), after[1]) if after is not None else (-1, "")
        params = {
            "after_at": after_at,
            "after_id": after_id,
            "horizon": to_micros(horizon),
            "now": to_micros(now),
            **{k: None if v is None else to_micros(v) for k, v in cutoffs.items()},
            "limit": limit,
        }
        with self._write() as conn:
            picked = conn.execute(Q["runs_prune_pick"], params).fetchall()
            ids = [(row["id"],) for row in picked]
            attempts = conn.executemany("DELETE FROM attempts WHERE run_id = ?", ids).rowcount
            runs = conn.executemany("DELETE FROM runs WHERE id = ?", ids).rowcount
        more = len(picked) >= limit
        last = picked[-1] if picked else None
        next_after = (from_micros(last["scheduled_for"]), last["id"]) if more and last else None
        return PruneBatch(runs, attempts, next_after)

    def jobs_purge(self, *, before: datetime, limit: int) -> int:
        with self._write() as conn:
            picked = conn.execute(
                Q["jobs_purge_pick"], {"before": to_micros(before), "limit": limit}
            ).fetchall()
            ids = [(row["id"],) for row in picked]
            conn.executemany("DELETE FROM job_versions WHERE job_id = ?", ids)
            return conn.executemany("DELETE FROM jobs WHERE id = ?", ids).rowcount

    # -- users, API keys, secrets ---------------------------------------------------------

    def user_create(self, user: User, *, now: datetime, actor: str | None = None) -> User:
        with self._write() as conn:
            if conn.execute(Q["user_insert"], _user_params(user)).rowcount == 0:
                raise Conflict(f"a user named {user.name!r} already exists")
            _audit_user(conn, actor, now, user, "user.create", {"role": user.role.value})
        return user

    def user_create_first(self, user: User, *, now: datetime) -> bool:
        with self._write() as conn:
            if conn.execute(Q["user_any"]).fetchone() is not None:
                return False
            conn.execute(Q["user_insert"], _user_params(user))
            _audit_user(conn, "system", now, user, "user.create", {"role": user.role.value})
        return True

    def user_get(self, user_id: str) -> User | None:
        rows = self._read("user_by_id", {"id": user_id})
        return user_from_row(rows[0], from_micros) if rows else None

    def user_get_by_name(self, name: str) -> User | None:
        rows = self._read("user_by_name", {"name": name})
        return user_from_row(rows[0], from_micros) if rows else None

    def user_list(self, *, limit: int = 100, after_name: str | None = None) -> list[User]:
        rows = self._read("user_list", {"after_name": after_name, "limit": limit})
        return [user_from_row(r, from_micros) for r in rows]

    def user_set_password(
        self,
        user_id: str,
        password_hash: str,
        *,
        now: datetime,
        actor: str | None = None,
        end_sessions: bool = True,
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(
                Q["user_set_password"],
                {
                    "id": user_id,
                    "password_hash": password_hash,
                    "now": to_micros(now),
                    "end_sessions": int(end_sessions),
                },
            ).fetchone()
            if row is None:
                return False
            _audit_user(conn, actor, now, user_from_row(row, from_micros), "user.password", {})
        return True

    def user_set_role(
        self, user_id: str, role: Role, *, now: datetime, actor: str | None = None
    ) -> User | None:
        with self._write() as conn:
            row = conn.execute(
                Q["user_set_role"], {"id": user_id, "role": role.value, "now": to_micros(now)}
            ).fetchone()
            if row is None:
                return None
            user = user_from_row(row, from_micros)
            _audit_user(conn, actor, now, user, "user.role", {"role": role.value})
        return user

    def user_disable(
        self, user_id: str, *, disabled: bool = True, now: datetime, actor: str | None = None
    ) -> User | None:
        with self._write() as conn:
            row = conn.execute(
                Q["user_set_disabled"],
                {"id": user_id, "disabled": int(disabled), "now": to_micros(now)},
            ).fetchone()
            if row is None:
                return None
            user = user_from_row(row, from_micros)
            action = "user.disable" if disabled else "user.enable"
            _audit_user(conn, actor, now, user, action, {})
        return user

    def apikey_create(self, key: ApiKey, *, now: datetime, actor: str | None = None) -> ApiKey:
        with self._write() as conn:
            if conn.execute(Q["user_by_id"], {"id": key.user_id}).fetchone() is None:
                raise NotFound(f"no user {key.user_id}")
            if conn.execute(Q["apikey_insert"], _apikey_params(key)).rowcount == 0:
                raise Conflict("an API key with this prefix exists; create it again")
            _audit_key(conn, actor, now, key, "apikey.create")
        return key

    def apikey_get_by_prefix(self, prefix: str) -> ApiKey | None:
        rows = self._read("apikey_by_prefix", {"prefix": prefix})
        return apikey_from_row(rows[0], from_micros) if rows else None

    def apikey_list(self, user_id: str | None, *, limit: int = 100) -> list[ApiKey]:
        rows = self._read("apikey_list", {"user_id": user_id, "limit": limit})
        return [apikey_from_row(r, from_micros) for r in rows]

    def apikey_revoke(
        self,
        key_id: str,
        *,
        user_id: str | None = None,
        now: datetime,
        actor: str | None = None,
    ) -> ApiKey | None:
        with self._write() as conn:
            row = conn.execute(
                Q["apikey_revoke"], {"id": key_id, "user_id": user_id, "now": to_micros(now)}
            ).fetchone()
            if row is None:
                return None
            key = apikey_from_row(row, from_micros)
            _audit_key(conn, actor, now, key, "apikey.revoke")
        return key

    def apikey_touch(self, key_id: str, *, now: datetime) -> None:
        stale = to_micros(now - APIKEY_TOUCH_INTERVAL)
        # Read first: most calls find the key recently touched and need no write lock.
        rows = self._read("apikey_by_id", {"id": key_id, "user_id": None})
        if not rows or (rows[0]["last_used_at"] or 0) > stale:
            return
        with self._write() as conn:
            conn.execute(
                Q["apikey_touch"], {"id": key_id, "now": to_micros(now), "stale_before": stale}
            )

    def secret_get_or_create(self, name: str, candidate: bytes, *, now: datetime) -> bytes:
        with self._write() as conn:
            conn.execute(
                Q["secret_insert"], {"name": name, "value": candidate, "now": to_micros(now)}
            )
            row = conn.execute(Q["secret_get"], {"name": name}).fetchone()
        return bytes(row["value"])

    def secret_replace(self, name: str, value: bytes, *, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(Q["secret_replace"], {"name": name, "value": value, "now": to_micros(now)})

    # -- audit ----------------------------------------------------------------------------

    def audit_record(
        self,
        actor: str,
        action: str,
        *,
        target_kind: str,
        target_id: str | None = None,
        owner: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime,
    ) -> None:
        with self._write() as conn:
            _audit(
                conn,
                actor,
                now,
                owner=owner,
                action=action,
                kind=target_kind,
                target_id=target_id,
                details=details or {},
            )

    def audit_list(
        self,
        owner: str | None,
        *,
        target_kind: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before: tuple[datetime, int] | None = None,
    ) -> list[AuditEntry]:
        params: dict[str, Any] = {
            "owner": owner,
            "target_kind": target_kind,
            "target_id": target_id,
            "since": _MIN_US if since is None else to_micros(since),
            "until": _MAX_US if until is None else to_micros(until),
            "before_at": _MAX_US if before is None else to_micros(before[0]),
            "before_id": _MAX_US if before is None else before[1],
            "limit": limit,
        }
        if target_kind is not None and target_id is not None:
            query = "audit_list_target"
        elif owner is not None:
            query = "audit_list_owner"
        else:
            query = "audit_list_all"
        return [audit_from_row(r, from_micros) for r in self._read(query, params)]


_MIN_US = -(2**62)
_MAX_US = 2**62


def _audit_params(
    actor: str,
    now: datetime,
    *,
    owner: str | None,
    action: str,
    kind: str,
    target_id: str | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    return {
        "at": to_micros(now),
        "actor": actor,
        "owner": owner,
        "action": action,
        "target_kind": kind,
        "target_id": target_id,
        "details": json.dumps(details, separators=(",", ":"), default=str),
    }


def _audit(
    conn: sqlite3.Connection,
    actor: str | None,
    now: datetime,
    *,
    owner: str | None,
    action: str,
    kind: str,
    target_id: str | None,
    details: dict[str, Any],
) -> None:
    """Append an audit entry in the caller's transaction; nothing without an actor."""
    if actor is None:
        return
    conn.execute(
        Q["audit_insert"],
        _audit_params(
            actor, now, owner=owner, action=action, kind=kind, target_id=target_id, details=details
        ),
    )


def _audit_run(
    conn: sqlite3.Connection, actor: str | None, now: datetime, row: sqlite3.Row, action: str
) -> None:
    _audit(
        conn,
        actor,
        now,
        owner=row["owner"],
        action=action,
        kind="run",
        target_id=row["id"],
        details={"job_id": row["job_id"], "job": row["job_name"]},
    )


def _audit_user(
    conn: sqlite3.Connection,
    actor: str | None,
    now: datetime,
    user: User,
    action: str,
    details: dict[str, Any],
) -> None:
    _audit(
        conn,
        actor,
        now,
        owner=None,
        action=action,
        kind="user",
        target_id=user.id,
        details={"name": user.name, **details},
    )


def _audit_key(
    conn: sqlite3.Connection, actor: str | None, now: datetime, key: ApiKey, action: str
) -> None:
    _audit(
        conn,
        actor,
        now,
        owner=None,
        action=action,
        kind="apikey",
        target_id=key.id,
        details={"name": key.name, "prefix": key.prefix, "user_id": key.user_id},
    )


def _user_params(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "password_hash": user.password_hash,
        "role": user.role.value,
        "owner": user.owner,
        "created_at": to_micros(user.created_at),
        "updated_at": to_micros(user.updated_at),
        "disabled_at": _us(user.disabled_at),
    }


def _apikey_params(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "secret_hash": key.secret_hash,
        "user_id": key.user_id,
        "name": key.name,
        "created_at": to_micros(key.created_at),
        "expires_at": _us(key.expires_at),
        "revoked_at": _us(key.revoked_at),
        "last_used_at": _us(key.last_used_at),
    }


def _refuse_late(control: TxControl | None, held: float, cap: float) -> None:
    if control is not None and control.cancelled:
        raise TransactionCancelled("the attempt was cancelled")
    if held > cap:
        raise TransactionCancelled(
            f"held the SQLite write lock {held:.2f} s, over the cap of {cap:g} s "
            "for a transactional task; rolled back"
        )


def _shard_of_lease(lease: Lease) -> int:
    return int(lease.name.rsplit(":", 1)[1])


def _insert_runs(
    conn: sqlite3.Connection,
    job: sqlite3.Row,
    queue: str,
    priority: int,
    overlap: str,
    plan: FirePlan,
    now: datetime,
    missed: list[str],
) -> int:
    created = 0
    for planned in plan.runs:
        ended = planned.state is RunState.MISSED
        run_id = new_id(to_micros(now) // 1000)
        cur = conn.execute(
            Q["run_insert"],
            {
                "id": run_id,
                "job_id": plan.job_id,
                "owner": job["owner"],
                "scheduled_for": to_micros(planned.scheduled_for),
                "due_at": to_micros(planned.due_at),
                "state": planned.state.value,
                "queue": queue,
                "priority": priority,
                "overlap": overlap,
                "fires": planned.fires,
                "first_fire": _us(planned.first_fire),
                "manual": 0,
                "finished_at": to_micros(now) if ended else None,
                "created_at": to_micros(now),
            },
        )
        created += cur.rowcount
        if ended and cur.rowcount:
            missed.append(run_id)
    return created


def _finish(conn: sqlite3.Connection, result: AttemptResult) -> bool:
    decision = result.decision
    row = conn.execute(
        Q["run_finish"],
        {
            "id": result.run_id,
            "token": result.token,
            "state": decision.state.value,
            "failures": decision.failures,
            "due_at": _us(decision.due_at),
            "finished_at": None if decision.due_at is not None else to_micros(result.finished_at),
            "error": result.error,
            "output": result.output,
            "expired_before": _us(result.expired_before),
            "started_at": to_micros(result.started_at),
        },
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        Q["attempt_insert"],
        {
            "run_id": result.run_id,
            "number": result.attempt,
            "token": result.token,
            "worker_id": result.worker_id,
            "started_at": to_micros(result.started_at),
            "finished_at": to_micros(result.finished_at),
            "outcome": result.outcome.value,
            "error": result.error,
            "output": result.output,
        },
    )
    outbox_after_attempt(conn, result)
    return True


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (ours contain no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _job_params(job: Job) -> dict[str, Any]:
    return {
        **job_columns(job),
        "id": job.id,
        "owner": job.owner,
        "name": job.name,
        "paused": int(job.paused),
        "next_fire_at": _us(job.next_fire_at),
        "shard": job.shard,
        "version": job.version,
        "created_at": to_micros(job.created_at),
        "updated_at": to_micros(job.updated_at),
    }
